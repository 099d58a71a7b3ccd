// The controller on a real FUSE mount: startup walks INIT→READY→RUNNING and journals
// events, transitions and outcomes; refused events carry upstream's event name; the
// DaemonControl reads (info, metrics, backend info, machine, config store) answer in
// upstream's shapes; SIGTERM's stop unmounts, API exit keeps the mount, and a lazy
// umount from outside ends the daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { replayDaemon } from '../../machines/daemon-replay.js';
import { stateKey } from '../../machines/daemon.js';
import { NydusError } from '../../src/errors.js';
import { findMount } from '../../src/fuse/mount-linux.js';
import { readTreeJson } from '../rafs/helpers/fixtures.js';
import { run, runOk } from '../conformance/child.js';
import { canMount, daemonFixture } from './helpers.js';

const LAYER = '/normal-file-test/busybox/1f777dbdd68d1c4d554bc0d20e027bfef9ed2dfe2d8d5f029e958552a0e12475/layer.tar';

function code(e: unknown): string | undefined {
  return e instanceof NydusError ? e.code : undefined;
}

test('startup, reads, refused events, reads of DaemonControl, and SIGTERM stop', async (t) => {
  if (!canMount(t)) return;
  const d = await daemonFixture(t);
  const c = d.controller;
  assert.equal(c.state, 'INIT');
  await c.mount('/', d.cmd('v5', { iostats_files: true, access_pattern: true, latest_read_files: true }));
  await c.startup();
  assert.equal(c.state, 'RUNNING');

  const data = await run('cat', [d.mnt + LAYER]);
  assert.equal(createHash('md5').update(data.stdout).digest('hex'), readTreeJson().md5.get(LAYER));

  const records = await c.journal({ sinceSeq: 0, limit: 1000 });
  const shape = records.filter((r) => r.type !== 'log-level').map((r) =>
    r.type === 'event'
      ? `event ${r.event} ${r.reason}`
      : r.type === 'transition'
        ? `${r.from}>${r.to}`
        : r.type === 'outcome'
          ? `outcome ${r.event} ${r.ok}`
          : r.type === 'actor'
            ? `${r.actor} ${r.ok ? 'done' : 'failed'}`
            : r.type,
  );
  assert.deepEqual(shape, [
    'start',
    // The image mount is an event too, with its actor; the mount record is written inside it.
    'event MOUNT_IMAGE api', 'INIT.idle>INIT.changingImage', 'mount', 'changeImage done', 'INIT.changingImage>INIT.idle', 'outcome MOUNT_IMAGE true',
    'event MOUNT startup', 'INIT.idle>INIT.mounting', 'mountSession done', 'INIT.mounting>READY.idle', 'outcome MOUNT true',
    'event START startup', 'READY.idle>READY.starting', 'startService done', 'READY.starting>RUNNING.idle', 'outcome START true',
  ]);

  await assert.rejects(c.start(), (e: unknown) => code(e) === 'ERR_DAEMON_UNEXPECTED_EVENT' && (e as NydusError).detail?.event === 'Start');
  await assert.rejects(c.takeover(), (e: unknown) => code(e) === 'ERR_DAEMON_UNEXPECTED_EVENT' && (e as NydusError).detail?.event === 'Takeover');
  // No --supervisor: sendfd is upstream's 500 (test/upgrade/ covers hot upgrade itself).
  await assert.rejects(c.sendFd(), (e: unknown) => code(e) === 'ERR_DAEMON_UPGRADE' && /no supervisor socket/.test((e as Error).message));
  await assert.rejects(c.addBlob({ type: 'datablob', id: 'x' }), (e: unknown) => code(e) === 'ERR_DAEMON_UNSUPPORTED');
  await c.deleteBlobs({ blob_id: 'x' });
  await assert.rejects(c.deleteBlobs({ domain_id: 'd' }), (e: unknown) => code(e) === 'ERR_DAEMON_UNSUPPORTED');

  const info = c.info();
  assert.equal(info.state, 'RUNNING');
  assert.deepEqual(Object.keys(info), ['version', 'id', 'supervisor', 'state', 'backend_collection']);
  const root = info.backend_collection!['/'];
  assert.equal(root.backend_type, 'Rafs');
  assert.match(root.mounted_time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} \+00:00:00$/);
  assert.equal((root.config as { backend: { type: string } }).backend.type, 'localfs');

  const fsm = c.metrics('fs', {}) as { fop_hits: number[]; data_read: number; id: string; files_account_enabled: boolean };
  assert.equal(fsm.id, '/');
  assert.equal(fsm.files_account_enabled, true);
  assert.ok(fsm.fop_hits[4] > 0, 'reads counted');
  assert.equal(fsm.data_read, data.stdout.length);
  assert.ok(fsm.fop_hits[9] > 0, 'lookups counted');
  const files = c.metrics('files', { id: '/' }) as Record<string, { data_read: number }>;
  assert.ok(Object.values(files).some((f) => f.data_read === data.stdout.length));
  const latest = c.metrics('files', { latest: true }) as number[][];
  assert.equal(latest.length, 1);
  assert.deepEqual(c.metrics('files', { latest: true }), [], 'reading the latest list clears it');
  assert.equal((c.metrics('pattern', {}) as unknown[]).length, 1);
  const backend = c.metrics('backend', { id: '/' }) as { backend_type: string; read_count: number };
  assert.equal(backend.backend_type, 'localfs');
  assert.ok(backend.read_count > 0);
  assert.ok(Array.isArray((c.metrics('blobcache', {}) as { underlying_files: string[] }).underlying_files));
  assert.throws(() => c.metrics('fs', { id: '/nope' }), (e: unknown) => code(e) === 'ERR_API_NO_COUNTER');
  assert.deepEqual(c.metricIds(), { fs: ['/'], files: ['/'], pattern: ['/'], backend: ['/'], blobcache: ['/'] });
  assert.deepEqual(c.inflight(), []);
  assert.equal(c.backendInfo('/').version, 1280);
  assert.throws(() => c.backendInfo('/x'), (e: unknown) => code(e) === 'ERR_DAEMON_MOUNT_NOT_FOUND');
  const m = c.machine();
  assert.equal(m.stateKey, 'RUNNING.idle');
  assert.equal(m.transitions.at(-1)?.to, 'RUNNING.idle');

  await c.setLogLevel('DEBUG');
  await assert.rejects(c.setLogLevel('loud'), (e: unknown) => code(e) === 'ERR_CONFIG_INVALID');
  await c.putConfig('/', { registry_auth: 'dTpw' });
  await assert.rejects(c.putConfig('/', { password: 'x' }), (e: unknown) => code(e) === 'ERR_CONFIG_INVALID');
  assert.deepEqual(c.getConfig('/'), { registry_auth: 'dTpw' });
  assert.deepEqual(c.getConfig(undefined), { '/:registry_auth': 'dTpw' });
  assert.equal(c.errorEvents().total_errors, 0);

  // A failing image change is recorded as the machine's last error, and replays so.
  await assert.rejects(c.umount('/nothing'), (e: unknown) => code(e) === 'ERR_DAEMON_MOUNT_NOT_FOUND');
  assert.equal(c.machine().context.lastError?.code, 'ERR_DAEMON_MOUNT_NOT_FOUND');
  const replayed = replayDaemon(await c.journal({ sinceSeq: 0, limit: 1000 }));
  assert.equal(stateKey(replayed), c.machine().stateKey, 'the journal replays to the state the daemon reports');
  assert.deepEqual(replayed.context, c.machine().context, 'and to its context, config store included');

  await c.shutdown('signal');
  assert.equal(await c.ended, 'signal');
  assert.equal(c.state, 'STOPPED');
  assert.equal(await findMount(d.mnt), undefined, 'SIGTERM unmounts');
  const all = await c.journal({ sinceSeq: 0, limit: 1000 });
  const tail = all.filter((r) => r.type === 'transition').map((r) => (r.type === 'transition' ? r.to : ''));
  // One TRIGGER_STOP event: the machine goes on to the unmount by itself.
  assert.deepEqual(tail.slice(-3), ['RUNNING.stopping', 'READY.unmounting', 'STOPPED']);
  assert.deepEqual(all.filter((r) => r.type === 'event').map((r) => (r.type === 'event' ? r.event : '')).slice(-1), ['TRIGGER_STOP']);
  const final = replayDaemon(all);
  assert.equal(final.status, 'done');
  assert.deepEqual(final.context, c.machine().context);
});

