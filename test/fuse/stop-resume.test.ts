// Stop reading / resume on a live mount (the first half of a hot upgrade):
// with a reader looping in a child, stopping makes its requests queue in the
// kernel (the child blocks, nothing fails), resuming lets them complete; a
// request in flight when stopReading() is called is answered before it resolves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { Opcode } from '../../src/fuse/abi.js';
import { FuseSession } from '../../src/fuse/session.js';
import { MemoryFs } from '../helpers/memory-fs.js';
import { isRoot, need } from '../helpers/env.js';
import { haveFusectl, waitingRequests } from '../helpers/fusectl.js';
import { loopTurns, waitUntil } from '../helpers/wait.js';
import { run } from '../conformance/child.js';
import { LoopReader } from './procs.js';

async function mounted(t: import('node:test').TestContext, fs: MemoryFs): Promise<{ session: FuseSession; dir: string; errors: unknown[] } | undefined> {
  if (!need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse')) return undefined;
  const dir = mkdtempSync('/tmp/fuse-stop-');
  const errors: unknown[] = [];
  const session = await FuseSession.mount(fs, dir, { timeouts: { entry: 0, attr: 0 }, onError: (e) => errors.push(e) });
  t.after(async () => {
    await session.unmount().catch(() => run('umount', ['-l', dir]));
    rmdirSync(dir);
  });
  return { session, dir, errors };
}

test('stop reading queues requests in the kernel; resume completes them without error', async (t) => {
  const fs = new MemoryFs();
  const m = await mounted(t, fs);
  if (!m) return;
  const reader = new LoopReader(join(m.dir, 'data.bin'), fs.contentOf('data.bin'));
  t.after(() => reader.stop());
  await reader.until(5);

  await m.session.stopReading();
  assert.equal(m.session.reading, false);
  assert.deepEqual(m.session.inflight(), []);
  const atStop = reader.rounds;
  if (!need(t, haveFusectl(m.session.connId), 'fusectl is mounted at /sys/fs/fuse/connections')) return;
  await waitUntil(() => waitingRequests(m.session.connId) > 0, "the reader's next request waits in the kernel");
  // /dev/fuse is read on this event loop: were it still reading, it would have answered by now.
  await loopTurns(20);
  assert.ok(waitingRequests(m.session.connId) > 0, 'the request is still unanswered');
  assert.ok(reader.rounds <= atStop + 1, `reader kept going while stopped: ${atStop} -> ${reader.rounds}`);
  assert.equal(reader.child.exitCode, null, 'the reader is blocked, not failed');

  await m.session.resumeReading();
  assert.equal(m.session.reading, true);
  await reader.until(reader.rounds + 10);
  assert.deepEqual(reader.bad, []);
  assert.equal(reader.stderr, '');
  assert.deepEqual(m.errors, []);
});

test('stopReading() resolves only after the request in flight was answered', async (t) => {
  const fs = new MemoryFs({ slowReadMs: 800 });
  const m = await mounted(t, fs);
  if (!m) return;
  const want = fs.contentOf('slow.txt');
  const child = run('dd', [`if=${join(m.dir, 'slow.txt')}`, 'iflag=direct', `bs=${want.length}`, 'status=none']);
  await waitUntil(() => m.session.inflight().some((r) => r.opcode === Opcode.READ), 'the slow READ reaches the session');
  const inflight = m.session.inflight().find((r) => r.opcode === Opcode.READ);
  assert.ok(inflight, 'the slow READ is in flight');
  assert.equal(inflight.nodeid, fs.resolve('slow.txt').ino);

  await m.session.stopReading();
  assert.deepEqual(m.session.inflight(), [], 'the slow read, in flight when stopping began, was answered first');
  // dd's next read (EOF) waits in the kernel until reading resumes.
  await m.session.resumeReading();
  const r = await child;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout, want);
});
