// Handing a live FUSE connection from one process to another, with real
// processes and a reader child that never stops: hot upgrade (A saves fd +
// INIT parameters to a supervisor and stops; B serves the same mount without
// INIT), failover (A is killed mid-request; B resumes and NOTIFY_RESEND
// re-queues the lost request), and a crash with nobody holding the fd
// (ENOTCONN until `umount -l`).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Opcode } from '../../src/fuse/abi.js';
import { findMount, checkMountpoint } from '../../src/fuse/mount-linux.js';
import { closeFd, SupervisorListener } from '../../src/native/index.js';
import { MemoryFs } from '../helpers/memory-fs.js';
import { isRoot, need } from '../helpers/env.js';
import { haveFusectl, waitingRequests } from '../helpers/fusectl.js';
import { waitUntil } from '../helpers/wait.js';
import { run } from '../conformance/child.js';
import { LoopReader, ServerProcess } from './procs.js';

interface Env {
  dir: string;
  sock: string;
  procs: (ServerProcess | LoopReader)[];
}

function setup(t: TestContext): Env | undefined {
  if (!need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse')) return undefined;
  const dir = mkdtempSync('/tmp/fuse-handover-');
  const sockDir = mkdtempSync('/tmp/fuse-supervisor-');
  const env: Env = { dir, sock: join(sockDir, 'supervisor.sock'), procs: [] };
  t.after(async () => {
    for (const p of env.procs) p.child.kill('SIGKILL');
    await Promise.all(env.procs.map((p) => p.exited));
    await run('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
    rmSync(sockDir, { recursive: true, force: true });
  });
  return env;
}

function spawnServer(env: Env, args: string[]): ServerProcess {
  const p = new ServerProcess(args);
  env.procs.push(p);
  return p;
}

async function inflightOf(p: ServerProcess): Promise<{ inflight: { opcode: number }[]; byOpcode: Record<string, number> }> {
  p.send('inflight');
  return (await p.next('inflight')) as unknown as { inflight: { opcode: number }[]; byOpcode: Record<string, number> };
}

test('hot upgrade: B serves the same mount from the fd and INIT parameters A handed over, with no new INIT', async (t) => {
  const env = setup(t);
  if (!env) return;
  const fs = new MemoryFs();
  const a = spawnServer(env, ['mount', env.dir]);
  const readyA = await a.next('ready');
  const reader = new LoopReader(join(env.dir, 'data.bin'), fs.contentOf('data.bin'));
  env.procs.push(reader);
  await reader.until(5);

  const sup = SupervisorListener.listen(env.sock);
  t.after(() => sup.close());
  const saving = sup.receive({ timeoutMs: 10_000 });
  a.send(`sendfd ${env.sock}`);
  const saved = await saving;
  await a.next('sent');
  const state = JSON.parse(saved.data.toString()) as { connId: number; init: unknown; mountpoint: string };
  assert.deepEqual([state.connId, state.init, state.mountpoint], [readyA.connId, readyA.init, env.dir]);

  a.send('stop');
  await a.next('stopped');
  const atStop = reader.rounds;
  a.send('close');
  await a.next('closed');
  assert.deepEqual(await a.exited, { code: 0, signal: null });
  assert.equal((await findMount(env.dir))?.fstype, 'fuse.nydus', 'the mount outlives A');
  if (!need(t, haveFusectl(state.connId), 'fusectl is mounted at /sys/fs/fuse/connections')) return;
  await waitUntil(() => waitingRequests(state.connId) > 0, "the reader's next request waits in the kernel");
  assert.ok(reader.rounds <= atStop + 1, 'nobody serves: the reader waits');
  assert.equal(reader.child.exitCode, null, 'and does not fail');

  const sending = sup.send(saved.data, saved.fd, { timeoutMs: 10_000 });
  const b = spawnServer(env, ['takeover', env.sock]);
  await sending;
  closeFd(saved.fd);
  const readyB = await b.next('ready');
  assert.deepEqual([readyB.connId, readyB.init], [readyA.connId, readyA.init]);
  await reader.until(reader.rounds + 10);
  const stats = await inflightOf(b);
  assert.equal(stats.byOpcode[Opcode.INIT], undefined, 'B saw no INIT');
  assert.ok((stats.byOpcode[Opcode.READ] ?? 0) > 0, 'B answered reads');

  await reader.stop();
  assert.deepEqual(reader.bad, []);
  assert.equal(reader.stderr, '');
  assert.deepEqual([...a.reportedErrors(), ...b.reportedErrors()], []);
  b.send('unmount');
  await b.next('unmounted');
  assert.equal(await findMount(env.dir), undefined);
});

test('failover: A is killed mid-request; B resumes from the supervisor fd and NOTIFY_RESEND re-queues the request', async (t) => {
  const env = setup(t);
  if (!env) return;
  const fs = new MemoryFs();
  const a = spawnServer(env, ['mount', env.dir, '60000']);
  await a.next('ready');
  const sup = SupervisorListener.listen(env.sock);
  t.after(() => sup.close());
  const saving = sup.receive({ timeoutMs: 10_000 });
  a.send(`sendfd ${env.sock}`);
  const saved = await saving;

  const want = fs.contentOf('slow.txt');
  const dd = run('dd', [`if=${join(env.dir, 'slow.txt')}`, 'iflag=direct', `bs=${want.length}`, 'status=none']);
  await waitUntil(async () => (await inflightOf(a)).inflight.some((r) => r.opcode === Opcode.READ), 'A has the slow READ in flight');
  a.child.kill('SIGKILL');
  await a.exited;

  const sending = sup.send(saved.data, saved.fd, { timeoutMs: 10_000 });
  const b = spawnServer(env, ['takeover', env.sock, '0', 'resend']);
  await sending;
  closeFd(saved.fd);
  await b.next('ready');
  const r = await dd;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout, want, 'the re-queued READ was answered by B with the right bytes');
  assert.deepEqual(b.reportedErrors(), []);
  b.send('unmount');
  await b.next('unmounted');
});

for (const cleanup of [['umount', '-l'], ['fusermount3', '-u', '-z']]) {
  test(`kill -9 with nobody holding the fd: ENOTCONN, the mountpoint is refused, ${cleanup.join(' ')} cleans up`, async (t) => {
    const env = setup(t);
    if (!env) return;
    const fs = new MemoryFs();
    const a = spawnServer(env, ['mount', env.dir]);
    await a.next('ready');
    const reader = new LoopReader(join(env.dir, 'hello.txt'), fs.contentOf('hello.txt'));
    env.procs.push(reader);
    await reader.until(3);

    a.child.kill('SIGKILL');
    await a.exited;
    const exit = await reader.exited;
    assert.notEqual(exit.code, 0);
    // In-flight requests end with ECONNABORTED, later ones with ENOTCONN.
    assert.match(reader.stderr, /ENOTCONN|ECONNABORTED/);
    const st = await run('stat', [env.dir]);
    assert.match(st.stderr, /Transport endpoint is not connected/);

    assert.equal((await findMount(env.dir))?.fstype, 'fuse.nydus', 'the dead mount stays until cleaned up');
    await assert.rejects(checkMountpoint(env.dir), { code: 'ERR_FUSE_MOUNT', message: /already a FUSE mount/ });
    const um = await run(cleanup[0], [...cleanup.slice(1), env.dir]);
    assert.equal(um.code, 0, um.stderr);
    assert.equal(await findMount(env.dir), undefined);
    assert.equal(await checkMountpoint(env.dir), env.dir);
  });
}
