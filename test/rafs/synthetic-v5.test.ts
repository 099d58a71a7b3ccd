// RAFS v5 features the fixture lacks (xattrs, HAS_HOLE, devices, fifo, socket, prefetch
// table, hard links across directories) on a synthetic image, then targeted damage:
// cycles, bad or shared child ranges, digests, unsorted or unsafe names, chunk and
// xattr records, and each superblock check. Damage is a RafsFormatError with the right
// code, never a hang or another exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_WALK_PATH, parseBootstrap, RafsV5Super, validateMetadata, walk } from '../../src/rafs/index.js';
import type { SynthNode } from './helpers/synth.js';
import { buildV5, type V5Image } from './helpers/synth-v5.js';

const MiB = 1 << 20;

// Indexes: / 1, a 2, attrs 3, b 4, dev 5, fifo 6, h1 7, holes 8, link 9, sock 10,
// a/x 11, a/y 12, a/y/z 13, b/h2 14 (a copy of 7), b/w 15.
const TREE: SynthNode = {
  name: '',
  type: 'dir',
  children: [
    { name: 'a', type: 'dir', children: [{ name: 'x', type: 'file', size: 5 }, { name: 'y', type: 'dir', children: [{ name: 'z', type: 'file', size: 1 }] }] },
    { name: 'b', type: 'dir', children: [{ name: 'w', type: 'file', size: 3 }, { name: 'h2', type: 'file', size: 2 * MiB, link: 'H' }] },
    { name: 'holes', type: 'file', size: 3 * MiB + 1, holes: [0, 2] },
    { name: 'attrs', type: 'file', size: 0, xattrs: { 'user.a': 'one', 'security.b': Buffer.from([0, 1, 2]), 'trusted.empty': '' } },
    { name: 'dev', type: 'chr', rdev: 0x107 },
    { name: 'fifo', type: 'fifo' },
    { name: 'sock', type: 'sock' },
    { name: 'link', type: 'symlink', target: 'a/x' },
    { name: 'h1', type: 'file', size: 2 * MiB, link: 'H' },
  ],
};

const image = buildV5(TREE, { prefetch: ['/a', '/holes'] });

function index(path: string): number {
  return image.nodes.find((n) => n.path === path)!.index;
}

/** A damaged copy: `patch(bytes, recordOffset)` edits the record of `path`. */
function damage(path: string | null, patch: (b: Buffer, rec: number) => void, img: V5Image = image): Buffer {
  const b = Buffer.from(img.bytes);
  patch(b, path === null ? 0 : img.offsets[index(path) - 1]);
  return b;
}

const FORMAT = (code: string) => (err: Error & { code?: string }) => err.name === 'RafsFormatError' && err.code === code;

async function walkAll(bytes: Buffer): Promise<void> {
  const sb = parseBootstrap(bytes);
  for (const e of walk(sb)) if ((e.attr.mode & 0o170000) === 0o100000) sb.fileChunks(e.ino, 0, e.attr.size);
}

test('numbering follows nydus: children consecutive and sorted, then subdirectories', () => {
  assert.deepEqual(
    image.nodes.map((n) => [n.index, n.path]),
    [
      [1, '/'], [2, '/a'], [3, '/attrs'], [4, '/b'], [5, '/dev'], [6, '/fifo'], [7, '/h1'], [8, '/holes'], [9, '/link'], [10, '/sock'],
      [11, '/a/x'], [12, '/a/y'], [13, '/a/y/z'], [14, '/b/h2'], [15, '/b/w'],
    ],
  );
});