test('API exit stops serving but keeps the mount (ENOTCONN once the fd is gone)', async (t) => {
  if (!canMount(t)) return;
  const d = await daemonFixture(t);
  await d.controller.mount('/', d.cmd('v6'));
  await d.controller.startup();
  await d.controller.exit();
  assert.equal(await d.controller.ended, 'exit');
  assert.ok(await findMount(d.mnt), 'the FUSE mount is still there');
  await d.controller.close();
  const r = await run('stat', [d.mnt]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Transport endpoint is not connected/);
  await runOk('umount', ['-l', d.mnt]);
  assert.equal(await findMount(d.mnt), undefined, 'umount -l clears it');
});

test('a lazy umount from outside ends the connection and the daemon stops', async (t) => {
  if (!canMount(t)) return;
  const d = await daemonFixture(t);
  await d.controller.mount('/', d.cmd('v5'));
  await d.controller.startup();
  await runOk('umount', ['-l', d.mnt]);
  assert.equal(await d.controller.ended, 'connection-lost');
  assert.equal(d.controller.state, 'STOPPED');
});

test('a failed startup mount returns to INIT with the error, and abortStartup leaves nothing mounted', async (t) => {
  if (!canMount(t)) return;
  const d = await daemonFixture(t, { mountpoint: '/proc/self/nonexistent-mountpoint' });
  await d.controller.mount('/', d.cmd('v5'));
  await assert.rejects(d.controller.startup(), (e: unknown) => code(e) === 'ERR_FUSE_MOUNT');
  assert.equal(d.controller.state, 'INIT');
  await d.controller.abortStartup();
  assert.equal(d.controller.state, 'STOPPED');
  assert.deepEqual(d.controller.info().backend_collection, {});
  const recs = await d.controller.journal({ sinceSeq: 0, limit: 100 });
  const outcome = recs.find((r) => r.type === 'outcome' && r.event === 'MOUNT');
  assert.ok(outcome?.type === 'outcome' && outcome.ok === false && outcome.error.code === 'ERR_FUSE_MOUNT');
  assert.equal(recs.at(-1)?.type, 'umount');
});
