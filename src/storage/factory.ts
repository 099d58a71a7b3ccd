// Builds the storage stack of one RAFS mount from its normalized config: backend,
// optional blobcache, the chunk reader over the image's blobs, and (when the config
// enables it and the caller gives the image) the background prefetch, which close()
// stops before anything else. The only place that
// maps config names (`localfs`, `registry`, `http-proxy`, `s3`, `oss`, `blobcache`, `amplify_io`,
// `digest_validate`, `retry_limit`) to classes. Registry credentials from the
// IMAGE_PULL_AUTH environment variable replace the config's, as upstream nydusd does.
import { mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { digestValidationEnabled, withRegistryAuth } from '../config/derive.js';
import type { BackendConfig, CacheConfig, HttpCommonConfig, NydusConfig, PrefetchConfig } from '../config/types.js';
import { ConfigError, StorageError } from '../errors.js';
import type { BlobBackend } from './backend/backend.js';
import { LocalFsBackend } from './backend/localfs.js';
import { BlobCache } from './cache/blobcache.js';
import type { ChunkCache } from './cache/cache.js';
import { publishCacheEvent } from './cache/events.js';
import { ChunkReader } from './chunk-reader.js';
import { Prefetcher } from './prefetch.js';
import { planPrefetch, type PrefetchImage } from './prefetch-list.js';
import type { ImageBlobs } from './types.js';

/** The storage stack of one mount. */
export interface Storage {
  readonly backend: BlobBackend;
  readonly cache: ChunkCache | undefined;
  readonly reader: ChunkReader;
  /** The running background prefetch, when the config enables it. */
  readonly prefetcher: Prefetcher | undefined;
  /** Stops prefetch, waits for reads and cache writes in progress, then closes cache and backend. */
  close(): Promise<void>;
}

/** Options of the storage factory. */
export interface StorageOptions {
  /** Bytes of decoded chunks kept in memory by the reader. */
  memoryCacheBytes?: number;
  /** Environment to read IMAGE_PULL_AUTH from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * The opened image and the mount's prefetch files (`--prefetch-files`, a mount's
   * `prefetch_files`; null: the bootstrap's own list): prefetch starts at once when the
   * config enables it and there is a cache to fill.
   */
  prefetch?: { image: PrefetchImage; files: readonly string[] | null };
}

/**
 * The effective prefetch settings, or undefined when prefetch is off: enabled by either
 * `rafs.prefetch` (v1 `fs_prefetch`) or `cache.prefetch`; workers, request size and
 * bandwidth from the cache's block when it is enabled, `prefetch_all` from the fs block.
 */
export function prefetchSettings(config: NydusConfig): PrefetchConfig | undefined {
  const fs = config.rafs.prefetch;
  const blob = config.cache.prefetch;
  if (!fs.enable && !blob.enable) return undefined;
  const workers = blob.enable ? blob : fs;
  return { ...workers, prefetch_all: fs.enable ? fs.prefetch_all : blob.prefetch_all };
}

/** `config` with IMAGE_PULL_AUTH (base64 `user:password`) as its registry auth, when set. */
export function applyPullAuth(config: NydusConfig, env: NodeJS.ProcessEnv = process.env): NydusConfig {
  const auth = env.IMAGE_PULL_AUTH?.trim();
  return auth ? withRegistryAuth(config, auth) : config;
}

/**
 * A backend for `config`; `id` names it in metrics and events. `ca`: the contents of the
 * backend's `ca_cert_files` (openBackend reads them).
 */
export async function createBackend(config: BackendConfig | undefined, id = '', ca?: string[]): Promise<BlobBackend> {
  if (config === undefined) throw new ConfigError('ERR_CONFIG_INVALID', 'failed to create storage: backend: missing');
  // The network backends are loaded on first use: their HTTP client (undici) is the
  // largest module of the daemon, and a restarting daemon serving local blobs (failover)
  // would wait for it before answering anything.
  switch (config.type) {
    case 'localfs':
      return new LocalFsBackend(config.localfs);
    case 'registry': {
      const { RegistryBackend } = await import('./backend/registry.js');
      return new RegistryBackend(config.registry, { id, ca });
    }
    case 'http-proxy': {
      const { HttpProxyBackend } = await import('./backend/http-proxy.js');
      return new HttpProxyBackend(config['http-proxy'], { id, ca });
    }
    case 's3': {
      const { S3Backend } = await import('./backend/s3.js');
      return new S3Backend(config.s3, { id, ca });
    }
    case 'oss': {
      const { OssBackend } = await import('./backend/oss.js');
      return new OssBackend(config.oss, { id, ca });
    }
  }
}

/** createBackend, with the extra CAs of `ca_cert_files` read first (asynchronously). */
export async function openBackend(config: BackendConfig | undefined, id = ''): Promise<BlobBackend> {
  const files = config === undefined || config.type === 'localfs' ? [] : httpConfig(config).ca_cert_files;
  const ca = files.length > 0 ? await (await import('../http/client.js')).readCaCerts(files) : undefined;
  return createBackend(config, id, ca);
}

/** The HTTP options of a network backend's config. */
function httpConfig(config: Exclude<BackendConfig, { type: 'localfs' }>): HttpCommonConfig {
  switch (config.type) {
    case 'registry':
      return config.registry;
    case 'http-proxy':
      return config['http-proxy'];
    case 's3':
      return config.s3;
    case 'oss':
      return config.oss;
  }
}

/** Extra fetches of a chunk whose bytes arrive corrupted: the network backends' `retry_limit`. */
function fetchRetries(config: BackendConfig | undefined): number {
  return config === undefined || config.type === 'localfs' ? 0 : httpConfig(config).retry_limit;
}

/**
 * A chunk cache for `config`, or undefined for no cache (`''`, `dummycache`). Creates the
 * work dir owner-only: the cache holds image contents in clear, whatever modes the image
 * gives its files. An existing dir others can list is used, with a warning, unless it is the
 * localfs backend's own blob dir (`--localfs-dir`), whose blobs are as readable anyway.
 */
export async function createCache(config: CacheConfig, backend?: BackendConfig): Promise<ChunkCache | undefined> {
  if (config.type !== 'blobcache' && config.type !== 'filecache') return undefined;
  const workDir = config.filecache?.work_dir ?? '.';
  let mode: number;
  try {
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    mode = (await stat(workDir)).mode;
  } catch (err) {
    throw new StorageError('ERR_STORAGE_CACHE', `failed to create cache work_dir ${workDir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const blobDir = backend?.type === 'localfs' ? backend.localfs.dir : undefined;
  if ((mode & 0o044) !== 0 && (blobDir === undefined || resolve(blobDir) !== resolve(workDir))) {
    publishCacheEvent({ level: 'warn', workDir, message: `work_dir is readable by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); cache files are owner-only, but their names show which blobs are cached: chmod 700 it` });
  }
  return new BlobCache(workDir);
}

/** Backend, cache and reader for reading `image` as `config` says. */
export async function createStorage(config: NydusConfig, image: ImageBlobs, options: StorageOptions = {}): Promise<Storage> {
  const effective = applyPullAuth(config, options.env);
  const backend = await openBackend(effective.backend, config.id);
  let cache: ChunkCache | undefined;
  try {
    cache = await createCache(config.cache, config.backend);
  } catch (err) {
    await backend.close();
    throw err;
  }
  const reader = new ChunkReader(image.blobs, backend, cache, {
    digestValidate: digestValidationEnabled(config),
    amplifyIo: config.rafs.batch_size,
    blobChunks: (blobIndex) => image.blobChunks(blobIndex),
    memoryCacheBytes: options.memoryCacheBytes,
    fetchRetries: fetchRetries(config.backend),
  });
  const settings = prefetchSettings(config);
  let prefetcher: Prefetcher | undefined;
  if (settings !== undefined && cache !== undefined && options.prefetch !== undefined) {
    const { image: sb, files } = options.prefetch;
    prefetcher = new Prefetcher(reader, {
      threads: settings.threads,
      batchSize: settings.batch_size,
      bandwidthLimit: settings.bandwidth_limit,
      counters: cache.metrics.prefetch,
    });
    prefetcher.start(planPrefetch(sb, { files: files ?? undefined, all: settings.prefetch_all }));
  }
  return {
    backend,
    cache,
    reader,
    prefetcher,
    async close() {
      await prefetcher?.stop();
      await reader.close();
      await cache?.close();
      await backend.close();
    },
  };
}
