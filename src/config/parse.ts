// Parses a nydusd configuration as upstream accepts it, legacy v1 (`device.backend`,
// `device.cache`, `mode`, `digest_validate`, `amplify_io`, `fs_prefetch`, ...) or
// `version: 2` (`backend`, `cache`, `rafs`), into the one NydusConfig shape. Every
// rejection is ERR_CONFIG_INVALID naming the field path as written in the input.
// Text that is not JSON is read as TOML, which upstream accepts for v2 only. Keys the
// parser never reads (upstream options not implemented here, typos) are passed to `warn`
// by their paths: nothing is dropped silently.
import { parse as parseToml } from 'smol-toml';
import { ConfigError } from '../errors.js';
import { Fields, invalid, SIZE_MAX } from './fields.js';
import {
  checkBackendType,
  checkCacheType,
  DEFAULT_BATCH_SIZE,
  readBackend,
  readFileCache,
  readPrefetchV1,
  readPrefetchV2,
} from './sections.js';
import { FS_DRIVERS, type BackendConfig, type CacheConfig, type NydusConfig, type RafsConfig } from './types.js';

/** Upstream refuses config files larger than this. */
export const MAX_CONFIG_SIZE = 0x10_0000;

/** Receives one line per config key that is not used (its dotted path, why). */
export type ConfigWarn = (message: string) => void;

