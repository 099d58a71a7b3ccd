// Mount, umount and remount through the controller on a live FUSE mount: what the kernel
// shows changes at once (dentries are invalidated), refused mounts change nothing (not
// even the journal), and 300 mount/verify/umount cycles never reuse an index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NydusError } from '../../src/errors.js';
import { replay } from '../../src/daemon/journal.js';
import { run, runOk } from '../conformance/child.js';
import { canMount, daemonFixture } from './helpers.js';
import { waitUntil } from '../helpers/wait.js';

function code(e: unknown): string | undefined {
  return e instanceof NydusError ? e.code : undefined;
}

test('nested mountpoint: stat right after umount and after a new mount; remount swaps the image at once', async (t) => {
  if (!canMount(t)) return;
  const d = await daemonFixture(t);
  const c = d.controller;
  await c.startup();
  assert.equal((await runOk('ls', ['-a', d.mnt])).trim().split('\n').join(' '), '. ..');
  await c.mount('/a/b/c', d.cmd('v5'));
  assert.equal((await runOk('ls', [`${d.mnt}/a/b/c`])).trim().split('\n').join(' '), 'hardlink-test normal-file-test symlink-test');
  await c.umount('/a/b/c');
  const gone = await run('stat', [`${d.mnt}/a/b/c`]);
  assert.notEqual(gone.code, 0, 'umount is visible at once');
  assert.match(gone.stderr, /No such file or directory/);
  await c.mount('/a/b/c', d.cmd('v5'));
  await runOk('stat', [`${d.mnt}/a/b/c/symlink-test`]);
  await c.remount('/a/b/c', d.cmd('v6'));
  assert.equal((await runOk('ls', [`${d.mnt}/a/b/c`])).trim().split('\n').join(' '), 'lib.rs sync_io.rs');
  assert.equal((await runOk('stat', ['-c', '%s', `${d.mnt}/a/b/c/lib.rs`])).trim(), '16931');
  const info = c.info().backend_collection!;
  assert.deepEqual(Object.keys(info), ['/a/b/c']);
  await c.umount('/a/b/c');
  assert.equal((await runOk('ls', ['-a', d.mnt])).trim().split('\n').join(' '), '. ..', 'empty pseudo directories are pruned');
});

test('two images at sub-paths of one daemon, and refused mounts leave nothing behind', async (t) => {
  if (!canMount(t)) return;
  const d = await daemonFixture(t);
  const c = d.controller;
  await c.startup();
  await c.mount('/snap1', d.cmd('v5'));
  await c.mount('/nested/snap2', d.cmd('v6'));
  assert.equal((await runOk('stat', ['-c', '%s', `${d.mnt}/nested/snap2/sync_io.rs`])).trim(), '13400');
  assert.equal((await runOk('readlink', [`${d.mnt}/snap1/symlink-test/foo1`])).trim().length > 0, true);
  const before = (await c.journal({ sinceSeq: 0, limit: 10_000 })).length;
  const bad = [
    [c.mount('/snap1', d.cmd('v6')), 'ERR_DAEMON_MOUNT_EXISTS'],
    [c.umount('/nothing'), 'ERR_DAEMON_MOUNT_NOT_FOUND'],
    [c.remount('/nothing', d.cmd('v6')), 'ERR_DAEMON_MOUNT_NOT_FOUND'],
    [c.mount('/p', { ...d.cmd('v5'), fs_type: 'passthrough_fs' }), 'ERR_DAEMON_UNSUPPORTED'],
    [c.mount('/p', { ...d.cmd('v5'), fs_type: '' }), 'ERR_CONFIG_INVALID'],
    [c.mount('/p', { ...d.cmd('v5'), config: '{bad json' }), 'ERR_CONFIG_INVALID'],
    [c.mount('/p', { ...d.cmd('v5'), config: JSON.stringify({ version: 2, backend: { type: 'oss', oss: {} } }) }), 'ERR_CONFIG_INVALID'],
    [c.mount('/p', { ...d.cmd('v5'), source: '/nonexistent/bootstrap' }), 'ERR_DAEMON_BOOTSTRAP'],
    [c.mount('/p', { ...d.cmd('v5'), prefetch_files: ['relative/path'] }), 'ERR_CONFIG_INVALID'],
    [c.mount('relative', d.cmd('v5')), 'ERR_CONFIG_INVALID'],
  ] as const;
  for (const [p, want] of bad) await assert.rejects(p, (e: unknown) => code(e) === want, want);
  const empty = await c.mount('/p', { ...d.cmd('v5'), fs_type: '' }).catch((e: NydusError) => e);
  assert.match(String((empty as NydusError).detail?.upstream), /only 'rafs' and 'passthrough_fs' are supported, but {2}was specified/);
  // Each refused change is an accepted event whose actor failed: journaled as such, and nothing else.
  const after = (await c.journal({ sinceSeq: 0, limit: 10_000 })).slice(before);
  assert.deepEqual(after.filter((r) => r.type === 'mount' || r.type === 'remount' || r.type === 'umount'), [], 'no mount table change journaled');
  const outcomes = after.filter((r) => r.type === 'outcome');
  assert.ok(outcomes.length > 0 && outcomes.every((r) => r.type === 'outcome' && !r.ok), 'every change failed');
  assert.deepEqual(Object.keys(c.info().backend_collection!), ['/nested/snap2', '/snap1']);
  assert.equal((await runOk('ls', [d.mnt])).trim().split('\n').join(' '), 'nested snap1');
});

test('300 mount/verify/umount cycles through the controller', async (t) => {
  if (!canMount(t)) return;
  const d = await daemonFixture(t);
  const c = d.controller;
  await c.startup();
  const indexes = new Set<number>();
  for (let i = 0; i < 300; i++) {
    const mp = `/pseudo_fs_${i % 3}`;
    await c.mount(mp, d.cmd(i % 2 === 0 ? 'v6' : 'v5'));
    const index = c.pseudoFs.get(mp)!.index;
    assert.ok(!indexes.has(index), `index ${index} reused in cycle ${i}`);
    indexes.add(index);
    const file = i % 2 === 0 ? 'lib.rs' : 'hardlink-test/foo';
    const r = await run('stat', ['-c', '%s', `${d.mnt}${mp}/${file}`]);
    assert.equal(r.code, 0, `cycle ${i}: ${r.stderr}`);
    await c.umount(mp);
  }
  assert.equal(indexes.size, 300);
  const state = await replay(d.stateDir);
  assert.equal(state.mounts.size, 0);
  assert.equal(state.nextIndex, 301, 'the journal knows where allocation resumes');
});

test('a mount with prefetch_files ["/"] and prefetch enabled fills the blobcache in the background', async (t) => {
  if (!canMount(t)) return;
  const d = await daemonFixture(t);
  const c = d.controller;
  await c.startup();
  await c.mount('/pseudo_fs_1', { ...d.cmd('v5', { prefetch: { enable: true } }), prefetch_files: ['/'] });
  const amount = (): number => (c.metrics('blobcache', { id: '/pseudo_fs_1' }) as { prefetch_data_amount: number }).prefetch_data_amount;
  await waitUntil(() => amount() > 0, 'prefetch_data_amount grows');
  await c.umount('/pseudo_fs_1');
});
