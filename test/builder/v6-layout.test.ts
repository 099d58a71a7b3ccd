// The v6 metadata allocator against upstream's own expectations (nydus builder
// `test_set_v6_offset`): where inodes and directory blocks land, which layout each gets,
// and how the unused tails of blocks are reused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Allocator, placeWithTail, v6DirSize } from '../../src/builder/v6-layout.js';
import { ErofsLayout } from '../../src/rafs/layout/v6.js';
import { newDir } from '../../src/builder/tree.js';

test('directory and file placement matches upstream step by step', () => {
  const a = new Allocator(0);
  // A compact regular-file inode with no chunks: 32 bytes at 0.
  const fileAt = a.offset;
  a.offset += 32;
  a.align(32);
  assert.equal(fileAt, 0);
  assert.equal(a.offset, 32);
  const steps: [number, number, number, number | undefined, number][] = [
    // [dir size, layout, inode offset, dirents offset, allocator offset after]
    [4064, ErofsLayout.FLAT_INLINE, 4096, undefined, 8192],
    [4096, ErofsLayout.FLAT_PLAIN, 32, 8192, 8192 + 4096],
    [8160, ErofsLayout.FLAT_INLINE, 8192 + 4096, 8192 + 4096 + 4096, 8192 + 4096 + 8192],
    [8161, ErofsLayout.FLAT_PLAIN, 64, 8192 + 4096 + 8192, 8192 + 4096 + 8192 + 8192],
    [4096 + 3968, ErofsLayout.FLAT_INLINE, 96, 8192 + 4096 + 8192 + 8192, 8192 + 4096 + 8192 + 8192 + 4096],
    [4096 + 2048, ErofsLayout.FLAT_INLINE, 8192 + 4096 + 8192 + 8192 + 4096, 8192 + 4096 + 8192 + 8192 + 4096 + 4096, 8192 + 4096 + 8192 + 8192 + 4096 + 8192],
    [1985, ErofsLayout.FLAT_INLINE, 8192 + 4096 + 8192 + 8192 + 4096 + 8192, undefined, 8192 + 4096 + 8192 + 8192 + 4096 + 8192 + 32 + 1985],
  ];
  for (const [size, layout, offset, dirents, after] of steps) {
    const p = placeWithTail(a, 32, size);
    assert.equal(p.layout, layout, `size ${size}: layout`);
    assert.equal(p.offset, offset, `size ${size}: inode offset`);
    if (dirents !== undefined) assert.equal(p.dataOffset, dirents, `size ${size}: dirents offset`);
    assert.equal(a.offset, after, `size ${size}: next offset`);
  }
  a.align(32);
  const last = placeWithTail(a, 32, 1984);
  assert.equal(last.layout, ErofsLayout.FLAT_INLINE);
  assert.equal(last.offset, 8192 + 4096 + 8192 + 8192 + 4096 + 2048 + 32);
  assert.equal(a.offset, 8192 + 4096 + 8192 + 8192 + 4096 + 8192 + Math.ceil((32 + 1985) / 32) * 32);
});

test('directory sizes: "." and ".." included, names never split across blocks', () => {
  const d = newDir();
  assert.equal(v6DirSize(d), 12 + 1 + 12 + 2);
  for (let i = 0; i < 400; i++) {
    const name = Buffer.from(`name-${String(i).padStart(4, '0')}`);
    d.children!.set(name.toString('latin1'), { name, inode: newDir() });
  }
  // "." (13 bytes with its dirent) and ".." (14), then 400 entries of 21 bytes:
  // block 1 holds 27 + 193 * 21 = 4080, block 2 holds 195 * 21 = 4095, block 3 the last 12.
  assert.equal(v6DirSize(d), 2 * 4096 + 12 * 21);
});
