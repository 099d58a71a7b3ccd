// RAFS v6 features the fixture lacks (compact inodes and build time, holes, a file over
// 4 GiB, a multi-block directory, a long symlink, xattrs, devices, prefetch table) on a
// synthetic image, then targeted damage to dirents (cycles, self-loops, "." and ".."),
// inodes, xattrs, chunk indexes and every superblock check: always a RafsFormatError
// with the right code, never a hang or another exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBootstrap, RafsV6Super, validateMetadata, walk } from '../../src/rafs/index.js';
import { decodeV6DirBlock } from '../../src/rafs/layout/v6.js';
import type { SynthNode } from './helpers/synth.js';
import { buildV6 } from './helpers/synth-v6.js';

const MiB = 1 << 20;
const GiB = 2 ** 30;

const TREE: SynthNode = {
  name: '',
  type: 'dir',
  children: [
    { name: 'a', type: 'dir', children: [{ name: 'x', type: 'file', size: 5 }, { name: 'y', type: 'dir', children: [{ name: 'z', type: 'file', size: 1 }] }] },
    { name: 'attrs', type: 'file', size: 0, xattrs: { 'user.a': 'one', 'security.b': Buffer.from([0, 1, 2]), 'system.posix_acl_access': 'acl' } },
    { name: 'c', type: 'file', size: 10, compact: true, uid: 7, gid: 8, mtime: 5000 },
    { name: 'dev', type: 'chr', rdev: 0x107 },
    { name: 'holes', type: 'file', size: 3 * MiB + 1, holes: [0, 2] },
    { name: 'huge', type: 'file', size: 5 * GiB + 7, holes: Array.from({ length: 5121 }, (_, i) => i).filter((i) => i !== 0 && i !== 5120) },
    { name: 'long', type: 'symlink', target: 'q'.repeat(5000) },
    { name: 'many', type: 'dir', children: Array.from({ length: 300 }, (_, i) => ({ name: `entry-number-${i}`, type: 'file' as const, size: 1 })) },
  ],
};

const image = buildV6(TREE, { buildTime: 4000, buildTimeNsec: 77, prefetch: ['/a', '/holes'] });
const base = parseBootstrap(image.bytes) as RafsV6Super;

function nid(path: string): number {
  return image.nids[image.nodes.find((n) => n.path === path)!.index - 1];
}

function inodeOffset(path: string): number {
  return base.node(nid(path)).offset;
}

/** Offset of the dirent `name` in the (single, inline) block of directory `dir`. */
function direntOffset(dir: string, name: string): number {
  const n = base.node(nid(dir));
  const tail = n.offset + n.inodeSize + n.xattrSize;
  const entries = decodeV6DirBlock(image.bytes.subarray(tail, tail + n.inode.size), dir);
  const i = entries.findIndex((e) => e.name.toString() === name);
  assert.ok(i >= 0, `${dir}/${name}`);
  return tail + i * 12;
}

function damage(patch: (b: Buffer) => void): Buffer {
  const b = Buffer.from(image.bytes);
  patch(b);
  return b;
}

const FORMAT = (code: string, message?: RegExp) => (err: Error & { code?: string }) =>
  err.name === 'RafsFormatError' && err.code === code && (!message || message.test(err.message));

function walkAll(bytes: Buffer): void {
  const sb = parseBootstrap(bytes);
  for (const e of walk(sb)) {
    const type = e.attr.mode & 0o170000;
    if (type === 0o100000) sb.fileChunks(e.ino, 0, e.attr.size);
    if (type === 0o120000) sb.readlink(e.ino);
    sb.listXattrs(e.ino);
  }
}

