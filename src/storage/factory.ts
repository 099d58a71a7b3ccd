// Builds the storage stack of one RAFS mount from its normalized config: backend,
// optional blobcache, and the chunk reader over the image's blobs. The only place that
// maps config names (`localfs`, `blobcache`, `amplify_io`, `digest_validate`) to classes.
import { mkdir } from 'node:fs/promises';
import { digestValidationEnabled } from '../config/derive.js';
import type { BackendConfig, CacheConfig, NydusConfig } from '../config/types.js';
import { ConfigError, StorageError } from '../errors.js';
import type { RafsSuper } from '../rafs/types.js';
import type { BlobBackend } from './backend/backend.js';
import { LocalFsBackend } from './backend/localfs.js';
import { BlobCache } from './cache/blobcache.js';
import type { ChunkCache } from './cache/cache.js';
import { ChunkReader } from './chunk-reader.js';

/** What the storage layer needs from an opened image. */
export type ImageBlobs = Pick<RafsSuper, 'blobs' | 'blobChunks'>;

/** The storage stack of one mount. */
export interface Storage {
  readonly backend: BlobBackend;
  readonly cache: ChunkCache | undefined;
  readonly reader: ChunkReader;
  /** Waits for reads and cache writes in progress, then closes cache and backend. */
  close(): Promise<void>;
}

/** A backend for `config`. Network backends are not available yet. */
export function createBackend(config: BackendConfig | undefined): BlobBackend {
  if (config === undefined) throw new ConfigError('ERR_CONFIG_INVALID', 'failed to create storage: backend: missing');
  switch (config.type) {
    case 'localfs':
      return new LocalFsBackend(config.localfs);
    case 'registry':
    case 'http-proxy':
      throw new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to create storage: backend ${config.type} is not implemented yet`);
  }
}

/** A chunk cache for `config`, or undefined for no cache (`''`, `dummycache`). Creates the work dir. */
export async function createCache(config: CacheConfig): Promise<ChunkCache | undefined> {
  if (config.type !== 'blobcache' && config.type !== 'filecache') return undefined;
  const workDir = config.filecache?.work_dir ?? '.';
  try {
    await mkdir(workDir, { recursive: true });
  } catch (err) {
    throw new StorageError('ERR_STORAGE_CACHE', `failed to create cache work_dir ${workDir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return new BlobCache(workDir);
}

/** Backend, cache and reader for reading `image` as `config` says. */
export async function createStorage(
  config: NydusConfig,
  image: ImageBlobs,
  options: { memoryCacheBytes?: number } = {},
): Promise<Storage> {
  const backend = createBackend(config.backend);
  let cache: ChunkCache | undefined;
  try {
    cache = await createCache(config.cache);
  } catch (err) {
    await backend.close();
    throw err;
  }
  const reader = new ChunkReader(image.blobs, backend, cache, {
    digestValidate: digestValidationEnabled(config),
    amplifyIo: config.rafs.batch_size,
    blobChunks: (blobIndex) => image.blobChunks(blobIndex),
    memoryCacheBytes: options.memoryCacheBytes,
  });
  return {
    backend,
    cache,
    reader,
    async close() {
      await reader.close();
      await cache?.close();
      await backend.close();
    },
  };
}
