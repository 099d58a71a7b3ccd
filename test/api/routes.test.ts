// Every path of paths.ts is routed with exactly its declared methods (nydus
// http_handler.rs route tests), and the upstream error strings are built as upstream's
// Debug formatting prints them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ROUTES } from '../../src/api/paths.js';
import type { ApiMethod } from '../../src/api/paths.js';
import { rustDebugString, upstreamEventName, upstreamFailure } from '../../src/api/upstream-errors.js';
import { ApiError, DaemonError, StorageError } from '../../src/errors.js';
import { serveFake } from './helpers.js';

const METHODS: ApiMethod[] = ['GET', 'PUT', 'POST', 'DELETE'];

describe('routing table', () => {
  test('every declared method of every path is routed; the others are 400 BadRequest', async () => {
    const s = await serveFake({ stateKey: 'INIT.idle' });
    try {
      assert.equal(new Set(ROUTES.map((r) => r.path)).size, ROUTES.length);
      for (const r of ROUTES) {
        for (const m of METHODS) {
          const res = await s.client.request(m, r.path, { query: { mountpoint: '/x', domain_id: 'd' } });
          const body = res.headers['content-type'] === 'application/json' && res.text !== '' ? (JSON.parse(res.text) as { message?: string }) : null;
          assert.notEqual(body?.message, 'NoRoute', `${m} ${r.path} is not routed`);
          if (!r.methods.includes(m)) assert.equal(body?.message, 'BadRequest', `${m} ${r.path} should be refused`);
        }
      }
    } finally {
      await s.close();
    }
  });

  test('upstream paths are the 17 of nydusd HEAD; the 3 extensions live under /api/v1', () => {
    assert.equal(ROUTES.filter((r) => !r.extension).length, 17);
    for (const r of ROUTES.filter((x) => x.extension)) assert.match(r.path, /^\/api\/v1\//);
  });
});

describe('upstream error strings', () => {
  test('rustDebugString escapes as Rust {:?} does', () => {
    assert.equal(rustDebugString(`it's "x"\\`), `"it's \\"x\\"\\\\"`);
    assert.equal(rustDebugString('a\nb\tc\r\0\x01'), '"a\\nb\\tc\\r\\0\\u{1}"');
    assert.equal(rustDebugString('ünï'), '"ünï"');
  });

  test('event names are upstream\'s', () => {
    assert.equal(upstreamEventName('START'), 'Start');
    assert.equal(upstreamEventName('takeover'), 'Takeover');
  });

  test('each kind of failure maps to upstream\'s message and translate_status_code', () => {
    const refused = new DaemonError('ERR_DAEMON_UNEXPECTED_EVENT', 'refused', { detail: { event: 'EXIT' } });
    assert.deepEqual(upstreamFailure(refused, 'Configure'), { status: 400, message: 'Configure(DaemonAbnormal(UnexpectedEvent("Exit")))' });
    const noDetail = new DaemonError('ERR_DAEMON_UNEXPECTED_EVENT', 'refused');
    assert.deepEqual(upstreamFailure(noDetail, 'Upgrade', 'Takeover'), { status: 400, message: 'Upgrade(DaemonAbnormal(UnexpectedEvent("Takeover")))' });
    const upgrade = new DaemonError('ERR_DAEMON_UPGRADE', 'failed to connect to supervisor /s: ECONNREFUSED');
    assert.deepEqual(upstreamFailure(upgrade, 'Upgrade'), {
      status: 500,
      message: 'Upgrade(DaemonAbnormal(UpgradeManager("failed to connect to supervisor /s: ECONNREFUSED")))',
    });
    const unsupported = new StorageError('ERR_STORAGE_UNSUPPORTED', 'no');
    assert.deepEqual(upstreamFailure(unsupported, 'Mount'), { status: 501, message: 'Mount(MountFilesystem(Unsupported))' });
    const notReady = new DaemonError('ERR_DAEMON_NOT_READY', 'no');
    assert.deepEqual(upstreamFailure(notReady, 'Upgrade'), { status: 503, message: 'Upgrade(DaemonAbnormal(NotReady))' });
    // Metrics wrappers put daemon kinds under Metrics(Daemon(..)), which upstream answers 500.
    assert.deepEqual(upstreamFailure(notReady, 'BackendMetrics'), { status: 500, message: 'BackendMetrics(Metrics(Daemon(NotReady)))' });
    const noCounter = new ApiError('ERR_API_NO_COUNTER', 'none');
    assert.deepEqual(upstreamFailure(noCounter, 'BlobcacheMetrics'), { status: 404, message: 'BlobcacheMetrics(Metrics(Stats(NoCounter)))' });
    const withText = new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', 'failed to delete entry', { detail: { upstream: 'blob_cache: cache entry not found' } });
    assert.deepEqual(upstreamFailure(withText, 'DeleteBlobObject'), { status: 500, message: 'DeleteBlobObject(DaemonAbnormal(Other("blob_cache: cache entry not found")))' });
    const badEntry = new ApiError('ERR_CONFIG_INVALID', 'bad cache config');
    assert.deepEqual(upstreamFailure(badEntry, 'CreateBlobObject'), { status: 400, message: 'BadRequest' });
    assert.deepEqual(upstreamFailure(badEntry, 'Mount'), { status: 500, message: 'Mount(MountFilesystem(Other("bad cache config")))' });
  });
});
