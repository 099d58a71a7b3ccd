// Upstream's v2 endpoints over the real unix socket against the FakeControl: daemon info
// without mounts, log level, and blob cache entries (PUT body, DELETE by query, GET
// answered 501 where upstream panics).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { V1, V2 } from '../../src/api/paths.js';
import { StorageError } from '../../src/errors.js';
import { assertSchema } from './schema.js';
import { checked, failed, serveFake } from './helpers.js';
import type { Served } from './helpers.js';

const LEGACY_ENTRY_CONFIG = {
  id: 'blob1',
  backend_type: 'localfs',
  backend_config: { dir: '/var/blobs' },
  cache_type: 'fscache',
  cache_config: { work_dir: '/var/cache' },
  metadata_path: '/var/boot/strap',
};

describe('v2 endpoints', () => {
  let s: Served;
  before(async () => (s = await serveFake()));
  after(() => s.close());

  test('GET /api/v2/daemon answers DaemonInfo with backend_collection null, even with mounts', async () => {
    await s.client.mount('/m', { source: '/b', fs_type: 'rafs', config: '{}', prefetch_files: null });
    const info = checked(await s.client.request('GET', V2.daemon), 200) as { backend_collection: unknown };
    assertSchema('v2', 'DaemonInfo', info);
    assert.equal(info.backend_collection, null);
    await s.client.umount('/m');
  });

  test('PUT /api/v2/daemon sets the log level; other methods are 400', async () => {
    checked(await s.client.request('PUT', V2.daemon, { body: { log_level: 'Trace' } }), 204);
    assert.equal(s.control.logLevel, 'trace');
    failed(await s.client.request('POST', V2.daemon, { body: { log_level: 'info' } }), 400, 'BadRequest');
  });

  test('GET /api/v2/blobs: 400 without domain_id, 501 on a fusedev daemon (upstream panics), and the API keeps answering', async () => {
    failed(await s.client.request('GET', V2.blobs), 400, 'BadRequest');
    failed(await s.client.request('GET', V2.blobs, { query: { domain_id: 'd' } }), 501, 'GetBlobObjects(DaemonAbnormal(Unsupported))', 'ERR_DAEMON_UNSUPPORTED');
    checked(await s.client.request('GET', V1.daemon), 200);
  });

  test('PUT /api/v2/blobs adds an entry; a duplicate is 500 with upstream\'s text; invalid entries are 400', async () => {
    const entry = { type: 'bootstrap', id: 'blob1', domain_id: 'd1', config: LEGACY_ENTRY_CONFIG };
    checked(await s.client.request('PUT', V2.blobs, { body: entry }), 204);
    assert.deepEqual(s.control.blobs.get('d1/blob1'), entry);
    failed(
      await s.client.request('PUT', V2.blobs, { body: entry }),
      500,
      'CreateBlobObject(DaemonAbnormal(Other("blob_cache: bootstrap blob already exists")))',
    );
    failed(await s.client.request('PUT', V2.blobs, { body: { ...entry, type: 'layer' } }), 400, 'BadRequest');
    failed(await s.client.request('PUT', V2.blobs, { body: { type: 'datablob', id: 'x' } }), 400, 'BadRequest');
    const noId = checked(await s.client.request('PUT', V2.blobs, { body: { type: 'datablob', config: {} } }), 400) as { message: string };
    assert.match(noId.message, /missing field `id`/);
    failed(await s.client.request('PUT', V2.blobs), 400, 'BadRequest');
    // domain_id defaults to "".
    checked(await s.client.request('PUT', V2.blobs, { body: { type: 'datablob', id: 'blob2', config_v2: { id: 'blob2' } } }), 204);
    assert.equal(s.control.blobs.get('/blob2')?.domain_id, '');
  });

  test('DELETE /api/v2/blobs takes domain_id and/or blob_id as query; neither is 400', async () => {
    failed(await s.client.request('DELETE', V2.blobs), 400, 'BadRequest');
    failed(await s.client.request('DELETE', V2.blobs, { query: { domain_id: 'd1' }, body: {} }), 400, 'BadRequest');
    checked(await s.client.request('DELETE', V2.blobs, { query: { domain_id: 'd1', blob_id: 'blob1' } }), 204);
    assert.equal(s.control.blobs.has('d1/blob1'), false);
    failed(
      await s.client.request('DELETE', V2.blobs, { query: { domain_id: 'd1' } }),
      500,
      'DeleteBlobObject(DaemonAbnormal(Other("blob_cache: cache entry not found")))',
    );
    checked(await s.client.request('DELETE', V2.blobs, { query: { blob_id: 'blob9' } }), 204);
    assert.equal(s.control.calls.at(-1), 'delete-blobs - blob9');
  });

  test('a blob id alone is upstream\'s DeleteBlobFile', async () => {
    s.control.failNext = new StorageError('ERR_STORAGE_CACHE', 'failed to cull blob9: EBUSY');
    failed(await s.client.request('DELETE', V2.blobs, { query: { blob_id: 'blob9' } }), 500, 'DeleteBlobFile(DaemonAbnormal(Other("failed to cull blob9: EBUSY")))');
  });
});
