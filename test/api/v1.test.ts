// Every upstream v1 endpoint over the real unix socket, against the FakeControl: methods,
// queries, bodies, success statuses and every error with upstream's status and message;
// each body checked against the schemas derived from upstream's OpenAPI file.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { V1 } from '../../src/api/paths.js';
import { assertSchema } from './schema.js';
import { checked, failed, serveFake } from './helpers.js';
import type { Served } from './helpers.js';

const MOUNT = { source: '/boot/strap', fs_type: 'rafs', config: '{"device":{"id":"/x"}}', prefetch_files: ['/etc'] };

describe('v1 daemon endpoints', () => {
  let s: Served;
  before(async () => (s = await serveFake()));
  after(() => s.close());

  test('GET /daemon answers DaemonInfo with the mount table', async () => {
    const info = checked(await s.client.request('GET', V1.daemon), 200);
    assertSchema('v1', 'DaemonInfo', info);
    assert.equal((info as { state: string }).state, 'READY');
    assert.deepEqual((info as { backend_collection: unknown }).backend_collection, {});
  });

  test('PUT /daemon sets the log level case-insensitively; a bad level is 500 ResponsePayloadType', async () => {
    checked(await s.client.request('PUT', V1.daemon, { body: { log_level: 'DEBUG' } }), 204);
    assert.equal(s.control.logLevel, 'debug');
    failed(await s.client.request('PUT', V1.daemon, { body: { log_level: 'verbose' } }), 500, 'Configure(ResponsePayloadType)');
    assert.equal(s.control.logLevel, 'debug');
  });

  test('PUT /daemon body problems are 400 ParseBody naming the problem', async () => {
    failed(await s.client.request('PUT', V1.daemon, { body: {} }), 400, 'ParseBody(Error("missing field `log_level`", line: 1, column: 2))');
    const wrongType = await s.client.request('PUT', V1.daemon, { body: { log_level: 1 } });
    failed(wrongType, 400, 'ParseBody(Error("invalid type: integer `1`, expected a string", line: 1, column: 15))');
    const badJson = checked(await s.client.request('PUT', V1.daemon, { body: '{"log_level":' }), 400) as { message: string };
    assert.match(badJson.message, /^ParseBody\(Error\(".+", line: 1, column: \d+\)\)$/);
    const notObject = checked(await s.client.request('PUT', V1.daemon, { body: '[1]' }), 400) as { message: string };
    assert.match(notObject.message, /invalid type: sequence, expected struct DaemonConf/);
  });

  test('wrong method, missing body or unexpected body on /daemon is 400 BadRequest', async () => {
    failed(await s.client.request('DELETE', V1.daemon), 400, 'BadRequest', 'ERR_API_BAD_REQUEST');
    failed(await s.client.request('POST', V1.daemon, { body: { log_level: 'info' } }), 400, 'BadRequest');
    failed(await s.client.request('PUT', V1.daemon), 400, 'BadRequest');
    failed(await s.client.request('GET', V1.daemon, { body: { x: 1 } }), 400, 'BadRequest');
  });

  test('GET /daemon/events answers the error ring', async () => {
    assertSchema('v1', 'Events', checked(await s.client.request('GET', V1.events), 200));
    failed(await s.client.request('PUT', V1.events), 400, 'BadRequest');
  });

  test('GET /daemon/backend needs ?mountpoint and answers the superblock', async () => {
    failed(await s.client.request('GET', V1.backend), 400, `QueryString("'mountpoint' should be specified in query string")`);
    failed(
      await s.client.request('GET', V1.backend, { query: { mountpoint: '/nope' } }),
      500,
      `FsBackendInfo(Metrics(Daemon(Other("object or filesystem doesn't exist"))))`,
      'ERR_DAEMON_MOUNT_NOT_FOUND',
    );
    checked(await s.client.request('POST', V1.mount, { query: { mountpoint: '/sb' }, body: MOUNT }), 204);
    assertSchema('v1', 'RafsSuperMeta', checked(await s.client.request('GET', V1.backend, { query: { mountpoint: '/sb' } }), 200));
    checked(await s.client.request('DELETE', V1.mount, { query: { mountpoint: '/sb' } }), 204);
  });
});

