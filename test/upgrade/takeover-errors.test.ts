// Takeovers and sendfds that cannot work, on real processes: each answers upstream's
// status with a message that says why, the would-be successor stays in INIT (and can
// take over later), and the daemon that serves the mount is not disturbed: readers and
// a holder keep reading correct bytes throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { replay } from '../../src/daemon/journal.js';
import { ApiError } from '../../src/errors.js';
import { closeFd } from '../../src/native/index.js';
import { haveNydusd, startNydusd } from '../api/nydusd-process.js';
import { run } from '../conformance/child.js';
import { V5_FIXTURE } from '../helpers/env.js';
import { isMounted } from '../helpers/env.js';
import { canRun, Rig } from './rig.js';
import { expectedFiles, fixtureHolder, Load } from './readers.js';
import type { Daemon } from './supervisor.js';


/** The rejection of `p`: HTTP status, upstream message and our description. */
async function failure(p: Promise<unknown>): Promise<{ status: number; message: string; code: string }> {
  const err = await p.then(
    () => assert.fail('expected the call to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApiError, String(err));
  const body = err.detail?.body as { message: string; description: string };
  return { status: err.detail?.status as number, message: `${body.message} | ${body.description}`, code: err.code };
}

/** Lets `b` take over from whatever `offer` hands out; checks the error and that `b` is back in INIT with no mount. */
async function refused(b: Daemon, offer: Promise<void> | null, status: number, message: RegExp): Promise<void> {
  offer?.catch(() => undefined);
  const f = await failure(b.client.takeover());
  assert.equal(f.status, status, f.message);
  assert.match(f.message, message);
  await offer?.catch(() => undefined);
  const info = await b.client.info();
  assert.deepEqual([info.state, info.backend_collection], ['INIT', {}]);
}

test('takeovers that cannot work fail clearly; the serving daemon goes on; a later takeover works', async (t) => {
  if (!canRun(t)) return;
  const rig = await Rig.start(t);
  const a = rig.current;
  const load = Load.start(join(rig.dir, 'stop'), 2, expectedFiles(rig.mnt), fixtureHolder(rig.mnt));
  t.after(() => load.kill());
  await load.warm();
  const saved = rig.sup.saved!;
  const state = JSON.parse(saved.data.toString()) as Record<string, unknown> & { fuse: { connId: number }; mounts: { source: string }[] };
  const withFuseFd = (data: Buffer) => {
    const fd = rig.sup.dupSavedFd();
    return rig.sup.offer({ data, fd }).finally(() => closeFd(fd));
  };

  const b = rig.spawn(['--upgrade']);
  await b.waitState('INIT');

  // Before any takeover: no connection to send, no mounts of its own.
  let f = await failure(b.client.sendFd());
  assert.deepEqual([f.status, f.code], [503, 'ERR_DAEMON_NOT_READY']);
  assert.match(f.message, /^Upgrade\(DaemonAbnormal\(NotReady\)\)/);
  f = await failure(b.client.mount('/x', rig.v6Cmd));
  assert.equal(f.status, 503);
  assert.match(f.message, /waits for a takeover; its mounts come from its predecessor/);

  await refused(b, null, 500, /^Upgrade\(DaemonAbnormal\(UpgradeManager\(".*failed to receive state from supervisor .*supervisor\.sock: connect: (ECONNREFUSED|ENOENT)/);
  await refused(b, rig.sup.offer({ data: saved.data, fd: -1 }), 500, /the peer sent no file descriptor/);
  await refused(b, withFuseFd(Buffer.from('garbage, not a state')), 500, /not a nydus-ts daemon state \(20 bytes, starting 67617262/);
  await refused(b, withFuseFd(Buffer.from(JSON.stringify({ ...state, version: 2, compat: 2 }))), 500, /needs a reader of version 2 or newer; this nydusd reads version 1/);
  const devNull = openSync('/dev/null', 'r');
  await refused(b, rig.sup.offer({ data: saved.data, fd: devNull }).finally(() => closeFd(devNull)), 500, /the supervisor sent an fd that is not \/dev\/fuse/);
  const otherConn = { ...state, fuse: { ...state.fuse, connId: state.fuse.connId + 1000 } };
  await refused(b, withFuseFd(Buffer.from(JSON.stringify(otherConn))), 500, new RegExp(`the state is for FUSE connection ${state.fuse.connId + 1000} but .* carries connection ${state.fuse.connId}`));
  const gone = { ...state, journal: { dir: '/elsewhere', seq: 1 }, mounts: [state.mounts[0], { ...state.mounts[1], source: join(rig.dir, 'no-such-bootstrap') }] };
  await refused(b, withFuseFd(Buffer.from(JSON.stringify(gone))), 500, /cannot rebuild the mount at \/v6 from .*no-such-bootstrap/);

  // A takeover is a lifecycle event of INIT only: the serving daemon refuses it.
  f = await failure(a.client.takeover());
  assert.equal(f.status, 400);
  assert.match(f.message, /^Upgrade\(DaemonAbnormal\(UnexpectedEvent\("Takeover"\)\)\)/);
  assert.equal((await a.client.info()).state, 'RUNNING');

  // After all that, the real thing.
  const offered = rig.sup.offer();
  await b.client.takeover();
  await offered;
  assert.equal((await b.client.info()).state, 'READY');
  // While A lives it owns the journal and may still allocate mount indexes: B may not.
  f = await failure(b.client.mount('/x', rig.v6Cmd));
  assert.equal(f.status, 503);
  assert.match(f.message, /the predecessor still holds the journal in .*; retry once it has exited/);
  await a.client.mount('/late', rig.v6Cmd); // index 3, after the takeover: B never serves it
  await a.client.exit();
  await a.exited;
  await b.client.start();
  await b.waitState('RUNNING');
  const stateDir = join(rig.dir, 'state');
  for (let i = 0; i < 50 && (await replay(stateDir)).mounts.has('/late'); i++) await sleep(100);
  assert.deepEqual([...(await replay(stateDir)).mounts.keys()].sort(), ['/v5', '/v6'], 'B journaled the table it serves');
  await b.client.mount('/x', rig.v6Cmd);
  assert.equal((await replay(stateDir)).mounts.get('/x')?.index, 4, "B never reuses an index A allocated after the takeover");
  const report = await load.stop();
  assert.deepEqual(report.bad, []);
  assert.deepEqual(report.early, []);
  assert.ok(report.done.every((d) => d.rounds > 0));
  assert.ok(isMounted(rig.mnt));
});

test('without --supervisor: sendfd and takeover fail with 500 and name the missing flag', async (t) => {
  if (!canRun(t) || !haveNydusd()) return;
  const plain = await startNydusd(V5_FIXTURE);
  t.after(() => plain.stop());
  let f = await failure(plain.client.sendFd());
  assert.equal(f.status, 500);
  assert.match(f.message, /^Upgrade\(DaemonAbnormal\(UpgradeManager\(".*no supervisor socket \(start nydusd with --supervisor and --id\)/);
  assert.equal((await run('cat', [join(plain.mnt, 'hardlink-test', 'foo')])).code, 0, 'the daemon still serves');

  const rig = await Rig.start(t);
  const noSup = rig.baseArgs.filter((a, i, all) => !['--id', '--supervisor'].includes(a) && !['--id', '--supervisor'].includes(all[i - 1]));
  const b = rig.spawn(['--upgrade'], undefined, noSup);
  await b.waitState('INIT');
  f = await failure(b.client.takeover());
  assert.equal(f.status, 500);
  assert.match(f.message, /failed to take over: no supervisor socket/);
  assert.equal((await rig.current.client.info()).state, 'RUNNING');
});

test('fuse-native cannot hand its connection over: sendfd and takeover answer 501 saying why', async (t) => {
  if (!canRun(t)) return;
  const rig = await Rig.start(t);
  const native = rig.spawn(['--fuse-impl', 'fuse-native', '--upgrade']);
  await native.waitState('INIT');
  const offered = rig.sup.offer(undefined, 2000);
  offered.catch(() => undefined);
  let f = await failure(native.client.takeover());
  assert.equal(f.status, 501);
  assert.match(f.message, /the fuse-native transport cannot serve an inherited FUSE connection; use --fuse-impl fusedev/);
  await assert.rejects(offered, /ETIMEDOUT/, "the supervisor's state was not spent on it");

  const fn = await startNydusd(V5_FIXTURE, ['--fuse-impl', 'fuse-native', '--id', 'fn', '--supervisor', rig.sup.sock]);
  t.after(() => fn.stop());
  f = await failure(fn.client.sendFd());
  assert.equal(f.status, 501);
  assert.match(f.message, /cannot hand over its FUSE connection/);
});