test('xattrs, holes, devices, prefetch table and cross-directory hard links', async () => {
  const sb = parseBootstrap(image.bytes);
  assert.ok(sb instanceof RafsV5Super);
  assert.equal(sb.flags & 0x20, 0x20, 'HAS_XATTR');
  const attrs = index('/attrs');
  assert.deepEqual(sb.listXattrs(attrs).map(String), ['user.a', 'security.b', 'trusted.empty']);
  assert.deepEqual(sb.getXattr(attrs, Buffer.from('security.b')), Buffer.from([0, 1, 2]));
  assert.deepEqual(sb.getXattr(attrs, Buffer.from('trusted.empty')), Buffer.alloc(0));
  assert.equal(sb.getXattr(attrs, Buffer.from('user.none')), undefined);
  const holes = index('/holes');
  assert.deepEqual(sb.fileChunks(holes, 0, 4 * MiB).map((c) => [c.fileOffset, c.uncompressedSize]), [[MiB, MiB], [3 * MiB, 1]]);
  assert.deepEqual(sb.fileChunks(holes, 0, MiB), []);
  assert.deepEqual(sb.fileChunks(holes, 2 * MiB, MiB), []);
  assert.deepEqual(sb.fileChunks(holes, 3 * MiB, 1).map((c) => c.fileOffset), [3 * MiB]);
  assert.equal(sb.getAttr(index('/dev')).rdev, 0x107);
  assert.equal(sb.getAttr(index('/fifo')).mode, 0o010644);
  assert.equal(sb.getAttr(index('/sock')).mode, 0o140755);
  assert.equal(sb.readlink(index('/link')).toString(), 'a/x');
  assert.deepEqual(sb.prefetchList(), [2, 8]);
  assert.equal(sb.lookup(4, Buffer.from('h2')), 7);
  assert.equal(sb.getAttr(7).nlink, 2);
  assert.throws(() => sb.getAttr(14), FORMAT('ERR_RAFS_NO_ENTRY'));
  assert.deepEqual(
    sb.fileChunks(7, 0, 2 * MiB).map((c) => c.digest),
    sb.chunksOf(sb.recordAt(14), 0, 2 * MiB).map((c) => c.digest),
  );
  assert.equal(sb.inodeCount, 14);
  const counts = await validateMetadata(sb);
  assert.deepEqual(
    [counts.inodes, counts.entries, counts.dirs, counts.files, counts.symlinks, counts.specials, counts.hardlinks, counts.xattrs],
    [14, 14, 4, 6, 1, 3, 1, 3],
  );
});

test('a directory entry naming an ancestor is a cycle, reported and not followed', async () => {
  // a/y's record says it is inode 2 (= /a): walking /a lists /a again.
  const bytes = damage('/a/y', (b, rec) => b.writeUInt32LE(2, rec + 40));
  await assert.rejects(walkAll(bytes), (err: Error) => FORMAT('ERR_RAFS_CORRUPT')(err) && /reached twice/.test(err.message));
  await assert.rejects(validateMetadata(parseBootstrap(bytes)), FORMAT('ERR_RAFS_CORRUPT'));
});

test('shared, backwards or oversized child ranges are corrupt', async () => {
  // b lists a's children: x and y appear twice, y (a directory) is reached twice.
  const shared = damage('/b', (b, rec) => b.writeUInt32LE(index('/a/x'), rec + 92));
  await assert.rejects(walkAll(shared), FORMAT('ERR_RAFS_CORRUPT'));
  await assert.rejects(validateMetadata(parseBootstrap(shared)), FORMAT('ERR_RAFS_CORRUPT'));
  const backwards = damage('/a', (b, rec) => b.writeUInt32LE(1, rec + 92));
  assert.throws(() => parseBootstrap(backwards).readdir(2), /child range/);
  const oversized = damage('/a', (b, rec) => b.writeUInt32LE(0xffff_fff0, rec + 96));
  assert.throws(() => parseBootstrap(oversized).childCount(2), FORMAT('ERR_RAFS_CORRUPT'));
});

test('digest, order, name and link-copy damage fail validation only', async () => {
  const cases: [string, Buffer, RegExp][] = [
    ['digest', damage('/a/y/z', (b, rec) => (b[rec] ^= 1)), /i_digest/],
    ['order', damage('/a/x', (b, rec) => b.write('z', rec + 128)), /not sorted/],
    ['link copy', damage('/b/h2', (b, rec) => b.writeUInt32LE(0o100600, rec + 60)), /hard link/],
    ['parent', damage('/b/w', (b, rec) => b.writeUInt32LE(2, rec + 32)), /parent/],
  ];
  for (const [what, bytes, message] of cases) {
    const sb = parseBootstrap(bytes);
    for (const e of walk(sb)) sb.getAttr(e.ino);
    await assert.rejects(validateMetadata(sb), (err: Error) => FORMAT('ERR_RAFS_CORRUPT')(err) && message.test(err.message), what);
  }
});

test('names that could escape a path stop the walk', async () => {
  for (const name of ['/', '.', '\0']) {
    const bytes = damage('/a/x', (b, rec) => {
      b.writeUInt16LE(name.length, rec + 100);
      b.write(name, rec + 128, 'latin1');
    });
    await assert.rejects(walkAll(bytes), /invalid entry name/, JSON.stringify(name));
  }
});