test('compact inodes, holes, a 5 GiB file, long symlink, xattrs, prefetch table', async () => {
  const sb = base;
  const c = sb.getAttr(nid('/c'));
  assert.deepEqual([c.mtime, c.mtimeNsec, c.uid, c.gid, c.size, c.nlink], [5000, 77, 7, 8, 10, 1]);
  assert.equal(sb.getAttr(nid('/dev')).rdev, 0x107);
  const holes = nid('/holes');
  assert.deepEqual(sb.fileChunks(holes, 0, 4 * MiB).map((x) => [x.fileOffset, x.uncompressedSize]), [[MiB, MiB], [3 * MiB, 1]]);
  assert.deepEqual(sb.fileChunks(holes, 2 * MiB, MiB), []);
  const huge = nid('/huge');
  assert.equal(sb.getAttr(huge).size, 5 * GiB + 7);
  assert.deepEqual(sb.fileChunks(huge, 0, 6 * GiB).map((x) => [x.fileOffset, x.uncompressedSize]), [[0, MiB], [5 * GiB, 7]]);
  assert.deepEqual(sb.fileChunks(huge, 5 * GiB + 6, 100).map((x) => x.fileOffset), [5 * GiB]);
  assert.equal(sb.readlink(nid('/long')).toString(), 'q'.repeat(5000));
  assert.deepEqual(sb.listXattrs(nid('/attrs')).map(String), ['user.a', 'security.b', 'system.posix_acl_access']);
  assert.deepEqual(sb.getXattr(nid('/attrs'), Buffer.from('security.b')), Buffer.from([0, 1, 2]));
  const many = nid('/many');
  assert.ok(base.node(many).blocks > 1, 'a multi-block directory');
  assert.equal(sb.childCount(many), 300);
  assert.equal(sb.lookup(many, Buffer.from('entry-number-299')), nid('/many/entry-number-299'));
  assert.equal(sb.lookup(many, Buffer.from('entry-number-3000')), undefined);
  assert.deepEqual([...sb.readdir(many, 298)].map((e) => e.name.toString()), ['entry-number-98', 'entry-number-99']);
  assert.equal(sb.parentOf(nid('/a/y')), nid('/a'));
  assert.deepEqual(sb.prefetchList(), [nid('/a'), nid('/holes')]);
  assert.equal((sb.superblockJson() as { prefetch_table_entries: number }).prefetch_table_entries, 2);
  const chunks = sb.blobChunks(0);
  assert.deepEqual(chunks.map((x) => x.index), chunks.map((_, i) => i));
  const counts = await validateMetadata(sb);
  assert.deepEqual([counts.inodes, counts.files, counts.dirs, counts.xattrs, counts.chunks], [312, 306, 4, 3, chunks.length]);
});

test('dirents naming an ancestor or the directory itself are cycles, reported and not followed', async () => {
  for (const target of ['/', '/a']) {
    const bytes = damage((b) => b.writeUInt32LE(nid(target), direntOffset('/a', 'y')));
    assert.throws(() => walkAll(bytes), FORMAT('ERR_RAFS_CORRUPT', /reached twice/), target);
    await assert.rejects(validateMetadata(parseBootstrap(bytes)), FORMAT('ERR_RAFS_CORRUPT'));
    // The inode count traversal also terminates.
    assert.equal(typeof parseBootstrap(bytes).inodeCount, 'number');
  }
});

test('"." and ".." must name the directory and its parent', async () => {
  const dot = damage((b) => b.writeUInt32LE(nid('/'), direntOffset('/a', '.')));
  walkAll(dot);
  await assert.rejects(validateMetadata(parseBootstrap(dot)), FORMAT('ERR_RAFS_CORRUPT', /"\." names/));
  const dotdot = damage((b) => b.writeUInt32LE(nid('/'), direntOffset('/a/y', '..')));
  await assert.rejects(validateMetadata(parseBootstrap(dotdot)), FORMAT('ERR_RAFS_CORRUPT', /parent is/));
});

test('damaged dirents: name offsets, unknown nids, unused slots', () => {
  const nameoff = damage((b) => b.writeUInt16LE(4000, direntOffset('/a', 'x') + 8));
  assert.throws(() => walkAll(nameoff), FORMAT('ERR_RAFS_CORRUPT', /name/));
  const far = damage((b) => b.writeUInt32LE(1 << 30, direntOffset('/a', 'x')));
  assert.throws(() => walkAll(far), FORMAT('ERR_RAFS_NO_ENTRY'));
  const unused = damage((b) => b.writeUInt32LE(0, direntOffset('/a', 'x')));
  assert.throws(() => walkAll(unused), FORMAT('ERR_RAFS_NO_ENTRY'));
});

test('damaged inodes: format, mode, nlink, data blocks, sizes', () => {
  const at = (path: string) => inodeOffset(path);
  const cases: [string, (b: Buffer) => void, string, RegExp?][] = [
    ['unknown format bit', (b) => b.writeUInt16LE(0x19, at('/a/x')), 'ERR_RAFS_UNSUPPORTED'],
    ['compressed layout', (b) => b.writeUInt16LE(0x3, at('/a/x')), 'ERR_RAFS_UNSUPPORTED'],
    ['layout 5', (b) => b.writeUInt16LE(0xb, at('/a/x')), 'ERR_RAFS_CORRUPT'],
    ['mode', (b) => b.writeUInt16LE(0o170644, at('/a/x') + 4), 'ERR_RAFS_CORRUPT'],
    ['nlink', (b) => b.writeUInt32LE(0, at('/a/x') + 44), 'ERR_RAFS_CORRUPT'],
    ['symlink blocks', (b) => b.writeUInt32LE(0xffffff, at('/long') + 16), 'ERR_RAFS_CORRUPT', /data blocks/],
    ['file size', (b) => b.writeUInt32LE(0x100000, at('/a/x') + 12), 'ERR_RAFS_CORRUPT', /chunk indexes/],
    ['chunk format', (b) => b.writeUInt32LE(0x14, at('/a/x') + 16), 'ERR_RAFS_UNSUPPORTED'],
  ];
  for (const [what, patch, code, message] of cases) assert.throws(() => walkAll(damage(patch)), FORMAT(code, message), what);
});

