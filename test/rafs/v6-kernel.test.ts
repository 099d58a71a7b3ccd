// The reader against the kernel's EROFS driver: the v6 fixture and a synthetic v6 image
// with what the fixture lacks (multi-block and empty directories, inline and block
// symlinks, xattrs, devices, fifo, socket, hard links, compact inodes with superblock
// build time, a 5 GiB sparse file, raw-byte names) are mounted read-only and every
// entry is compared: names, types, sizes, modes, uid/gid, nlink, mtime, rdev, st_ino.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBootstrap, validateMetadata } from '../../src/rafs/index.js';
import { haveFixtures, isRoot, need } from '../helpers/env.js';
import { compareWithKernel, haveGetfattr, mountErofs } from './helpers/kernel.js';
import { readV6 } from './helpers/fixtures.js';
import type { SynthNode } from './helpers/synth.js';
import { buildV6 } from './helpers/synth-v6.js';

const GiB = 2 ** 30;

function richTree(): SynthNode {
  const many: SynthNode[] = Array.from({ length: 400 }, (_, i) => ({
    name: `entry-with-a-rather-long-name-${String(i).padStart(4, '0')}`,
    type: i % 3 === 0 ? 'dir' : 'file',
    size: i,
    mtime: 1_600_000_000 + i,
    mtimeNsec: i * 1000,
  }));
  return {
    name: '',
    type: 'dir',
    mtime: 0,
    children: [
      { name: 'many', type: 'dir', children: many, xattrs: { 'user.dir': 'yes' }, mtime: 1_700_000_000, mtimeNsec: 123456789 },
      { name: 'empty', type: 'dir', perm: 0o700, uid: 65534, gid: 65534 },
      {
        name: 'linked',
        type: 'file',
        size: 3 * 1024 * 1024 + 5,
        holes: [1],
        link: 'L',
        uid: 1000,
        gid: 2000,
        mtime: 1_234_567_890,
        mtimeNsec: 999,
        xattrs: { 'user.foo': 'bar', 'security.custom': Buffer.from([1, 0, 0, 2]), 'trusted.t': Buffer.alloc(0) },
      },
      { name: 'other-link', type: 'file', size: 3 * 1024 * 1024 + 5, link: 'L' },
      { name: 'compact', type: 'file', size: 10, compact: true, uid: 7, gid: 8, mtime: 5000 },
      { name: 'compact-dir', type: 'dir', compact: true, children: [{ name: 'x', type: 'file', compact: true }] },
      { name: 'short-link', type: 'symlink', target: '../x/y' },
      { name: 'block-link', type: 'symlink', target: 'y'.repeat(4000) },
      { name: 'chardev', type: 'chr', rdev: 0x107 },
      { name: 'blockdev', type: 'blk', rdev: (8 << 8) | 1, compact: true },
      { name: 'fifo', type: 'fifo' },
      { name: 'socket', type: 'sock' },
      { name: 'empty-file', type: 'file', size: 0 },
      { name: Buffer.from([0x72, 0x61, 0x77, 0xff, 0xfe, 0x20]), type: 'file', size: 1 },
      { name: 'huge', type: 'file', size: 5 * GiB + 7, holes: Array.from({ length: 5121 }, (_, i) => i).filter((i) => i % 100 !== 0) },
    ],
  };
}

test('v6 fixture: the kernel and the reader agree on every entry', (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures are missing')) return;
  if (!need(t, isRoot(), 'mounting EROFS needs root')) return;
  const bytes = readV6();
  const mnt = mountErofs(t, bytes);
  assert.equal(compareWithKernel(parseBootstrap(bytes), mnt, { xattrs: haveGetfattr() }), 3);
});

test('synthetic v6 image: the kernel and the reader agree on every entry', async (t) => {
  if (!need(t, isRoot(), 'mounting EROFS needs root')) return;
  if (!need(t, haveGetfattr(), 'getfattr (package attr) is missing')) return;
  const image = buildV6(richTree(), { buildTime: 4000, buildTimeNsec: 77 });
  const sb = parseBootstrap(image.bytes);
  const counts = await validateMetadata(sb);
  assert.equal(counts.hardlinks, 1);
  assert.equal(counts.xattrs, 4);
  const mnt = mountErofs(t, image.bytes);
  assert.equal(compareWithKernel(sb, mnt, { xattrs: true }), counts.entries + 1);
});
