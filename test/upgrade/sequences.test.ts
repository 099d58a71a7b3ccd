// The sequences real supervisors drive (docs/contract.md §4), each on real nydusd
// processes under the test supervisor: nydus-snapshotter's hot upgrade, upstream's
// smoke-test hot upgrade, and failover after kill -9, including the cases where the
// journal knows more than the saved state (mount changes after the last sendfd) or less
// (the state directory was lost), and the three failover policies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readRecords, replay } from '../../src/daemon/journal.js';
import { decodeDaemonState } from '../../src/daemon/upgrade-state.js';
import { run } from '../conformance/child.js';
import { isMounted } from '../helpers/env.js';
import { canRun, Rig } from './rig.js';
import { expectedFiles } from './readers.js';

/** Every file of the mount has its expected digest, read by a child process. */
async function checkFiles(mnt: string, only?: (path: string) => boolean): Promise<void> {
  for (const f of expectedFiles(mnt).filter((e) => only?.(e.path) ?? true)) {
    const r = await run(`${f.algo}sum`, [f.path]);
    assert.equal(r.code, 0, `${f.path}: ${r.stderr}`);
    assert.equal(r.stdout.toString().split(' ')[0], f.digest, f.path);
  }
}

/** Waits until the journal in `stateDir` satisfies `ok` (the successor writes it once its predecessor let go). */
async function journalUntil(stateDir: string, ok: (records: Awaited<ReturnType<typeof readRecords>>) => boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (ok(await readRecords(stateDir))) return;
    await sleep(100);
  }
  assert.fail(`the journal in ${stateDir} never reached the expected records`);
}

function indexes(state: Awaited<ReturnType<typeof replay>>): Record<string, number | null> {
  return Object.fromEntries([...state.mounts].map(([mp, e]) => [mp, e.index]));
}

test("nydus-snapshotter's hot upgrade: takeover while the old daemon serves, old exit, new start", async (t) => {
  if (!canRun(t)) return;
  const rig = await Rig.start(t);
  const stateDir = join(rig.dir, 'state');
  const old = rig.current;
  await rig.upgradeSnapshotter();
  const next = rig.current;
  assert.deepEqual(await old.exited, { code: 0, signal: null }, 'the old daemon exits 0 after PUT /daemon/exit');
  assert.ok(isMounted(rig.mnt), 'the mount stays');
  const info = await next.client.info();
  assert.deepEqual([info.state, info.id, Object.keys(info.backend_collection ?? {}).sort()], ['RUNNING', 'upgrade-test', ['/v5', '/v6']]);
  await checkFiles(rig.mnt);

  // The successor took the journal over once the old daemon left, with its own records.
  await journalUntil(stateDir, (rs) => rs.some((r) => r.type === 'event' && r.event === 'START' && r.reason === 'api'));
  const records = await readRecords(stateDir);
  const takeover = records.find((r) => r.type === 'event' && r.event === 'TAKEOVER');
  assert.ok(takeover, 'the TAKEOVER event is journaled');
  const outcome = records.find((r) => r.type === 'outcome' && r.event === 'TAKEOVER');
  assert.ok(outcome?.type === 'outcome' && outcome.ok && outcome.of === takeover.seq, 'its outcome names it by its journal seq');
  assert.deepEqual(indexes(await replay(stateDir)), { '/v5': 1, '/v6': 2 });

  // Index allocation goes on after the predecessor's highest.
  await next.client.mount('/v7', rig.v6Cmd);
  assert.equal((await replay(stateDir)).mounts.get('/v7')?.index, 3);
  await checkFiles(rig.mnt, (p) => p.includes('/v6/'));
  const r = await run('cmp', [join(rig.mnt, 'v6', 'lib.rs'), join(rig.mnt, 'v7', 'lib.rs')]);
  assert.equal(r.code, 0, r.stderr);

  // A successor stops like any daemon: SIGTERM unmounts.
  next.child.kill('SIGTERM');
  assert.deepEqual(await next.exited, { code: 0, signal: null });
  assert.equal(isMounted(rig.mnt), false);
});

test("upstream's smoke-test hot upgrade: old exit before the takeover, sendfd in READY, then start", async (t) => {
  if (!canRun(t)) return;
  const rig = await Rig.start(t);
  const old = rig.current;
  await rig.upgradeSmoke();
  assert.deepEqual(await old.exited, { code: 0, signal: null });
  const saved = decodeDaemonState(rig.sup.saved!.data);
  assert.equal(saved.daemon.pid, rig.current.child.pid, 'the supervisor holds the state the new daemon sent in READY');
  assert.deepEqual(saved.mounts.map((m) => [m.mountpoint, m.index]), [['/v5', 1], ['/v6', 2]]);
  assert.equal(typeof saved.journal.seq, 'number', 'the new daemon had taken the journal over by then');
  assert.equal((await rig.current.client.info()).state, 'RUNNING');
  await checkFiles(rig.mnt);
  // And again, from the successor.
  await rig.upgradeSmoke();
  await checkFiles(rig.mnt);
});

