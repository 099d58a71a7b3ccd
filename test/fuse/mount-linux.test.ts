// Mount plumbing: mountpoint checks with one-line ERR_FUSE_MOUNT errors, the
// options and type a real mount gets, the connection id (st_dev of the
// mountpoint as major<<20|minor), and unmounting a busy mount (lazy detach).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { FuseSession } from '../../src/fuse/session.js';
import { checkMountpoint, connectionId, findMount, mountOptionList, unmountFuse } from '../../src/fuse/mount-linux.js';
import { MemoryFs } from '../helpers/memory-fs.js';
import { isRoot, need } from '../helpers/env.js';
import { run, runOk } from '../conformance/child.js';

test('checkMountpoint refuses missing paths and files with ERR_FUSE_MOUNT', async (t) => {
  const dir = mkdtempSync('/tmp/fuse-mountpoint-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'file'), '');
  await assert.rejects(checkMountpoint(join(dir, 'missing')), { code: 'ERR_FUSE_MOUNT', message: /failed to mount at .*missing: ENOENT/ });
  await assert.rejects(checkMountpoint(join(dir, 'file')), { code: 'ERR_FUSE_MOUNT', message: /not a directory/ });
  assert.equal(await checkMountpoint(`${dir}/.`), dir);
});

test('connection ids and mount options follow nydusd', () => {
  assert.equal(connectionId(0, 42), 42);
  assert.equal(connectionId(3, 7), 3 * 2 ** 20 + 7);
  const opts = mountOptionList({ allowOther: true, defaultPermissions: true, extraOptions: ['max_read=131072'] });
  assert.deepEqual(opts.slice(0, 2), ['fd=3', 'rootmode=40000']);
  for (const o of ['ro', 'nosuid', 'nodev', 'noatime', 'allow_other', 'default_permissions', 'max_read=131072']) assert.ok(opts.includes(o), o);
  assert.ok(!mountOptionList({ allowOther: false, defaultPermissions: false }).some((o) => o === 'allow_other' || o === 'default_permissions'));
});

test('a real mount: type, source, options, connection id; a busy mount is detached lazily', async (t) => {
  if (!need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse')) return;
  const dir = mkdtempSync('/tmp/fuse-mount-');
  t.after(async () => {
    await run('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const session = await FuseSession.mount(new MemoryFs(), dir);
  const info = await findMount(dir);
  assert.deepEqual([info?.fstype, info?.source], ['fuse.nydus', 'rafs']);
  const mounts = await runOk('grep', [` ${dir} `, '/proc/mounts']);
  for (const o of ['ro', 'nosuid', 'nodev', 'noatime', 'default_permissions', 'allow_other', 'user_id=0', 'group_id=0']) {
    assert.match(mounts, new RegExp(`[ ,]${o}[ ,]`), o);
  }
  const [major, minor] = (await runOk('stat', ['-c', '%Hd %Ld', dir])).trim().split(' ').map(Number);
  assert.equal(session.connId, connectionId(major, minor));
  assert.equal(session.exportState().connId, session.connId);

  // A process whose cwd is inside the mount keeps it busy.
  const holder = spawn('sh', ['-c', `cd ${dir} && echo in && exec sleep 60`], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => holder.kill('SIGKILL'));
  await new Promise((r) => holder.stdout!.once('data', r));
  assert.equal(await unmountFuse(dir), 'detached');
  assert.equal(await findMount(dir), undefined);
  await session.unmount();
  assert.equal((await session.ended).reason, 'unmounted');
  assert.equal(await unmountFuse(dir), 'not-mounted');
});
