import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, normalizeConfig } from '../../src/config/parse.js';
import { digestValidationEnabled, localfsDirConfig, redact, withRegistryAuth } from '../../src/config/derive.js';
import type { NydusConfig } from '../../src/config/types.js';

// docs/nydusd.md's localfs sample (legacy v1).
const V1_LOCALFS = `{
  "device": {
    "backend": { "type": "localfs", "config": { "dir": "/var/lib/nydus/blobs" } },
    "cache": { "type": "blobcache", "config": { "work_dir": "/var/lib/nydus/cache" } }
  },
  "mode": "direct",
  "digest_validate": false,
  "iostats_files": false,
  "enable_xattr": true
}`;

// What nydus-snapshotter writes for a registry image (legacy v1), with every knob set.
const V1_REGISTRY = {
  device: {
    id: '/snap-42',
    backend: {
      type: 'registry',
      config: {
        scheme: 'http',
        host: 'my-registry:5000',
        repo: 'test/repo',
        auth: 'dXNlcjpwYXNz',
        registry_token: 'bearer-token',
        skip_verify: true,
        timeout: 10,
        connect_timeout: 3,
        retry_limit: 2,
        blob_redirected_host: 'blobs.example',
        proxy: { url: 'http://p2p-proxy:65001', ping_url: 'http://p2p-proxy:40901/server/ping', fallback: false, check_interval: 9 },
        mirrors: [
          { host: 'http://dragonfly1.io:65001', headers: { 'X-Dragonfly-Registry': 'https://index.docker.io' }, health_check_interval: 7, failure_limit: 3 },
          { host: 'http://dragonfly2.io:65001', headers: { Authorization: 'Basic c2VjcmV0' } },
        ],
      },
    },
    cache: { type: 'blobcache', compressed: true, config: { work_dir: '/tmp/cache' } },
  },
  mode: 'cached',
  digest_validate: true,
  iostats_files: true,
  enable_xattr: true,
  access_pattern: true,
  latest_read_files: true,
  amplify_io: 1048576,
  fs_prefetch: { enable: true, threads_count: 10, merging_size: 131072, bandwidth_rate: 1048576 },
};

const V2_SAMPLE = {
  version: 2,
  id: 'mount-1',
  backend: { type: 'localfs', localfs: { dir: '/blobs', alt_dirs: ['/more'] } },
  cache: { type: 'filecache', validate: true, filecache: { work_dir: '/cache' }, prefetch: { enable: true, threads: 4 } },
  rafs: { mode: 'direct', batch_size: 0, enable_xattr: true, prefetch: { enable: true, threads: 2, batch_size: 65536, prefetch_all: true } },
};