describe('v1 lifecycle endpoints', () => {
  test('start: READY -> RUNNING, then 400 UnexpectedEvent("Start"); body or GET is 400', async () => {
    const s = await serveFake({ stateKey: 'READY.idle' });
    try {
      failed(await s.client.request('PUT', V1.start, { body: {} }), 400, 'BadRequest');
      failed(await s.client.request('GET', V1.start), 400, 'BadRequest');
      checked(await s.client.request('PUT', V1.start), 204);
      assert.equal(s.control.state, 'RUNNING');
      failed(await s.client.request('PUT', V1.start), 400, 'Configure(DaemonAbnormal(UnexpectedEvent("Start")))', 'ERR_DAEMON_UNEXPECTED_EVENT');
    } finally {
      await s.close();
    }
  });

  test('takeover: 400 outside INIT, 204 from INIT to READY; sendfd 503 before a FUSE connection', async () => {
    const s = await serveFake({ stateKey: 'INIT.idle' });
    try {
      failed(await s.client.request('PUT', V1.sendFd), 503, 'Upgrade(DaemonAbnormal(NotReady))', 'ERR_DAEMON_NOT_READY');
      checked(await s.client.request('PUT', V1.takeover), 204);
      assert.equal(s.control.state, 'READY');
      failed(await s.client.request('PUT', V1.takeover), 400, 'Upgrade(DaemonAbnormal(UnexpectedEvent("Takeover")))');
      checked(await s.client.request('PUT', V1.sendFd), 204);
      failed(await s.client.request('GET', V1.takeover), 400, 'BadRequest');
    } finally {
      await s.close();
    }
  });

  test('exit: RUNNING -> STOPPED through interrupting (the connection kept), 204', async () => {
    const s = await serveFake({ stateKey: 'RUNNING.idle' });
    try {
      checked(await s.client.request('PUT', V1.exit), 204);
      assert.equal(s.control.state, 'STOPPED');
      assert.deepEqual(
        s.control.transitions.map((t) => t.to),
        ['RUNNING.interrupting', 'STOPPED'],
      );
      failed(await s.client.request('PUT', V1.exit, { body: 'x' }), 400, 'BadRequest');
    } finally {
      await s.close();
    }
  });

  test('a thrown non-catalogue error is 500 with its details withheld and logged', async () => {
    const s = await serveFake();
    try {
      s.control.failNext = new TypeError('boom: secret detail');
      const body = checked(await s.client.request('PUT', V1.start), 500) as { message: string; description: string; error_code: string };
      assert.equal(body.message, 'Configure(DaemonAbnormal(Other("internal error")))');
      assert.equal(body.error_code, 'ERR_API_INTERNAL');
      assert.doesNotMatch(body.description, /secret/);
      assert.ok(s.logs.some((l) => l.startsWith('error ') && l.includes('secret detail')));
    } finally {
      await s.close();
    }
  });
});

