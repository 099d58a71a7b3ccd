// The one typed nydusd configuration every layer reads. It is upstream's ConfigV2
// (api/src/config.rs) with every default filled in and field names kept as upstream
// spells them, so JSON.stringify of a config is a valid `version: 2` config file.
// Legacy v1 files are normalized into this shape by parse.ts.

/** The whole nydusd / RAFS mount configuration. */
export interface NydusConfig {
  version: 2;
  /** Instance id: the key of backend and blobcache metrics (v1 `device.id`). */
  id: string;
  /** Absent only in v2 files that omit it; a RAFS mount then cannot read data. */
  backend?: BackendConfig;
  cache: CacheConfig;
  rafs: RafsConfig;
  /** How the image is served (`fs_driver`, as nydus-snapshotter names it); absent: the daemon's choice. */
  fs_driver?: FsDriver;
}

/** `fusedev`: nydusd answers every FUSE request; `erofs`: the kernel's erofs serves the image over blob views. */
export type FsDriver = 'fusedev' | 'erofs';
export const FS_DRIVERS: readonly FsDriver[] = ['fusedev', 'erofs'];

/** Backend kinds this implementation accepts. */
export type BackendType = BackendConfig['type'];

export type BackendConfig =
  | { type: 'localfs'; localfs: LocalfsConfig }
  | { type: 'registry'; registry: RegistryConfig }
  | { type: 'http-proxy'; 'http-proxy': HttpProxyConfig }
  | { type: 's3'; s3: S3Config }
  | { type: 'oss'; oss: OssConfig };

/** Upstream LocalFsConfig: `blob_file`, else `<dir>/<blob id>`, else `<alt_dirs[i]>/<blob id>`. */
export interface LocalfsConfig {
  blob_file: string;
  dir: string;
  alt_dirs: string[];
}

/** Proxy in front of a network backend (upstream ProxyConfig). */
export interface ProxyConfig {
  url: string;
  ping_url: string;
  /** Fall back to the origin when the proxy is unhealthy (default true). */
  fallback: boolean;
  /** Seconds between health checks (default 5). */
  check_interval: number;
  use_http: boolean;
}

/** One registry mirror (upstream MirrorConfig). */
export interface MirrorConfig {
  host: string;
  ping_url: string;
  headers: Record<string, string>;
  /** v2.2 field (removed at HEAD); default false. */
  auth_through: boolean;
  /** Seconds (default 5). */
  health_check_interval: number;
  /** Failures before the mirror is skipped (default 5). */
  failure_limit: number;
}

/** Options shared by the network backends. */
export interface HttpCommonConfig {
  skip_verify: boolean;
  /** PEM files of extra CAs trusted for TLS, besides the system's (upstream HEAD). */
  ca_cert_files: string[];
  /** Request timeout in seconds (default 5). */
  timeout: number;
  /** Connect timeout in seconds (default 5). */
  connect_timeout: number;
  /** Retries after a failed request, 0–255 (default 0). */
  retry_limit: number;
  proxy: ProxyConfig;
  mirrors: MirrorConfig[];
}

/** Upstream RegistryConfig. `auth` and `registry_token` are secrets (see redact()). */
export interface RegistryConfig extends HttpCommonConfig {
  /** `http`, `https` (default) or `''` (probe). */
  scheme: string;
  host: string;
  repo: string;
  /** base64("user:password"). */
  auth?: string;
  /** Bearer token. */
  registry_token?: string;
  blob_url_scheme: string;
  blob_redirected_host: string;
}

/** Upstream HttpProxyConfig: `addr` is an http(s) URL or an absolute unix socket path. */
export interface HttpProxyConfig extends HttpCommonConfig {
  addr: string;
  path: string;
}

/**
 * Upstream OssConfig: objects at `<scheme>://<bucket_name>.<endpoint>/<object_prefix><blob id>`.
 * `access_key_id` and `access_key_secret` are secrets (see redact()); both empty means
 * anonymous requests.
 */
export interface OssConfig extends HttpCommonConfig {
  /** `https` (default) or `http`. */
  scheme: string;
  endpoint: string;
  bucket_name: string;
  object_prefix: string;
  access_key_id: string;
  access_key_secret: string;
}

/**
 * Upstream S3Config: objects at `<scheme>://<endpoint>/<bucket_name>/<object_prefix><blob id>`
 * (path style), signed with AWS Signature V4 for `region`. An empty endpoint is AWS's
 * `s3.amazonaws.com`.
 */
export interface S3Config extends OssConfig {
  region: string;
}

/** Cache kinds: `blobcache`/`filecache` (the same thing), or no cache (`''`, `dummycache`). */
export type CacheType = '' | 'dummycache' | 'blobcache' | 'filecache';

export interface CacheConfig {
  type: CacheType;
  /** Upstream keeps raw compressed data when set; this implementation always caches uncompressed data. */
  compressed: boolean;
  /** Verify chunk digests (also on cache hits). */
  validate: boolean;
  prefetch: PrefetchConfig;
  /** Present when `type` is blobcache/filecache. */
  filecache?: FileCacheConfig;
}

export interface FileCacheConfig {
  /** Directory of the cache files (default "."). */
  work_dir: string;
  disable_indexed_map: boolean;
}

/** Prefetch settings (upstream PrefetchConfigV2; v1 `fs_prefetch` maps onto it). */
export interface PrefetchConfig {
  enable: boolean;
  /** Worker count, 1–1024 when enabled (default 8; v1 `threads_count`). */
  threads: number;
  /** Bytes per merged prefetch request (v1 `merging_size`). */
  batch_size: number;
  /** Bytes per second, 0 = unlimited (v1 `bandwidth_rate`). */
  bandwidth_limit: number;
  prefetch_all: boolean;
}

export interface RafsConfig {
  /** `direct` (default) or `cached`. */
  mode: 'direct' | 'cached';
  /** Read amplification in bytes, 0 = off (v1 `amplify_io`; default 128 KiB). */
  batch_size: number;
  /** Verify chunk digests (v1 `digest_validate`). */
  validate: boolean;
  enable_xattr: boolean;
  iostats_files: boolean;
  access_pattern: boolean;
  latest_read_files: boolean;
  prefetch: PrefetchConfig;
}
