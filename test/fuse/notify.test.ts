// Kernel cache invalidation through notifications: with long cache
// lifetimes a second stat is served from the kernel's caches; after
// notifyInvalEntry / notifyInvalInode the kernel asks the daemon again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { Opcode } from '../../src/fuse/abi.js';
import { FuseSession } from '../../src/fuse/session.js';
import { MemoryFs } from '../helpers/memory-fs.js';
import { isRoot, need } from '../helpers/env.js';
import { run, runOk } from '../conformance/child.js';

test('notifyInvalEntry and notifyInvalInode make the kernel ask again', async (t) => {
  if (!need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse')) return;
  const fs = new MemoryFs();
  const dir = mkdtempSync('/tmp/fuse-notify-');
  const seen: [number, number][] = [];
  const session = await FuseSession.mount(fs, dir, { timeouts: { entry: 600, attr: 600 }, onComplete: (op, node) => seen.push([op, node]) });
  t.after(async () => {
    await session.unmount().catch(() => run('umount', ['-l', dir]));
    rmdirSync(dir);
  });
  const file = join(dir, 'hello.txt');
  const ino = fs.resolve('hello.txt').ino;
  const count = (op: number, node: number): number => seen.filter(([o, n]) => o === op && n === node).length;

  await runOk('stat', [file]);
  await runOk('stat', [file]);
  assert.equal(count(Opcode.LOOKUP, 1), 1, 'the second stat used the cached dentry');
  const getattrs = count(Opcode.GETATTR, ino);

  await session.notifyInvalEntry(1, 'hello.txt');
  await runOk('stat', [file]);
  assert.equal(count(Opcode.LOOKUP, 1), 2, 'looked up again after the entry was invalidated');

  await session.notifyInvalInode(ino, -1, 0);
  await runOk('stat', [file]);
  assert.equal(count(Opcode.GETATTR, ino), getattrs + 1, 'attributes fetched again after the inode was invalidated');

  await assert.rejects(session.notifyInvalEntry(1, ''), { code: 'ERR_FUSE_SESSION' });
});