describe('v1 mount endpoint', () => {
  let s: Served;
  before(async () => (s = await serveFake()));
  after(() => s.close());

  test('the mountpoint query is checked before the method', async () => {
    const q = `QueryString("'mountpoint' should be specified in query string")`;
    failed(await s.client.request('POST', V1.mount, { body: MOUNT }), 400, q);
    failed(await s.client.request('GET', V1.mount), 400, q);
    failed(await s.client.request('GET', V1.mount, { query: { mountpoint: '/a' } }), 400, 'BadRequest');
  });

  test('POST mounts, a second POST is 500 already exists, DELETE umounts, again 500 doesn\'t exist', async () => {
    checked(await s.client.request('POST', V1.mount, { query: { mountpoint: '/a' }, body: MOUNT }), 204);
    assert.deepEqual(s.control.mounts.get('/a')?.cmd, MOUNT);
    failed(
      await s.client.request('POST', V1.mount, { query: { mountpoint: '/a' }, body: MOUNT }),
      500,
      'Mount(MountFilesystem(Other("object or filesystem already exists")))',
      'ERR_DAEMON_MOUNT_EXISTS',
    );
    checked(await s.client.request('PUT', V1.mount, { query: { mountpoint: '/a' }, body: { ...MOUNT, source: '/other' } }), 204);
    assert.equal(s.control.mounts.get('/a')?.cmd.source, '/other');
    checked(await s.client.request('DELETE', V1.mount, { query: { mountpoint: '/a' } }), 204);
    const gone = 'Mount(MountFilesystem(Other("object or filesystem doesn\'t exist")))';
    failed(await s.client.request('DELETE', V1.mount, { query: { mountpoint: '/a' } }), 500, gone, 'ERR_DAEMON_MOUNT_NOT_FOUND');
    failed(await s.client.request('PUT', V1.mount, { query: { mountpoint: '/a' }, body: MOUNT }), 500, gone);
  });

  test('MountCmd: fs_type defaults to "" (500 like upstream), source/config required, prefetch_files a list', async () => {
    const q = { mountpoint: '/b' };
    failed(
      await s.client.request('POST', V1.mount, { query: q, body: { source: '/s', config: '{}' } }),
      500,
      "Mount(MountFilesystem(Other(\"invalid argument `only 'rafs' and 'passthrough_fs' are supported, but  was specified`\")))",
    );
    const noSource = checked(await s.client.request('POST', V1.mount, { query: q, body: { config: '{}', fs_type: 'rafs' } }), 400) as { message: string };
    assert.match(noSource.message, /^ParseBody\(Error\("missing field `source`", line: 1, column: \d+\)\)$/);
    const badPrefetch = checked(await s.client.request('POST', V1.mount, { query: q, body: { ...MOUNT, prefetch_files: '/etc' } }), 400) as { message: string };
    assert.match(badPrefetch.message, /invalid type: string \\"\/etc\\", expected a sequence/);
    checked(await s.client.request('POST', V1.mount, { query: q, body: { ...MOUNT, prefetch_files: null, extra: 1 } }), 204);
    assert.equal(s.control.mounts.get('/b')?.cmd.prefetch_files, null);
    failed(await s.client.request('POST', V1.mount, { query: q }), 400, 'BadRequest');
    failed(await s.client.request('DELETE', V1.mount, { query: q, body: MOUNT }), 400, 'BadRequest');
    checked(await s.client.request('DELETE', V1.mount, { query: q }), 204);
  });

  test('query parameters are form-decoded: %2F is / and + is a space; the first one wins', async () => {
    const res = await s.client.request('POST', `${V1.mount}?mountpoint=%2Fa+b&mountpoint=/second`, { body: MOUNT });
    checked(res, 204);
    assert.ok(s.control.mounts.has('/a b'));
    checked(await s.client.request('DELETE', V1.mount, { query: { mountpoint: '/a b' } }), 204);
  });
});

