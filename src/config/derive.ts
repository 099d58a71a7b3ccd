// Configs derived from other inputs: the built-in one of `nydusd --localfs-dir D`, a
// copy with secrets removed for API and log output, a copy with registry auth replaced
// (IMAGE_PULL_AUTH), and the effective digest-validation switch.
import type { NydusConfig } from './types.js';
import { DEFAULT_BATCH_SIZE, readPrefetchV2 } from './sections.js';

/**
 * The config nydusd builds for `--localfs-dir D`: blobs in D, a blobcache whose work_dir
 * is D too (upstream `ConfigV2::new_localfs`). Cache files carry a `.blob.data` suffix,
 * so they never collide with the blobs.
 */
export function localfsDirConfig(dir: string, id = ''): NydusConfig {
  return {
    version: 2,
    id,
    backend: { type: 'localfs', localfs: { blob_file: '', dir, alt_dirs: [] } },
    cache: {
      type: 'blobcache',
      compressed: false,
      validate: false,
      prefetch: readPrefetchV2(undefined),
      filecache: { work_dir: dir, disable_indexed_map: false },
    },
    rafs: {
      mode: 'direct',
      batch_size: DEFAULT_BATCH_SIZE,
      validate: false,
      enable_xattr: false,
      iostats_files: false,
      access_pattern: false,
      latest_read_files: false,
      prefetch: readPrefetchV2(undefined),
    },
  };
}

const SECRET_HEADER = /authorization|token|cookie|secret/i;
const REDACTED = '<redacted>';

/** `scheme://user:password@`: the password part of a URL's userinfo. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^/?#@:\s]*):[^/?#@\s]*@/gi;

/** `s` with the password of every URL in it masked (`http://user:<redacted>@proxy:3128`). */
export function redactUrlPasswords(s: string): string {
  return s.includes('://') ? s.replace(URL_PASSWORD, `$1:${REDACTED}@`) : s;
}

/** A copy of `v` with URL passwords masked in every string it holds. */
function redactUrls<T>(v: T): T {
  if (typeof v === 'string') return redactUrlPasswords(v) as T;
  if (Array.isArray(v)) return v.map(redactUrls) as T;
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = redactUrls(x);
  return out as T;
}

/**
 * A deep copy without secrets, safe to log or to return from the API: registry `auth`
 * and `registry_token` are removed (as upstream's `clone_without_secrets`), object
 * storage keys are masked (so the copy still shows that keys are set), mirror headers
 * that carry credentials and passwords in URLs (a proxy's, a mirror's) are masked.
 */
export function redact(config: NydusConfig): NydusConfig {
  const copy = redactUrls(config);
  const b = copy.backend;
  if (b === undefined) return copy;
  if (b.type === 'registry') {
    delete b.registry.auth;
    delete b.registry.registry_token;
  }
  if (b.type === 's3' || b.type === 'oss') {
    const keys = b.type === 's3' ? b.s3 : b.oss;
    if (keys.access_key_id !== '') keys.access_key_id = REDACTED;
    if (keys.access_key_secret !== '') keys.access_key_secret = REDACTED;
  }
  const common = b.type === 'localfs' ? undefined : b.type === 'http-proxy' ? b['http-proxy'] : b.type === 'registry' ? b.registry : b.type === 's3' ? b.s3 : b.oss;
  for (const m of common?.mirrors ?? []) {
    for (const k of Object.keys(m.headers)) if (SECRET_HEADER.test(k)) m.headers[k] = REDACTED;
  }
  return copy;
}

const OBJECT_KEYS = ['access_key_id', 'access_key_secret'];

/**
 * Config text (v1 or v2 JSON, as a mount received it) without the access keys of an s3 or
 * oss backend: what the journal stores, so keys never reach the disk. Other text is
 * returned unchanged.
 */
export function withoutObjectStorageKeys(text: string): string {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    return text;
  }
  const obj = (v: unknown): Record<string, unknown> | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const r = obj(root);
  const v2 = obj(r?.backend);
  const v1 = obj(obj(r?.device)?.backend);
  const body =
    v2 !== undefined && (v2.type === 's3' || v2.type === 'oss') ? obj(v2[v2.type as string]) : v1 !== undefined && (v1.type === 's3' || v1.type === 'oss') ? obj(v1.config) : undefined;
  if (body === undefined || !OBJECT_KEYS.some((k) => k in body)) return text;
  for (const k of OBJECT_KEYS) delete body[k];
  return JSON.stringify(root);
}

/** A copy whose registry backend uses `auth` (base64 "user:password"); other backends are unchanged. */
export function withRegistryAuth(config: NydusConfig, auth: string): NydusConfig {
  const copy = structuredClone(config);
  if (copy.backend?.type === 'registry') copy.backend.registry.auth = auth;
  return copy;
}

/** Whether chunk digests are verified: either `cache.validate` or `rafs.validate` (upstream `is_chunk_validation_enabled`). */
export function digestValidationEnabled(config: NydusConfig): boolean {
  return config.cache.validate || config.rafs.validate;
}
