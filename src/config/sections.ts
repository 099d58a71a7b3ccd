// Readers for the parts v1 and v2 configs share: backend bodies (localfs, registry,
// http-proxy, s3, oss), prefetch blocks and the file cache body. Keys, defaults and checks are
// upstream's (api/src/config.rs, v2.2 and HEAD); both layouts call these with the
// paths of their own file layout, so errors name the field where the user wrote it.
import { Fields, invalid, SIZE_MAX, U32_MAX, U8_MAX } from './fields.js';
import type {
  BackendConfig,
  BackendType,
  FileCacheConfig,
  HttpCommonConfig,
  HttpProxyConfig,
  LocalfsConfig,
  MirrorConfig,
  OssConfig,
  PrefetchConfig,
  ProxyConfig,
  RegistryConfig,
  S3Config,
} from './types.js';

/** Backend types upstream knows but this implementation does not serve. */
const UNSUPPORTED_BACKENDS = ['localdisk'];

/** Upstream's default read amplification / v1 merging size (`default_batch_size`). */
export const DEFAULT_BATCH_SIZE = 128 * 1024;
/** Upstream's default v2 prefetch request size (`default_prefetch_batch_size`). */
export const DEFAULT_PREFETCH_BATCH_SIZE = 1024 * 1024;
const DEFAULT_PREFETCH_THREADS = 8;
const DEFAULT_HTTP_TIMEOUT = 5;
const DEFAULT_CHECK_INTERVAL = 5;
const DEFAULT_FAILURE_LIMIT = 5;
const U64_SAFE = Number.MAX_SAFE_INTEGER;

/** Checks a backend type string, read at `typePath`. */
export function checkBackendType(type: string, typePath: string): BackendType {
  if (type === 'localfs' || type === 'registry' || type === 'http-proxy' || type === 's3' || type === 'oss') return type;
  if (UNSUPPORTED_BACKENDS.includes(type)) throw invalid(typePath, `backend ${JSON.stringify(type)} is not supported`);
  throw invalid(typePath, `unknown backend ${JSON.stringify(type)}`);
}

/** Reads a backend body of type `type` (read from `typePath`) out of `body`. */
export function readBackend(type: string, typePath: string, body: Fields): BackendConfig {
  const t = checkBackendType(type, typePath);
  switch (t) {
    case 'localfs':
      return { type: t, localfs: readLocalfs(body) };
    case 'registry':
      return { type: t, registry: readRegistry(body) };
    case 'http-proxy':
      return { type: t, 'http-proxy': readHttpProxy(body) };
    case 's3':
      return { type: t, s3: readS3(body) };
    case 'oss':
      return { type: t, oss: readOss(body) };
  }
}

function readLocalfs(f: Fields): LocalfsConfig {
  const cfg: LocalfsConfig = { blob_file: f.string('blob_file', ''), dir: f.string('dir', ''), alt_dirs: f.stringArray('alt_dirs') };
  if (cfg.blob_file === '' && cfg.dir === '') throw invalid(f.at('dir'), 'localfs needs "dir" or "blob_file"');
  return cfg;
}

function readProxy(f: Fields | undefined): ProxyConfig {
  const g = f ?? new Fields({}, '');
  return {
    url: g.string('url', ''),
    ping_url: g.string('ping_url', ''),
    fallback: g.bool('fallback', true),
    check_interval: g.uint('check_interval', DEFAULT_CHECK_INTERVAL, U64_SAFE),
    use_http: g.bool('use_http', false),
  };
}

function readMirror(f: Fields): MirrorConfig {
  return {
    host: f.required('host'),
    ping_url: f.string('ping_url', ''),
    headers: f.stringMap('headers'),
    auth_through: f.bool('auth_through', false),
    health_check_interval: f.uint('health_check_interval', DEFAULT_CHECK_INTERVAL, U64_SAFE),
    failure_limit: f.uint('failure_limit', DEFAULT_FAILURE_LIMIT, U8_MAX),
  };
}

function readHttpCommon(f: Fields): HttpCommonConfig {
  return {
    skip_verify: f.bool('skip_verify', false),
    ca_cert_files: f.stringArray('ca_cert_files'),
    timeout: f.uint('timeout', DEFAULT_HTTP_TIMEOUT, U32_MAX),
    connect_timeout: f.uint('connect_timeout', DEFAULT_HTTP_TIMEOUT, U32_MAX),
    retry_limit: f.uint('retry_limit', 0, U8_MAX),
    proxy: readProxy(f.optObject('proxy')),
    mirrors: f.objectArray('mirrors', readMirror),
  };
}

function readRegistry(f: Fields): RegistryConfig {
  const cfg: RegistryConfig = {
    scheme: f.oneOf('scheme', ['https', 'http', ''], 'https'),
    host: f.required('host'),
    repo: f.required('repo'),
    ...readHttpCommon(f),
    blob_url_scheme: f.oneOf('blob_url_scheme', ['', 'http', 'https'], ''),
    blob_redirected_host: f.string('blob_redirected_host', ''),
  };
  const auth = f.optString('auth');
  const token = f.optString('registry_token');
  if (auth !== undefined) cfg.auth = auth;
  if (token !== undefined) cfg.registry_token = token;
  return cfg;
}