describe('v1 metrics and config endpoints', () => {
  let s: Served;
  before(async () => (s = await serveFake({ stateKey: 'RUNNING.idle' })));
  after(() => s.close());

  test('metrics: 404 NoCounter without an instance; the only one without ?id; by id otherwise', async () => {
    failed(await s.client.request('GET', V1.metrics), 404, 'GlobalMetrics(Metrics(Stats(NoCounter)))', 'ERR_API_NO_COUNTER');
    await s.client.mount('/m1', MOUNT);
    assertSchema('v1', 'FsIoStats', checked(await s.client.request('GET', V1.metrics), 200));
    await s.client.mount('/m2', MOUNT);
    failed(await s.client.request('GET', V1.metrics), 404, 'GlobalMetrics(Metrics(Stats(NoCounter)))');
    const m2 = checked(await s.client.request('GET', V1.metrics, { query: { id: '/m2' } }), 200) as { id: string };
    assert.equal(m2.id, '/m2');
    failed(await s.client.request('GET', V1.metrics, { query: { id: '/none' } }), 404, 'GlobalMetrics(Metrics(Stats(NoCounter)))');
    failed(await s.client.request('PUT', V1.metrics), 400, 'BadRequest');
  });

  test('files, pattern, backend and blobcache metrics match their schemas; NoCounter is 404 for each', async () => {
    const id = { id: '/m1' };
    assertSchema('v1', 'FilesMetrics', checked(await s.client.request('GET', V1.metricsFiles, { query: id }), 200));
    const latest = checked(await s.client.request('GET', V1.metricsFiles, { query: { ...id, latest: 'true' } }), 200);
    assert.ok(Array.isArray(latest));
    assertSchema('v1', 'FilesMetrics', latest);
    // Rust's bool parse: only "true" is true.
    assert.ok(!Array.isArray(checked(await s.client.request('GET', V1.metricsFiles, { query: { ...id, latest: 'TRUE' } }), 200)));
    assertSchema('v1', 'AccessPatterns', checked(await s.client.request('GET', V1.metricsPattern, { query: id }), 200));
    assertSchema('v1', 'BackendMetrics', checked(await s.client.request('GET', V1.metricsBackend, { query: id }), 200));
    assertSchema('v1', 'BlobcacheMetrics', checked(await s.client.request('GET', V1.metricsBlobcache, { query: id }), 200));
    const none = { id: '/none' };
    failed(await s.client.request('GET', V1.metricsFiles, { query: none }), 404, 'FsFilesMetrics(Metrics(Stats(NoCounter)))');
    failed(await s.client.request('GET', V1.metricsPattern, { query: none }), 404, 'Pattern(Metrics(Stats(NoCounter)))');
    failed(await s.client.request('GET', V1.metricsBackend, { query: none }), 404, 'BackendMetrics(Metrics(Stats(NoCounter)))');
    failed(await s.client.request('GET', V1.metricsBlobcache, { query: none }), 404, 'BlobcacheMetrics(Metrics(Stats(NoCounter)))');
  });

  test('inflight: 204 with no body when idle, 200 with the list otherwise', async () => {
    checked(await s.client.request('GET', V1.metricsInflight), 204);
    s.control.inflightList = [{ inode: 5, opcode: 15, unique: 42, timestamp_secs: 1700000000 }];
    const list = checked(await s.client.request('GET', V1.metricsInflight), 200);
    assertSchema('v1', 'FuseInflight', list);
    assert.deepEqual(await s.client.inflight(), s.control.inflightList);
    s.control.inflightList = [];
    assert.deepEqual(await s.client.inflight(), []);
  });

  test('config: PUT stores by id, GET strips the prefix with ?id and redacts secrets; unknown keys 500, non-strings 400', async () => {
    checked(await s.client.request('PUT', V1.config, { query: { id: '/snap1' }, body: { registry_auth: 'dXNlcjpwYXNz' } }), 204);
    checked(await s.client.request('PUT', V1.config, { body: { proxy_url: 'http://p' } }), 204);
    checked(await s.client.request('PUT', V1.config, { query: { id: '/snap2' }, body: { proxy_url: 'http://u:pw@p:3128/x', registry_auth: '' } }), 204);
    const mine = checked(await s.client.request('GET', V1.config, { query: { id: '/snap1' } }), 200);
    assertSchema('v1', 'ConfigValues', mine);
    assert.deepEqual(mine, { registry_auth: '<redacted>' });
    assert.deepEqual(checked(await s.client.request('GET', V1.config), 200), {
      '/snap1:registry_auth': '<redacted>',
      ':proxy_url': 'http://p',
      '/snap2:proxy_url': 'http://u:<redacted>@p:3128/x',
      '/snap2:registry_auth': '',
    });
    assert.deepEqual(s.control.getConfig('/snap1'), { registry_auth: 'dXNlcjpwYXNz' }, 'the store keeps the secret');
    failed(await s.client.request('PUT', V1.config, { body: { password: 'x' } }), 500, 'Configure(ResponsePayloadType)');
    const bad = checked(await s.client.request('PUT', V1.config, { body: { registry_auth: 5 } }), 400) as { message: string };
    assert.match(bad.message, /invalid type: integer `5`, expected a string/);
    failed(await s.client.request('DELETE', V1.config), 400, 'BadRequest');
  });
});

describe('v1 without a FUSE service (singleton)', () => {
  test('inflight is 501 InflightMetrics(DaemonAbnormal(Unsupported))', async () => {
    const s = await serveFake({ mode: 'singleton' });
    try {
      failed(await s.client.request('GET', V1.metricsInflight), 501, 'InflightMetrics(DaemonAbnormal(Unsupported))', 'ERR_DAEMON_UNSUPPORTED');
      const info = checked(await s.client.request('GET', V1.daemon), 200) as { backend_collection: unknown };
      assert.equal(info.backend_collection, null);
    } finally {
      await s.close();
    }
  });
});
