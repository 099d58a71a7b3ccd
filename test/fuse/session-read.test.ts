// How the session takes requests from /dev/fuse on the event loop: requests that
// queue faster than one read batch are all served (the watch is level-triggered),
// the event loop stays responsive while clients hammer the mount, and the kernel
// ending the connection is reported as such: abort -> 'aborted' (ECONNABORTED),
// umount -l -> 'unmounted' (ENODEV).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { FuseSession, type SessionOptions } from '../../src/fuse/session.js';
import { MemoryFs } from '../helpers/memory-fs.js';
import { isRoot, need } from '../helpers/env.js';
import { run } from '../conformance/child.js';
import { LoopReader } from './procs.js';

const E = constants.errno;

async function mounted(t: TestContext, opts: SessionOptions = {}): Promise<{ session: FuseSession; dir: string; fs: MemoryFs; errors: unknown[] } | undefined> {
  if (!need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse')) return undefined;
  const dir = mkdtempSync('/tmp/fuse-read-');
  const fs = new MemoryFs();
  const errors: unknown[] = [];
  const session = await FuseSession.mount(fs, dir, { timeouts: { entry: 0, attr: 0 }, onError: (e) => errors.push(e), ...opts });
  t.after(async () => {
    await session.unmount().catch(() => undefined);
    await run('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return { session, dir, fs, errors };
}

test('requests queued beyond one read batch are all served, and timers keep running meanwhile', async (t) => {
  const m = await mounted(t, { readBatch: 1 });
  if (!m) return;
  const want = m.fs.contentOf('data.bin');
  const readers = [0, 1, 2, 3].map(() => new LoopReader(join(m.dir, 'data.bin'), want));
  t.after(() => Promise.all(readers.map((r) => r.stop())));
  // A timer due every millisecond: a reader that kept the loop to itself would starve it.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  t.after(() => clearInterval(timer));
  await Promise.all(readers.map((r) => r.until(r.rounds + 5)));
  clearInterval(timer);
  for (const r of readers) {
    assert.deepEqual(r.bad, []);
    assert.equal(r.stderr, '');
  }
  assert.deepEqual(m.errors, []);
  assert.ok(ticks > 0, 'the timer ran while the readers were served');
});

test('an aborted connection ends the session with reason aborted', async (t) => {
  const m = await mounted(t);
  if (!m) return;
  const abort = `/sys/fs/fuse/connections/${m.session.connId}/abort`;
  if (!need(t, existsSync(abort), 'fusectl is mounted at /sys/fs/fuse/connections')) return;
  writeFileSync(abort, '1');
  const end = await m.session.ended;
  assert.deepEqual(end, { reason: 'aborted', errno: E.ECONNABORTED });
  assert.equal(m.session.reading, false);
  const r = await run('stat', [m.dir]);
  assert.notEqual(r.code, 0, 'the mount answers ENOTCONN once aborted');
  assert.match(r.stderr, /not connected/i);
});

test('a lazy unmount by someone else ends the session with reason unmounted', async (t) => {
  const m = await mounted(t);
  if (!m) return;
  await run('umount', ['-l', m.dir]);
  const end = await m.session.ended;
  assert.deepEqual(end, { reason: 'unmounted', errno: E.ENODEV });
  await assert.rejects(m.session.resumeReading(), { code: 'ERR_FUSE_SESSION' });
});