function readHttpProxy(f: Fields): HttpProxyConfig {
  const addr = f.required('addr');
  if (!/^https?:\/\//.test(addr) && !addr.startsWith('/')) {
    throw invalid(f.at('addr'), `expected an http(s) URL or an absolute unix socket path, got ${JSON.stringify(addr)}`);
  }
  return { addr, path: f.string('path', ''), ...readHttpCommon(f) };
}

// An endpoint is a host[:port] (upstream puts the scheme in its own field).
const ENDPOINT = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;
// DNS-compatible bucket names (S3 and OSS rules): 3-63 of a-z 0-9 . -, alphanumeric at both ends.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function readOss(f: Fields): OssConfig {
  return readObjectStorage(f, f.required('endpoint'));
}

function readS3(f: Fields): S3Config {
  // Upstream requires `region` but accepts an empty one; AWS's default region is the useful default.
  const region = f.string('region', '') || 'us-east-1';
  return { ...readObjectStorage(f, f.string('endpoint', '')), region };
}

function readObjectStorage(f: Fields, endpoint: string): OssConfig {
  if (endpoint !== '' && !ENDPOINT.test(endpoint)) {
    throw invalid(f.at('endpoint'), `expected host[:port] without scheme or path, got ${JSON.stringify(endpoint)}`);
  }
  const bucket_name = f.required('bucket_name');
  if (!BUCKET.test(bucket_name)) throw invalid(f.at('bucket_name'), `invalid bucket name ${JSON.stringify(bucket_name)}`);
  const cfg: OssConfig = {
    scheme: f.oneOf('scheme', ['https', 'http', ''], 'https') || 'https',
    endpoint,
    bucket_name,
    object_prefix: f.string('object_prefix', ''),
    access_key_id: f.string('access_key_id', ''),
    access_key_secret: f.string('access_key_secret', ''),
    ...readHttpCommon(f),
  };
  if ((cfg.access_key_id === '') !== (cfg.access_key_secret === '')) {
    throw invalid(f.at(cfg.access_key_id === '' ? 'access_key_id' : 'access_key_secret'), 'give both access_key_id and access_key_secret, or neither for anonymous access');
  }
  return cfg;
}

/** Reads a v2 `prefetch` block (or its absence). */
export function readPrefetchV2(f: Fields | undefined): PrefetchConfig {
  const g = f ?? new Fields({}, '');
  return checkPrefetch(g, {
    enable: g.bool('enable', false),
    threads: g.uint('threads', DEFAULT_PREFETCH_THREADS, U32_MAX),
    batch_size: g.uint('batch_size', DEFAULT_PREFETCH_BATCH_SIZE, U64_SAFE),
    bandwidth_limit: g.uint('bandwidth_limit', 0, U32_MAX),
    prefetch_all: g.bool('prefetch_all', false),
  }, 'threads', 'batch_size');
}

/** Reads a v1 `fs_prefetch` block (or its absence) into the v2 shape. */
export function readPrefetchV1(f: Fields | undefined): PrefetchConfig {
  const g = f ?? new Fields({}, '');
  return checkPrefetch(g, {
    enable: g.bool('enable', false),
    threads: g.uint('threads_count', DEFAULT_PREFETCH_THREADS, U32_MAX),
    batch_size: g.uint('merging_size', DEFAULT_BATCH_SIZE, U64_SAFE),
    bandwidth_limit: g.uint('bandwidth_rate', 0, U32_MAX),
    prefetch_all: g.bool('prefetch_all', true),
  }, 'threads_count', 'merging_size');
}

// Upstream validates the limits only when prefetch is enabled.
function checkPrefetch(f: Fields, p: PrefetchConfig, threadsKey: string, sizeKey: string): PrefetchConfig {
  if (!p.enable) return p;
  if (p.threads < 1 || p.threads > 1024) throw invalid(f.at(threadsKey), `expected 1..1024 threads, got ${p.threads}`);
  if (p.batch_size > SIZE_MAX) throw invalid(f.at(sizeKey), `${p.batch_size} exceeds the maximum ${SIZE_MAX}`);
  return p;
}

/** Reads a file cache body (`cache.filecache` in v2, `device.cache.config` in v1). */
export function readFileCache(f: Fields): FileCacheConfig {
  // Ignoring it would leave data the user asked to encrypt in clear on disk.
  if (f.bool('enable_encryption', false)) throw invalid(f.at('enable_encryption'), 'cache encryption is not supported by this nydusd');
  const work_dir = f.string('work_dir', '.');
  if (work_dir === '') throw invalid(f.at('work_dir'), 'must not be empty');
  return { work_dir, disable_indexed_map: f.bool('disable_indexed_map', false) };
}

/** Checks a cache type string, read at `path`. */
export function checkCacheType(type: string, path: string): '' | 'dummycache' | 'blobcache' | 'filecache' {
  if (type === '' || type === 'dummycache' || type === 'blobcache' || type === 'filecache') return type;
  if (type === 'fscache') throw invalid(path, 'cache "fscache" is not supported (FUSE only)');
  throw invalid(path, `unknown cache ${JSON.stringify(type)}`);
}