/** Parses config file text (JSON v1 or v2, or TOML v2). */
export function parseConfig(text: string | Uint8Array, warn: ConfigWarn = () => undefined): NydusConfig {
  const str = typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8');
  if (Buffer.byteLength(str) > MAX_CONFIG_SIZE) {
    throw new ConfigError('ERR_CONFIG_INVALID', `failed to parse config: larger than ${MAX_CONFIG_SIZE} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(str);
  } catch (err) {
    let toml: unknown;
    try {
      toml = parseToml(str);
    } catch {
      throw new ConfigError('ERR_CONFIG_INVALID', `failed to parse config: invalid JSON: ${(err as Error).message} (nor TOML)`, { cause: err });
    }
    if ((toml as Record<string, unknown>).version !== 2) throw invalid('version', 'a TOML config must be "version = 2" (upstream reads TOML as v2 only)');
    value = toml;
  }
  return normalizeConfig(value, warn);
}

/**
 * A v2 config whose backend is `type` with body `text` (the JSON object of that
 * backend's keys, as `nydus-image --backend-type T --backend-config JSON` and nydusify's
 * backend-config.json give it). Errors name the flag.
 */
export function backendOnlyConfig(type: string, text: string): NydusConfig {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    // A malformed flag value is a usage error (exit 2), as for any other bad argument.
    throw new ConfigError('ERR_CLI_USAGE', `invalid --backend-config JSON: ${(err as Error).message}`, { cause: err });
  }
  try {
    return normalizeConfig({ version: 2, backend: { type, [type]: body } });
  } catch (err) {
    throw new ConfigError('ERR_CONFIG_INVALID', (err as Error).message.replace('failed to parse config: backend.', '--backend-config: backend.'), { cause: err });
  }
}

/** Normalizes an already-decoded config (v1 or v2). */
export function normalizeConfig(value: unknown, warn: ConfigWarn = () => undefined): NydusConfig {
  const root = Fields.of(value, '');
  let config: NydusConfig;
  if (root.has('version')) {
    const version = root.raw('version');
    if (version !== 2) throw invalid('version', `unsupported config version ${JSON.stringify(version)}, expected 2`);
    config = parseV2(root);
  } else if (root.has('device')) config = parseV1(root);
  else throw invalid('version', 'missing: a config needs "version": 2, or "device" for the legacy layout');
  config = withFsDriver(config, root);
  for (const path of root.unread()) warn(`config: ${path} is not implemented by this nydusd and is ignored`);
  return config;
}

/** The top-level `fs_driver` (both layouts), when the file names one. */
function withFsDriver(config: NydusConfig, root: Fields): NydusConfig {
  if (root.has('fs_driver')) config.fs_driver = root.oneOf('fs_driver', FS_DRIVERS, 'fusedev');
  return config;
}

function parseV2(root: Fields): NydusConfig {
  const config: NydusConfig = {
    version: 2,
    id: root.string('id', ''),
    cache: parseCacheV2(root.optObject('cache')),
    rafs: parseRafsV2(root.optObject('rafs')),
  };
  const backend = root.optObject('backend');
  if (backend !== undefined) config.backend = parseBackendV2(backend);
  return config;
}

function parseBackendV2(f: Fields): BackendConfig {
  const type = checkBackendType(f.required('type'), f.at('type'));
  // The body sits under a key named after the type (`backend.localfs`, `backend.http-proxy`).
  const body = f.optObject(type);
  if (body === undefined) throw invalid(f.at(type), `missing configuration for backend ${JSON.stringify(type)}`);
  return readBackend(type, f.at('type'), body);
}

function parseCacheV2(f: Fields | undefined): CacheConfig {
  const g = f ?? new Fields({}, 'cache');
  const type = checkCacheType(g.string('type', ''), g.at('type'));
  const cache: CacheConfig = {
    type,
    compressed: g.bool('compressed', false),
    validate: g.bool('validate', false),
    prefetch: readPrefetchV2(g.optObject('prefetch')),
  };
  if (type === 'blobcache' || type === 'filecache') {
    const body = g.optObject('filecache');
    if (body === undefined) throw invalid(g.at('filecache'), `missing configuration for cache ${JSON.stringify(type)}`);
    cache.filecache = readFileCache(body);
  }
  return cache;
}

function parseRafsV2(f: Fields | undefined): RafsConfig {
  const g = f ?? new Fields({}, 'rafs');
  return {
    mode: g.oneOf('mode', ['direct', 'cached'], 'direct'),
    batch_size: g.uint('batch_size', DEFAULT_BATCH_SIZE, SIZE_MAX),
    validate: g.bool('validate', false),
    enable_xattr: g.bool('enable_xattr', false),
    iostats_files: g.bool('iostats_files', false),
    access_pattern: g.bool('access_pattern', false),
    latest_read_files: g.bool('latest_read_files', false),
    prefetch: readPrefetchV2(g.optObject('prefetch')),
  };
}

function parseV1(root: Fields): NydusConfig {
  const device = root.object('device');
  const backendF = device.object('backend');
  const backend = readBackend(backendF.required('type'), backendF.at('type'), backendF.object('config'));
  const rafs: RafsConfig = {
    // Upstream requires `mode`; older docs omit it, so it defaults like v2.
    mode: root.oneOf('mode', ['direct', 'cached'], 'direct'),
    batch_size: root.uint('amplify_io', DEFAULT_BATCH_SIZE, SIZE_MAX),
    validate: root.bool('digest_validate', false),
    enable_xattr: root.bool('enable_xattr', false),
    iostats_files: root.bool('iostats_files', false),
    access_pattern: root.bool('access_pattern', false),
    latest_read_files: root.bool('latest_read_files', false),
    prefetch: readPrefetchV1(root.optObject('fs_prefetch')),
  };
  const cache = parseCacheV1(device.optObject('cache'));
  // As upstream HEAD: the filesystem prefetch settings drive blob prefetch when the cache has none.
  if (!cache.prefetch.enable && rafs.prefetch.enable) cache.prefetch = { ...rafs.prefetch };
  return { version: 2, id: device.string('id', ''), backend, cache, rafs };
}

function parseCacheV1(f: Fields | undefined): CacheConfig {
  const g = f ?? new Fields({}, 'device.cache');
  const type = checkCacheType(g.string('type', ''), g.at('type'));
  const cache: CacheConfig = {
    type,
    compressed: g.bool('compressed', false),
    validate: false,
    prefetch: readPrefetchV2(undefined),
  };
  if (type === 'blobcache' || type === 'filecache') cache.filecache = readFileCache(g.object('config'));
  return cache;
}