test('damaged xattrs and chunk indexes', () => {
  const x = inodeOffset('/attrs') + 64;
  const chunk = Math.ceil((inodeOffset('/a/x') + 64) / 8) * 8;
  const cases: [string, (b: Buffer) => void, string, RegExp?][] = [
    ['xattr name index', (b) => b.writeUInt8(9, x + 12 + 1), 'ERR_RAFS_UNSUPPORTED'],
    ['xattr value size', (b) => b.writeUInt16LE(4000, x + 12 + 2), 'ERR_RAFS_CORRUPT', /overruns/],
    ['shared xattrs', (b) => b.writeUInt8(1, x + 4), 'ERR_RAFS_UNSUPPORTED'],
    ['device id 0', (b) => b.writeUInt8(0, chunk + 2), 'ERR_RAFS_CORRUPT', /device id 0/],
    ['device id 2', (b) => b.writeUInt8(2, chunk + 2), 'ERR_RAFS_CORRUPT', /device id 2/],
    ['block address', (b) => b.writeUInt32LE(b.readUInt32LE(chunk + 4) + 1, chunk + 4), 'ERR_RAFS_CORRUPT', /chunk table/],
    ['chunk-info index', (b) => b.writeUInt16LE(999, chunk), 'ERR_RAFS_CORRUPT', /chunk table/],
    ['chunk table blob', (b) => b.writeUInt32LE(5, base.superblockExt.chunkTableOffset + 32), 'ERR_RAFS_CORRUPT', /chunk table/],
  ];
  for (const [what, patch, code, message] of cases) assert.throws(() => walkAll(damage(patch)), FORMAT(code, message), what);
});

test('superblock, extended superblock and blob table checks', () => {
  const bad = 'ERR_RAFS_BAD_SUPERBLOCK';
  const cases: [string, (b: Buffer) => void, string][] = [
    ['checksum', (b) => b.writeUInt32LE(1, 1028), bad],
    ['compat', (b) => b.writeUInt32LE(0, 1032), bad],
    ['block size bits 9', (b) => b.writeUInt8(9, 1036), 'ERR_RAFS_UNSUPPORTED'],
    ['block size bits 13', (b) => b.writeUInt8(13, 1036), bad],
    ['inos', (b) => b.writeUInt32LE(0, 1040), bad],
    ['meta_blkaddr', (b) => b.writeUInt32LE(1 << 20, 1064), bad],
    ['xattr_blkaddr', (b) => b.writeUInt32LE(1, 1068), bad],
    ['incompat', (b) => b.writeUInt32LE(0x1c, 1104), bad],
    ['devt_slotoff', (b) => b.writeUInt16LE(10, 1112), bad],
    ['two compressors', (b) => b.writeUInt32LE(0x1 | 0x80 | 0x4, 1152), bad],
    ['no digester', (b) => b.writeUInt32LE(0x1, 1152), bad],
    ['unknown flag', (b) => b.writeUInt32LE(0x1 | 0x4 | 0x400, 1152), bad],
    ['blob table offset', (b) => b.writeUInt32LE(4097, 1160), bad],
    ['chunk size', (b) => b.writeUInt32LE(3000, 1172), bad],
    ['chunk table on the blob table', (b) => b.writeUInt32LE(4096, 1176), bad],
    ['root is a file', (b) => b.writeUInt16LE(nid('/c'), 1038), 'ERR_RAFS_CORRUPT'],
    ['root is an unused slot', (b) => b.writeUInt16LE(0, 1038), 'ERR_RAFS_NO_ENTRY'],
    ['blob id', (b) => b.write('../', 4096), 'ERR_RAFS_CORRUPT'],
    ['blob index', (b) => b.writeUInt32LE(1, 4160), 'ERR_RAFS_CORRUPT'],
    ['blob features', (b) => b.writeUInt32LE(0x8001, 4180), 'ERR_RAFS_CORRUPT'],
    ['not ALIGNED', (b) => b.writeUInt32LE(0, 4180), 'ERR_RAFS_CORRUPT'],
    ['cipher', (b) => b.writeUInt32LE(1, 4312), 'ERR_RAFS_UNSUPPORTED'],
  ];
  for (const [what, patch, code] of cases) assert.throws(() => parseBootstrap(damage(patch)), FORMAT(code), what);
  assert.throws(() => parseBootstrap(image.bytes.subarray(0, image.bytes.length - 512)), FORMAT(bad));
  assert.throws(() => parseBootstrap(image.bytes.subarray(0, 1100)), FORMAT('ERR_RAFS_TRUNCATED'));
});