test('failover: mount changes after the last sendfd come back from the journal', async (t) => {
  if (!canRun(t)) return;
  const rig = await Rig.start(t);
  await rig.current.client.mount('/late', rig.v6Cmd);
  await rig.current.client.umount('/v6');
  const saved = decodeDaemonState(rig.sup.saved!.data);
  assert.deepEqual(saved.mounts.map((m) => m.mountpoint), ['/v5', '/v6'], 'the supervisor still holds the older state');
  const old = rig.current;
  await rig.failover();
  assert.equal((await old.exited).signal, 'SIGKILL');
  assert.match(rig.current.stderr, /a previous daemon crashed; waiting in INIT for a takeover/);
  assert.match(rig.current.stderr, /has mount changes made after the state was saved .*; using the journal/);
  const info = await rig.current.client.info();
  assert.deepEqual(Object.keys(info.backend_collection ?? {}).sort(), ['/late', '/v5']);
  assert.deepEqual(indexes(await replay(join(rig.dir, 'state'))), { '/v5': 1, '/late': 3 });
  await checkFiles(rig.mnt, (p) => p.includes('/v5/'));
  const late = await run('sha256sum', [join(rig.mnt, 'late', 'lib.rs')]);
  assert.match(late.stdout.toString(), /^1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69 /);
  const gone = await run('ls', [join(rig.mnt, 'v6')]);
  assert.notEqual(gone.code, 0, 'the unmounted /v6 stays unmounted');
});

test('failover after the state directory was lost: the state rebuilds the mounts and the new journal records them', async (t) => {
  if (!canRun(t)) return;
  const rig = await Rig.start(t);
  const stateDir = join(rig.dir, 'state');
  await rig.failover({ afterKill: () => rmSync(stateDir, { recursive: true, force: true }) });
  assert.match(rig.current.stderr, /the journal in .* ends at seq 0, before the state's \d+; using the supervisor's state/);
  assert.deepEqual(indexes(await replay(stateDir)), { '/v5': 1, '/v6': 2 }, 'the rebuilt mounts are journaled again');
  await checkFiles(rig.mnt);
});

for (const policy of ['resend', 'flush', 'none'] as const) {
  test(`failover with --failover-policy ${policy}`, async (t) => {
    if (!canRun(t)) return;
    const rig = await Rig.start(t, ['--failover-policy', policy]);
    await rig.failover();
    const log = rig.current.stderr;
    if (policy === 'resend') assert.match(log, /failover policy resend applied to FUSE connection \d+/);
    // Mainline kernels have no `flush` control file (only some vendor kernels do): upstream then only warns.
    if (policy === 'flush') assert.match(log, /failover policy flush (applied to FUSE connection \d+|to FUSE connection \d+: .*; serving anyway)/);
    if (policy === 'none') assert.doesNotMatch(log, /failover policy/);
    await checkFiles(rig.mnt);
  });
}

test('failover restores config set through the API: from the journal, else from the saved state', async (t) => {
  if (!canRun(t)) return;
  const rig = await Rig.start(t);
  const stateDir = join(rig.dir, 'state');
  // Set after the last sendfd: only the journal has it.
  await rig.current.client.putConfig('/v6', { registry_auth: 'dXNlcjpwYXNz', proxy_url: 'http://proxy.example:3128' });
  await rig.failover();
  assert.deepEqual(await rig.current.client.getConfig('/v6'), { registry_auth: '<redacted>', proxy_url: 'http://proxy.example:3128' });
  assert.equal((await replay(stateDir)).config['/v6:registry_auth'], 'dXNlcjpwYXNz', 'the successor keeps the credentials in its journal');
  // Set on the successor and sent to the supervisor, then the journal is lost: the state has it.
  await rig.current.client.putConfig('/v5', { proxy_url: 'http://second.example:3128' });
  await rig.sup.fetch(rig.current.client);
  await rig.failover({ afterKill: () => rmSync(stateDir, { recursive: true, force: true }) });
  assert.match(rig.current.stderr, /using the supervisor's state/);
  assert.deepEqual(await rig.current.client.getConfig(undefined), {
    '/v6:registry_auth': '<redacted>',
    '/v6:proxy_url': 'http://proxy.example:3128',
    '/v5:proxy_url': 'http://second.example:3128',
  });
  assert.equal((await replay(stateDir)).config['/v6:registry_auth'], 'dXNlcjpwYXNz', 'the new journal records what the state restored');
  await checkFiles(rig.mnt);
});
