// The FUSE effects on a real mount: READY really has no reader (a stat waits until
// START), invalidations asked for while paused are held and sent on START (so they
// never block), and unmountSession removes the mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FuseService } from '../../src/daemon/fuse-service.js';
import { PseudoFs } from '../../src/fs/pseudo-fs.js';
import { findMount } from '../../src/fuse/mount-linux.js';
import { run, runOk } from '../conformance/child.js';
import { openImage } from '../fs/helpers.js';
import { need, V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { haveFusectl, waitingRequests } from '../helpers/fusectl.js';
import { loopTurns, waitUntil } from '../helpers/wait.js';
import { canMount } from './helpers.js';

test('paused between mount and start; invalidations wait for START; unmount', async (t) => {
  if (!canMount(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'daemon-fuse-'));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const v5 = await openImage(join(V5_FIXTURE, 'bootstrap'), join(V5_FIXTURE, 'blobs'));
  const v6 = await openImage(join(V6_FIXTURE, 'bootstrap'), join(V6_FIXTURE, 'blobs'));
  const fs = new PseudoFs({ uid: 0, gid: 0, startTime: 1 });
  const lost: unknown[] = [];
  const svc = new FuseService({ mountpoint: mnt, impl: 'fusedev', fs, session: { timeouts: { entry: 2 ** 32, attr: 2 ** 32, negative: 0 } }, onLost: (e) => lost.push(e), onNotifier: (n) => fs.setNotifier(n) });
  t.after(async () => {
    if (await findMount(mnt)) await run('umount', ['-l', mnt]);
    await v5.close();
    await v6.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const fx = svc.effects();
  const input = { reason: 'api' as const, connId: null };
  const signal = new AbortController().signal;
  await fs.attach({ mountpoint: '/img', index: fs.allocateIndex(), fs: v5.fs });
  const { connId } = await fx.mountSession(input, signal);
  assert.ok(typeof connId === 'number' && connId > 0);
  if (!need(t, haveFusectl(connId), 'fusectl is mounted at /sys/fs/fuse/connections')) return;
  const waiting = () => waitingRequests(connId);
  const early = run('ls', [join(mnt, 'img')]);
  await waitUntil(() => waiting() > 0, 'the ls reaches the kernel queue');
  // /dev/fuse is read on this event loop: a started reader would have answered by now.
  await loopTurns(20);
  assert.ok(waiting() > 0, 'nobody reads /dev/fuse before START');
  await fx.startService(input, signal);
  assert.equal((await early).stdout.toString().trim().split('\n').join(' '), 'hardlink-test normal-file-test symlink-test');

  await fx.stopService(input, signal);
  // A lookup queued in the root holds the root's inode lock, which invalidating a name
  // in the root needs: sent now, that write would wait for START.
  const queued = run('stat', [join(mnt, 'no-such-name')]);
  await waitUntil(() => waiting() > 0, 'the stat reaches the kernel queue');
  const { old, invalidated } = fs.detach('/img');
  assert.equal(old.fs, v5.fs);
  await fs.attach({ mountpoint: '/img', index: fs.allocateIndex(), fs: v6.fs });
  // Settles before START: an invalidation sent while paused would never return.
  await invalidated;
  assert.ok(waiting() > 0, 'still paused: the stat is unanswered');
  await fx.startService(input, signal);
  assert.notEqual((await queued).code, 0);
  assert.equal((await runOk('ls', [join(mnt, 'img')])).trim().split('\n').join(' '), 'lib.rs sync_io.rs', 'held invalidations went out on START');

  await fx.unmountSession(input, signal);
  assert.equal(await findMount(mnt), undefined);
  assert.deepEqual(lost, [], 'an unmount we asked for is not a lost connection');
});
