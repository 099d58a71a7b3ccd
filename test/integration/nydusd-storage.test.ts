// nydusd's data paths seen from outside: a second daemon on the same blobcache work_dir
// reads everything with zero backend reads (counted by GET /api/v1/metrics/backend); a
// corrupted blob copy with digest validation fails the affected file with EIO, lands in
// GET /api/v1/daemon/events, and leaves the other files right; a shared daemon holds two
// images at sub-paths mounted, remounted and unmounted through the admin API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openBootstrap, walk } from '../../src/rafs/index.js';
import { V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { readTreeJson, V5_BLOB_ID } from '../rafs/helpers/fixtures.js';
import { run, runOk } from '../conformance/child.js';
import { configJson } from '../fs/helpers.js';
import { Nydusd, canMount, expectedTree, workspace } from './nydusd-proc.js';

const READ_ALL = 'find . -type f -print0 | sort -z | xargs -0 -r sha256sum';

test('a daemon restarted on the same blobcache reads everything with zero backend reads', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'cache');
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(join(V5_FIXTURE, 'blobs'), join(ws.dir, 'cache'), { validate: true }));
  const sock = join(ws.dir, 'api.sock');
  const args = ['-M', ws.mnt, '-B', join(V5_FIXTURE, 'bootstrap'), '-C', config, '--state-dir', ws.state, '--apisock', sock];
  const want = await runOk('sh', ['-c', READ_ALL], expectedTree(V5_FIXTURE));

  const first = ws.track(new Nydusd(args, ws.mnt));
  await first.waitRunning();
  assert.equal(await runOk('sh', ['-c', READ_ALL], ws.mnt), want);
  const api1 = first.api();
  const cold = (await api1.metrics('backend', { id: '/' })) as { read_count: number; read_amount_total: number };
  api1.close();
  assert.ok(cold.read_count > 0 && cold.read_amount_total > 0, 'the first daemon fetched from the backend');
  assert.deepEqual(await first.stop(), { code: 0, signal: null });

  const second = ws.track(new Nydusd(args, ws.mnt));
  await second.waitRunning();
  assert.equal(await runOk('sh', ['-c', READ_ALL], ws.mnt), want);
  const api2 = second.api();
  const warm = (await api2.metrics('backend', {})) as { read_count: number };
  const cache = (await api2.metrics('blobcache', { id: '/' })) as { whole_hits: number; underlying_files: string[] };
  const fsm = (await api2.metrics('fs', { id: '/' })) as { data_read: number };
  api2.close();
  assert.equal(warm.read_count, 0, 'no backend read at all');
  assert.ok(cache.whole_hits > 0);
  assert.ok(cache.underlying_files.length > 0);
  assert.ok(fsm.data_read > 7_000_000, `data_read ${fsm.data_read}`);
  await second.stop();
});

test('a corrupted blob: EIO for the affected file, the error in /daemon/events, correct bytes for the rest', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'corrupt');
  const blobs = join(ws.dir, 'blobs');
  mkdirSync(blobs);
  copyFileSync(join(V5_FIXTURE, 'blobs', V5_BLOB_ID), join(blobs, V5_BLOB_ID));
  const sb = await openBootstrap(join(V5_FIXTURE, 'bootstrap'));
  const entries = [...walk(sb)].filter((e) => (e.attr.mode & 0o170000) === 0o100000 && e.attr.size > 0);
  const victim = entries.find((e) => e.path.toString().endsWith('layer.tar'))!;
  const bad = sb.fileChunks(victim.ino, 0, victim.attr.size)[1];
  const blob = readFileSync(join(blobs, V5_BLOB_ID));
  blob[bad.compressedOffset + 7] ^= 0x55;
  writeFileSync(join(blobs, V5_BLOB_ID), blob);
  // Legacy v1 config, as many deployments still write it.
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    device: { backend: { type: 'localfs', config: { dir: blobs } }, cache: { type: 'blobcache', config: { work_dir: join(ws.dir, 'cache') } } },
    mode: 'direct',
    digest_validate: true,
  }));
  const sock = join(ws.dir, 'api.sock');
  const d = ws.track(new Nydusd(['-M', ws.mnt, '-B', join(V5_FIXTURE, 'bootstrap'), '-C', config, '--state-dir', ws.state, '--apisock', sock], ws.mnt));
  await d.waitRunning();
  const r = await run('cat', [join(ws.mnt, victim.path.toString())]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Input\/output error/);
  const md5 = readTreeJson().md5;
  let checked = 0;
  for (const e of entries) {
    if (e.ino === victim.ino || sb.fileChunks(e.ino, 0, e.attr.size).some((c) => c.compressedOffset === bad.compressedOffset)) continue;
    const want = md5.get(e.path.toString());
    if (want === undefined) continue;
    assert.equal((await runOk('md5sum', [join(ws.mnt, e.path.toString())])).split(' ')[0], want, e.path.toString());
    checked++;
  }
  assert.ok(checked > 10);
  const api = d.api();
  const events = await api.errorEvents();
  api.close();
  assert.equal(events.max_errors, 500);
  assert.ok(events.total_errors >= 1);
  assert.match(events.errors[0], /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT - ERR_STORAGE_DIGEST_MISMATCH: /);
});

test('a shared daemon: two images at sub-paths through the admin API, remount and umount visible at once', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'shared');
  const sock = join(ws.dir, 'api.sock');
  const d = ws.track(new Nydusd(['fuse', '--mountpoint', ws.mnt, '--state-dir', ws.state, '--apisock', sock, '--thread-num', '10'], ws.mnt));
  await d.waitRunning();
  const api = d.api();
  t.after(() => api.close());
  const cmd = (fixture: string, n: number) => ({
    source: join(fixture, 'bootstrap'),
    fs_type: 'rafs',
    config: configJson(join(fixture, 'blobs'), join(ws.dir, `cache${n}`)),
    prefetch_files: null,
  });
  await api.mount('/snap-a', cmd(V5_FIXTURE, 1));
  await api.mount('/deep/snap-b', cmd(V6_FIXTURE, 2));
  assert.equal((await runOk('ls', [ws.mnt])).trim().split('\n').join(' '), 'deep snap-a');
  assert.equal(await runOk('sh', ['-c', READ_ALL], join(ws.mnt, 'snap-a')), await runOk('sh', ['-c', READ_ALL], expectedTree(V5_FIXTURE)));
  assert.equal(await runOk('sh', ['-c', READ_ALL], join(ws.mnt, 'deep/snap-b')), await runOk('sh', ['-c', READ_ALL], expectedTree(V6_FIXTURE)));
  const ids = Object.keys((await api.info()).backend_collection ?? {}).sort();
  assert.deepEqual(ids, ['/deep/snap-b', '/snap-a']);
  await assert.rejects(api.metrics('fs', {}), /NoCounter/, 'two instances: no default');
  await api.remount('/snap-a', cmd(V6_FIXTURE, 3));
  assert.equal((await runOk('ls', [join(ws.mnt, 'snap-a')])).trim().split('\n').join(' '), 'lib.rs sync_io.rs');
  await api.umount('/deep/snap-b');
  assert.notEqual((await run('stat', [join(ws.mnt, 'deep/snap-b')])).code, 0);
  assert.equal((await runOk('ls', [ws.mnt])).trim(), 'snap-a');
  await assert.rejects(api.umount('/deep/snap-b'), /doesn't exist/);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});