test('chunk and xattr records out of bounds are corrupt', () => {
  const chunkBlob = damage('/h1', (b, rec) => b.writeUInt32LE(3, rec + 128 + 8 + 32));
  assert.throws(() => parseBootstrap(chunkBlob).fileChunks(7, 0, 1), /blob index 3/);
  const chunkSize = damage('/h1', (b, rec) => b.writeUInt32LE(MiB + 1, rec + 128 + 8 + 44));
  assert.throws(() => parseBootstrap(chunkSize).fileChunks(7, 0, 1), FORMAT('ERR_RAFS_CORRUPT'));
  const count = damage('/h1', (b, rec) => b.writeUInt32LE(3, rec + 96));
  assert.throws(() => parseBootstrap(count).getAttr(7), /3 chunks/);
  const xattrSize = damage('/attrs', (b, rec) => b.writeUInt32LE(1 << 30, rec + 128 + 8));
  assert.throws(() => parseBootstrap(xattrSize).getAttr(3), FORMAT('ERR_RAFS_CORRUPT'));
  const pair = damage('/attrs', (b, rec) => b.writeUInt32LE(200, rec + 128 + 8 + 8));
  assert.throws(() => parseBootstrap(pair).listXattrs(3), /overruns/);
  const table = damage(null, (b) => b.writeUInt32LE(8, 8192 + 4));
  assert.throws(() => parseBootstrap(table).getAttr(2), /table entry/);
});

test('superblock checks', () => {
  const sbCase = (patch: (b: Buffer) => void): Buffer => damage(null, patch);
  assert.throws(() => parseBootstrap(sbCase((b) => b.writeUInt32LE(0x400, 4))), FORMAT('ERR_RAFS_UNSUPPORTED'));
  assert.throws(() => parseBootstrap(sbCase((b) => b.writeUInt32LE(0x501, 4))), FORMAT('ERR_RAFS_BAD_SUPERBLOCK'));
  assert.throws(() => parseBootstrap(sbCase((b) => b.writeUInt32LE(4096, 8))), /sb_size/);
  assert.throws(() => parseBootstrap(sbCase((b) => b.writeUInt32LE(3000, 12))), /chunk size/);
  assert.throws(() => parseBootstrap(sbCase((b) => b.writeUInt32LE(0x1000, 16))), /unknown flags/);
  assert.throws(() => parseBootstrap(sbCase((b) => b.writeUInt32LE(8196, 32))), /inode table/);
  assert.throws(() => parseBootstrap(sbCase((b) => b.writeUInt32LE(8192, 48))), /overlaps/);
  assert.throws(() => parseBootstrap(sbCase((b) => b.writeUInt32LE(99, 24))), /inodes count/);
  assert.throws(() => parseBootstrap(image.bytes.subarray(0, image.bytes.length - 4)), /bootstrap size/);
  const blobId = image.bytes.indexOf('a'.repeat(64));
  assert.throws(() => parseBootstrap(sbCase((b) => b.write('../../', blobId))), /not a safe name/);
  // Old images have no extended blob table: sizes and counts are then unknown (0).
  const old = parseBootstrap(sbCase((b) => b.writeUInt32LE(0, 68)));
  assert.deepEqual([old.blobs[0].chunkCount, old.blobs[0].compressedSize], [0, 0]);
  assert.throws(() => parseBootstrap(Buffer.alloc(10000)), FORMAT('ERR_RAFS_BAD_MAGIC'));
  assert.throws(() => parseBootstrap(Buffer.alloc(0)), FORMAT('ERR_RAFS_BAD_MAGIC'));
});

test('a walk refuses paths beyond MAX_WALK_PATH instead of copying ever longer paths', async () => {
  let deep: SynthNode = { name: 'f', type: 'file', size: 0 };
  for (let i = 0; i < 300; i++) deep = { name: 'd'.repeat(250), type: 'dir', children: [deep] };
  const sb = parseBootstrap(buildV5({ name: '', type: 'dir', children: [deep] }).bytes);
  let depth = 0;
  assert.throws(() => {
    for (const e of walk(sb)) depth = Math.max(depth, e.path.length);
  }, FORMAT('ERR_RAFS_CORRUPT'));
  assert.ok(depth > 60_000 && depth <= MAX_WALK_PATH, String(depth));
  await assert.rejects(validateMetadata(sb), /path longer/);
});