function rejects(input: unknown, path: string, detail?: RegExp): void {
  assert.throws(
    () => (typeof input === 'string' ? parseConfig(input) : normalizeConfig(input)),
    (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ERR_CONFIG_INVALID');
      assert.ok(err.message.includes(`${path}: `), `message ${JSON.stringify(err.message)} should name ${path}`);
      if (detail) assert.match(err.message, detail);
      return true;
    },
  );
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

test('the documented v1 localfs + blobcache config normalizes with upstream defaults', () => {
  const c = parseConfig(V1_LOCALFS);
  assert.deepEqual(c.backend, { type: 'localfs', localfs: { dir: '/var/lib/nydus/blobs', blob_file: '', alt_dirs: [] } });
  assert.equal(c.cache.type, 'blobcache');
  assert.deepEqual(c.cache.filecache, { work_dir: '/var/lib/nydus/cache', disable_indexed_map: false });
  assert.equal(c.id, '');
  assert.equal(c.rafs.mode, 'direct');
  assert.equal(c.rafs.enable_xattr, true);
  assert.equal(c.rafs.batch_size, 128 * 1024, 'amplify_io defaults to 128 KiB');
  assert.deepEqual(c.rafs.prefetch, { enable: false, threads: 8, batch_size: 131072, bandwidth_limit: 0, prefetch_all: true });
  assert.equal(digestValidationEnabled(c), false);
});

test('a full v1 registry config keeps every field', () => {
  const c = normalizeConfig(V1_REGISTRY);
  assert.equal(c.id, '/snap-42');
  assert.equal(c.backend?.type, 'registry');
  const r = c.backend?.type === 'registry' ? c.backend.registry : assert.fail('registry');
  assert.equal(r.scheme, 'http');
  assert.equal(r.host, 'my-registry:5000');
  assert.equal(r.repo, 'test/repo');
  assert.equal(r.auth, 'dXNlcjpwYXNz');
  assert.equal(r.registry_token, 'bearer-token');
  assert.deepEqual([r.skip_verify, r.timeout, r.connect_timeout, r.retry_limit], [true, 10, 3, 2]);
  assert.equal(r.blob_redirected_host, 'blobs.example');
  assert.deepEqual(r.proxy, { url: 'http://p2p-proxy:65001', ping_url: 'http://p2p-proxy:40901/server/ping', fallback: false, check_interval: 9, use_http: false });
  assert.equal(r.mirrors.length, 2);
  assert.deepEqual(r.mirrors[0], {
    host: 'http://dragonfly1.io:65001',
    ping_url: '',
    headers: { 'X-Dragonfly-Registry': 'https://index.docker.io' },
    auth_through: false,
    health_check_interval: 7,
    failure_limit: 3,
  });
  assert.equal(r.mirrors[1].failure_limit, 5);
  assert.equal(c.cache.compressed, true);
  assert.deepEqual(
    [c.rafs.mode, c.rafs.validate, c.rafs.iostats_files, c.rafs.access_pattern, c.rafs.latest_read_files, c.rafs.batch_size],
    ['cached', true, true, true, true, 1048576],
  );
  assert.deepEqual(c.rafs.prefetch, { enable: true, threads: 10, batch_size: 131072, bandwidth_limit: 1048576, prefetch_all: true });
  assert.deepEqual(c.cache.prefetch, c.rafs.prefetch, 'fs_prefetch drives blob prefetch (upstream HEAD)');
  assert.equal(digestValidationEnabled(c), true);
});

test('a v2 config normalizes, and every config survives a JSON round trip', () => {
  const c = normalizeConfig(V2_SAMPLE);
  assert.equal(c.id, 'mount-1');
  assert.deepEqual(c.backend, { type: 'localfs', localfs: { dir: '/blobs', blob_file: '', alt_dirs: ['/more'] } });
  assert.equal(c.cache.type, 'filecache');
  assert.equal(c.cache.validate, true);
  assert.deepEqual(c.cache.prefetch, { enable: true, threads: 4, batch_size: 1048576, bandwidth_limit: 0, prefetch_all: false });
  assert.equal(c.rafs.batch_size, 0);
  assert.deepEqual(c.rafs.prefetch, { enable: true, threads: 2, batch_size: 65536, bandwidth_limit: 0, prefetch_all: true });
  assert.equal(digestValidationEnabled(c), true);
  const minimal = normalizeConfig({ version: 2 });
  assert.equal(minimal.backend, undefined);
  assert.equal(minimal.cache.type, '');
  assert.equal(minimal.rafs.batch_size, 131072);
  for (const cfg of [c, minimal, parseConfig(V1_LOCALFS), normalizeConfig(V1_REGISTRY), localfsDirConfig('/d', 'x')]) {
    assert.deepEqual(parseConfig(JSON.stringify(cfg)), cfg);
  }
  const reg = normalizeConfig({
    version: 2,
    backend: { type: 'registry', registry: { host: 'h', repo: 'r', mirrors: [{ host: 'http://m' }] } },
    cache: { type: 'dummycache' },
  });
  assert.equal(reg.backend?.type === 'registry' && reg.backend.registry.scheme, 'https');
  assert.equal(reg.cache.type, 'dummycache');
  const proxy = normalizeConfig({ version: 2, backend: { type: 'http-proxy', 'http-proxy': { addr: '/run/p.sock' } } });
  assert.equal(proxy.backend?.type === 'http-proxy' && proxy.backend['http-proxy'].addr, '/run/p.sock');
});

test('every rejection names the field it is about', () => {
  const v1 = (mutate: (c: typeof V1_REGISTRY & Record<string, unknown>) => void) => {
    const c = clone(V1_REGISTRY) as typeof V1_REGISTRY & Record<string, unknown>;
    mutate(c);
    return c;
  };
  const reg = V1_REGISTRY.device.backend.config;
  rejects(v1((c) => (c.device.backend.type = 'foo')), 'device.backend.type', /unknown backend "foo"/);
  rejects(v1((c) => (c.device.backend.type = 'localdisk')), 'device.backend.type', /not supported/);
  rejects(v1((c) => ((c.device.backend as Record<string, unknown>).config = undefined)), 'device.backend.config', /missing/);
  rejects(v1((c) => (c.device.backend.config = { ...reg, host: '' })), 'device.backend.config.host');
  rejects(v1((c) => (c.device.backend.config = { ...reg, timeout: '5' as unknown as number })), 'device.backend.config.timeout', /integer/);
  rejects(v1((c) => (c.device.backend.config = { ...reg, retry_limit: 256 })), 'device.backend.config.retry_limit', /maximum 255/);
  rejects(v1((c) => (c.device.backend.config = { ...reg, scheme: 'ftp' })), 'device.backend.config.scheme');
  rejects(v1((c) => ((c.device.backend.config.proxy as Record<string, unknown>).fallback = 'yes')), 'device.backend.config.proxy.fallback', /boolean/);
  rejects(v1((c) => ((c.device.backend.config.mirrors[1] as Record<string, unknown>).host = undefined)), 'device.backend.config.mirrors[1].host');
  rejects(v1((c) => ((c.device.backend.config.mirrors[0].headers as Record<string, unknown>).X = 1)), 'device.backend.config.mirrors[0].headers.X');
  rejects(v1((c) => ((c.device.backend.config as Record<string, unknown>).mirrors = {})), 'device.backend.config.mirrors', /array/);
  rejects(v1((c) => (c.device.cache.type = 'memcache')), 'device.cache.type', /unknown cache "memcache"/);
  rejects(v1((c) => (c.device.cache.type = 'fscache')), 'device.cache.type', /not supported/);
  rejects(v1((c) => ((c.device.cache as Record<string, unknown>).config = undefined)), 'device.cache.config', /missing/);
  rejects(v1((c) => (c.device.cache.config.work_dir = '')), 'device.cache.config.work_dir');
  rejects(v1((c) => (c.mode = 'lazy')), 'mode', /"direct", "cached"/);
  rejects(v1((c) => (c.digest_validate = 'true' as unknown as boolean)), 'digest_validate', /boolean/);
  rejects(v1((c) => (c.amplify_io = 0x10000001)), 'amplify_io', /maximum/);
  rejects(v1((c) => (c.amplify_io = -1)), 'amplify_io', /non-negative/);
  rejects(v1((c) => (c.fs_prefetch.threads_count = 0)), 'fs_prefetch.threads_count', /1\.\.1024/);
  rejects(v1((c) => (c.fs_prefetch.merging_size = 0x20000000)), 'fs_prefetch.merging_size');
  rejects(v1((c) => (c.device = [] as unknown as typeof c.device)), 'device', /object/);
  rejects(
    { device: { backend: { type: 'localfs', config: { alt_dirs: ['/x'] } } } },
    'device.backend.config.dir',
    /"dir" or "blob_file"/,
  );
  rejects({ device: { backend: { type: 'localfs', config: { dir: '/d', alt_dirs: ['/x', 3] } } } }, 'device.backend.config.alt_dirs[1]');

  const v2 = (patch: Record<string, unknown>) => ({ ...clone(V2_SAMPLE), ...patch });
  rejects(v2({ backend: { type: 'foo' } }), 'backend.type', /unknown backend "foo"/);
  rejects(v2({ backend: { type: 'registry' } }), 'backend.registry', /missing/);
  rejects(v2({ backend: { type: 'registry', registry: { host: 'h' } } }), 'backend.registry.repo');
  rejects(v2({ backend: { type: 'http-proxy', 'http-proxy': { addr: 'tcp://x' } } }), 'backend.http-proxy.addr');
  rejects(v2({ cache: { type: 'blobcache' } }), 'cache.filecache', /missing/);
  rejects(v2({ cache: { type: 'blobcache', filecache: { work_dir: 7 } } }), 'cache.filecache.work_dir', /string/);
  rejects(v2({ cache: { prefetch: { enable: true, threads: 2000 } } }), 'cache.prefetch.threads');
  rejects(v2({ rafs: { mode: 'fast' } }), 'rafs.mode');
  rejects(v2({ rafs: { batch_size: 1.5 } }), 'rafs.batch_size');
  rejects(v2({ rafs: 'direct' }), 'rafs', /object/);
  rejects(v2({ id: 5 }), 'id', /string/);
  rejects({ version: 3 }, 'version', /unsupported config version 3/);
  rejects({ mode: 'direct' }, 'version', /missing/);
  rejects([], '(root)', /object/);
  assert.throws(() => parseConfig('{"device": '), (err: NodeJS.ErrnoException) => err.code === 'ERR_CONFIG_INVALID' && /invalid JSON/.test(err.message));
  assert.throws(() => parseConfig(`{"version": 2, "id": "${'x'.repeat(0x100001)}"}`), (err: NodeJS.ErrnoException) => err.code === 'ERR_CONFIG_INVALID');
});

test('redact removes registry secrets and credential headers without touching the original', () => {
  const c = normalizeConfig(V1_REGISTRY);
  const r = redact(c);
  const reg = r.backend?.type === 'registry' ? r.backend.registry : assert.fail('registry');
  assert.equal('auth' in reg, false);
  assert.equal('registry_token' in reg, false);
  assert.equal(reg.mirrors[1].headers.Authorization, '<redacted>');
  assert.equal(reg.mirrors[0].headers['X-Dragonfly-Registry'], 'https://index.docker.io');
  const text = JSON.stringify(r);
  for (const secret of ['dXNlcjpwYXNz', 'bearer-token', 'c2VjcmV0']) assert.equal(text.includes(secret), false, secret);
  assert.equal(c.backend?.type === 'registry' && c.backend.registry.auth, 'dXNlcjpwYXNz', 'original kept');
  assert.deepEqual(parseConfig(text), r, 'redacted output is itself a valid v2 config');
  const swapped = withRegistryAuth(c, 'bmV3OmF1dGg=');
  assert.equal(swapped.backend?.type === 'registry' && swapped.backend.registry.auth, 'bmV3OmF1dGg=');
  const local: NydusConfig = parseConfig(V1_LOCALFS);
  assert.deepEqual(withRegistryAuth(local, 'x'), local);
  assert.deepEqual(redact(local), local);
});

test('the --localfs-dir built-in config is localfs + blobcache in the same directory', () => {
  const c = localfsDirConfig('/srv/blobs');
  assert.deepEqual(c.backend, { type: 'localfs', localfs: { dir: '/srv/blobs', blob_file: '', alt_dirs: [] } });
  assert.equal(c.cache.type, 'blobcache');
  assert.equal(c.cache.filecache?.work_dir, '/srv/blobs');
  assert.equal(c.rafs.mode, 'direct');
  assert.equal(digestValidationEnabled(c), false);
});

test('keys the parser does not use are named in warnings; cache encryption is refused', () => {
  const warnings: string[] = [];
  const c = parseConfig(
    JSON.stringify({
      device: {
        backend: { type: 'localfs', config: { dir: '/b', readahead: true } },
        cache: { type: 'blobcache', config: { work_dir: '/c', enable_encryption: false } },
      },
      mode: 'direct',
      digest_validate: false,
      fs_prefetch: { enable: false, prefetch_policy: 'fs' },
      amplify_io: 131072,
      unknown_knob: 1,
      ignored_null: null,
    }),
    (m) => warnings.push(m),
  );
  assert.equal(c.backend?.type, 'localfs');
  assert.deepEqual(warnings.sort(), [
    'config: device.backend.config.readahead is not implemented by this nydusd and is ignored',
    'config: fs_prefetch.prefetch_policy is not implemented by this nydusd and is ignored',
    'config: unknown_knob is not implemented by this nydusd and is ignored',
  ]);
  // The samples above use only what is implemented.
  const none: string[] = [];
  for (const cfg of [V1_LOCALFS, JSON.stringify(V1_REGISTRY), JSON.stringify(V2_SAMPLE)]) parseConfig(cfg, (m) => none.push(m));
  assert.deepEqual(none, []);
  rejects({ version: 2, cache: { type: 'filecache', filecache: { work_dir: '/c', enable_encryption: true } } }, 'cache.filecache.enable_encryption', /encryption is not supported/);
  rejects({ device: { backend: { type: 'localfs', config: { dir: '/b' } }, cache: { type: 'blobcache', config: { work_dir: '/c', enable_encryption: true } } } }, 'device.cache.config.enable_encryption');
});

test('a TOML config is read as upstream reads it: version 2 only', () => {
  const toml = [
    'version = 2',
    'id = "t1"',
    '[backend]',
    'type = "localfs"',
    '[backend.localfs]',
    'dir = "/blobs"',
    '[cache]',
    'type = "filecache"',
    '[cache.filecache]',
    'work_dir = "/cache"',
    '[rafs]',
    'mode = "direct"',
    'enable_xattr = true',
  ].join('\n');
  const warnings: string[] = [];
  const c = parseConfig(toml, (m) => warnings.push(m));
  assert.deepEqual(c, normalizeConfig({ version: 2, id: 't1', backend: { type: 'localfs', localfs: { dir: '/blobs' } }, cache: { type: 'filecache', filecache: { work_dir: '/cache' } }, rafs: { mode: 'direct', enable_xattr: true } }));
  assert.deepEqual(warnings, []);
  rejects('[device]\nid = "x"\n', 'version', /TOML config must be "version = 2"/);
  assert.throws(() => parseConfig('{ not json'), /invalid JSON: .* \(nor TOML\)/);
});
