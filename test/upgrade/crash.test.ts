// Crash detection at start (upstream's check, docs/contract.md §3.4) on real mounts and
// sockets: only a FUSE mount at the mountpoint plus an API socket file that refuses
// connections is a crash; the check never touches the mount (it completes while nobody
// serves it). And the journal lock of a daemon killed with -9 is recognised as stale even
// before its parent reaped it (a zombie still answers signal 0).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { detectCrash, mountpointPath } from '../../src/daemon/upgrade-crash.js';
import { Journal } from '../../src/daemon/journal.js';
import { native } from '../../src/native/index.js';
import { run } from '../conformance/child.js';
import { isRoot, need } from '../helpers/env.js';
import { waitUntil } from '../helpers/wait.js';
import { ServerProcess } from '../fuse/procs.js';

/** A temp dir removed after the test, once `before` (e.g. an unmount) has run. */
function tempDir(t: TestContext, before?: () => Promise<void>): string {
  const dir = mkdtempSync('/tmp/upgrade-crash-');
  t.after(async () => {
    await before?.();
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A socket file nobody listens on: bound, then closed without unlinking (what kill -9 leaves). */
function staleSocket(path: string): void {
  native().close(native().listenUnix(path));
}

test('mountpointPath resolves the parent and keeps the last component as given', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'real'));
  symlinkSync(join(dir, 'real'), join(dir, 'link'));
  assert.equal(await mountpointPath(join(dir, 'link', 'mnt')), join(dir, 'real', 'mnt'));
  assert.equal(await mountpointPath(join(dir, 'real', '.', 'mnt')), join(dir, 'real', 'mnt'));
  assert.equal(await mountpointPath('/'), '/');
  await assert.rejects(mountpointPath(join(dir, 'nope', 'mnt')), { code: 'ERR_FUSE_MOUNT', message: /failed to resolve mountpoint/ });
});

test('no socket, a live socket, or no mount is not a crash; a mount plus a refusing socket is', async (t) => {
  if (!need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse')) return;
  let server: ServerProcess | undefined;
  const dir = tempDir(t, async () => {
    server?.child.kill('SIGKILL');
    await server?.exited;
    await run('umount', ['-l', mnt]);
  });
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const sock = join(dir, 'api.sock');

  staleSocket(sock);
  assert.deepEqual(await detectCrash(mnt, undefined), { crashed: false, reason: 'no --apisock, so no crash detection' });
  assert.equal((await detectCrash(mnt, sock)).crashed, false, 'a stale socket alone is no crash');

  server = new ServerProcess(['mount', mnt]);
  await server.next('ready');
  // Nobody reads the connection from now on: a stat of the mountpoint would wait for ever.
  server.send('stop');
  await server.next('stopped');

  // A stat of the mount would hang: fail in seconds rather than at the runner's timeout.
  const crashed = await Promise.race([detectCrash(mnt, sock), sleep(10_000, undefined, { ref: false }).then(() => assert.fail('detectCrash touched the unserved mount'))]);
  assert.equal(crashed.crashed, true);
  assert.match(crashed.reason, /is still a FUSE mount \(fuse\.nydus\) and .*api\.sock exists but refuses connections/);
  assert.equal((await detectCrash(join(dir, 'mnt'), join(dir, 'missing.sock'))).crashed, false, 'no socket file');

  rmSync(sock);
  const live = createServer().listen(sock);
  await new Promise((r) => live.once('listening', r));
  try {
    const check = await detectCrash(mnt, sock);
    assert.deepEqual(check, { crashed: false, reason: `a daemon still answers on ${sock}` });
  } finally {
    await new Promise((r) => live.close(r));
  }
  server.send('resume');
  await server.next('resumed');
});

test('a journal lock held by a killed but unreaped process is stale; a live holder is refused', async (t) => {
  const dir = tempDir(t);
  // `sh` starts `sleep 0.05` in the background and execs into `sleep 30`, which never
  // reaps it: the short sleep stays a zombie while the long one lives.
  const parent = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => parent.kill('SIGKILL'));
  const zombie = Number((await new Promise<Buffer>((r) => parent.stdout!.once('data', r))).toString().trim());
  await waitUntil(() => /\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8')), 'the short sleep ends and stays a zombie');

  const stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  writeFileSync(join(stateDir, 'journal.lock'), `${parent.pid}\n`);
  await assert.rejects(Journal.open(stateDir), { code: 'ERR_DAEMON_JOURNAL', message: new RegExp(`in use by pid ${parent.pid}`) });
  writeFileSync(join(stateDir, 'journal.lock'), `${zombie}\n`);
  const j = await Journal.open(stateDir);
  assert.equal(readFileSync(join(stateDir, 'journal.lock'), 'utf8').trim(), String(process.pid));
  await j.close();
});
