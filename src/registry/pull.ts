// Mounting an image by reference: resolve `host/repo:tag` to its manifest (picking the
// Nydus manifest of an index for this platform), fetch its bootstrap layer, verify and
// unpack it into the work dir as `<layer digest hex>.boot` (reused when already there,
// so a restart fetches nothing), and derive the nydusd config whose registry backend
// reads the image's blobs lazily. Only the bootstrap is downloaded here.
import { access, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { NydusConfig, RegistryConfig } from '../config/types.js';
import { localfsDirConfig } from '../config/derive.js';
import { StorageError } from '../errors.js';
import { RAFS_MAX_METADATA_SIZE } from '../rafs/layout/common.js';
import { unpackBootstrapLayer } from './bootstrap-layer.js';
import { clientFor, type RegistryAccess } from './distribution.js';
import { findBootstrapLayer, isIndex, pickFromIndex } from './nydus-manifest.js';
import { formatReference, manifestRef, parseReference, type ImageReference } from './reference.js';

/** A gzip'd bootstrap layer larger than this is refused before unpacking. */
const MAX_LAYER_BYTES = RAFS_MAX_METADATA_SIZE;

export interface FetchBootstrapOptions extends RegistryAccess {
  /** `host[:port]/repo[:tag][@digest]`. */
  reference: string;
  /** Where bootstraps are kept (created when missing). */
  workDir: string;
  signal?: AbortSignal;
}

export interface FetchedBootstrap {
  reference: ImageReference;
  /** The local bootstrap file. */
  bootstrap: string;
  manifestDigest: string;
  layerDigest: string;
  /** False when the bootstrap was already in the work dir. */
  downloaded: boolean;
}

/** Fetches the bootstrap of image `opts.reference` into `opts.workDir`. */
export async function fetchImageBootstrap(opts: FetchBootstrapOptions): Promise<FetchedBootstrap> {
  const reference = parseReference(opts.reference);
  const client = clientFor(reference, opts);
  try {
    let fetched = await client.getManifest(manifestRef(reference), opts.signal);
    if (isIndex(fetched.json, fetched.mediaType)) fetched = await client.getManifest(pickFromIndex(fetched.json).digest, opts.signal);
    const layer = findBootstrapLayer(fetched.json);
    if (layer.size > MAX_LAYER_BYTES) {
      throw new StorageError('ERR_STORAGE_MANIFEST', `failed to fetch the bootstrap of ${formatReference(reference)}: layer of ${layer.size} bytes is too large`);
    }
    // Usually the blobcache work_dir, made here first: owner-only, as the cache makes it (storage/factory.ts).
    await mkdir(opts.workDir, { recursive: true, mode: 0o700 });
    const hex = layer.digest.slice('sha256:'.length);
    const bootstrap = join(opts.workDir, `${hex}.boot`);
    const have = await access(bootstrap).then(
      () => true,
      () => false,
    );
    if (!have) {
      const gz = join(opts.workDir, `${hex}.boot.tar.gz`);
      try {
        await client.downloadBlob(layer.digest, gz, MAX_LAYER_BYTES, opts.signal);
        await unpackBootstrapLayer(gz, bootstrap, RAFS_MAX_METADATA_SIZE);
      } finally {
        await rm(gz, { force: true });
      }
    }
    return { reference, bootstrap, manifestDigest: fetched.digest, layerDigest: layer.digest, downloaded: !have };
  } finally {
    await client.close();
  }
}

/**
 * The nydusd config to mount image `ref` with: `base` (for cache, prefetch and network
 * settings; default: a blobcache in `workDir`) with its backend replaced by the image's
 * registry repository. Registry settings of a registry-backed `base` (auth, timeouts,
 * retries, mirrors, proxy) are kept.
 */
export function imageConfig(ref: ImageReference, workDir: string, base?: NydusConfig, opts: { plainHttp?: boolean } = {}): NydusConfig {
  const config: NydusConfig = structuredClone(base ?? localfsDirConfig(workDir));
  const template: RegistryConfig | undefined = config.backend?.type === 'registry' ? config.backend.registry : undefined;
  const registry: RegistryConfig = {
    scheme: opts.plainHttp ? 'http' : (template?.scheme ?? 'https'),
    skip_verify: false,
    ca_cert_files: [],
    timeout: 5,
    connect_timeout: 5,
    retry_limit: 2,
    proxy: { url: '', ping_url: '', fallback: true, check_interval: 5, use_http: false },
    mirrors: [],
    blob_url_scheme: '',
    blob_redirected_host: '',
    ...template,
    host: ref.host,
    repo: ref.repo,
  };
  if (opts.plainHttp) registry.scheme = 'http';
  config.backend = { type: 'registry', registry };
  return config;
}
