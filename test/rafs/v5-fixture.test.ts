// The upstream v5 fixture (sha256, uncompressed) read through RafsSuper: the tree equals
// tree.json, the values of docs/format.md §9.3 hold, chunk records map every file onto
// its blob (file md5s from tree.json and chunk sha256s are recomputed from the blob).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { openBootstrap, parseBootstrap, RafsV5Super, validateMetadata, walk, type RafsSuper } from '../../src/rafs/index.js';
import { haveFixtures, need, V5_FIXTURE } from '../helpers/env.js';
import { readTreeJson, readV5, V5_BLOB_ID, V5_BOOTSTRAP, type TreeJsonNode } from './helpers/fixtures.js';

const S_IFMT = 0o170000;
const TYPES: Record<number, TreeJsonNode['type']> = { 0o040000: 'directory', 0o100000: 'file', 0o120000: 'link' };

function open(t: import('node:test').TestContext): RafsV5Super | undefined {
  if (!need(t, haveFixtures(), 'shared fixtures are missing')) return undefined;
  const sb = parseBootstrap(readV5());
  assert.ok(sb instanceof RafsV5Super);
  return sb;
}

function pathIno(sb: RafsSuper, path: string): number {
  let ino = sb.rootIno;
  for (const part of path.split('/').filter(Boolean)) {
    const next = sb.lookup(ino, Buffer.from(part));
    assert.ok(next !== undefined, `${path}: ${part} not found`);
    ino = next;
  }
  return ino;
}

test('superblock and tables hold the §9.3 values', (t) => {
  const sb = open(t);
  if (!sb) return;
  const s = sb.superblock;
  assert.equal(s.fsVersion, 0x500);
  assert.equal(s.inodesCount, 51);
  assert.deepEqual([s.inodeTableEntries, s.inodeTableOffset], [54, 8192]);
  assert.deepEqual([s.prefetchTableEntries, s.prefetchTableOffset], [0, 8408]);
  assert.deepEqual([s.blobTableSize, s.blobTableOffset], [72, 8408]);
  assert.deepEqual([s.extendedBlobTableEntries, s.extendedBlobTableOffset], [1, 8480]);
  assert.equal(Math.min(...Array.from({ length: 54 }, (_, i) => sb.recordAt(i + 1).offset)), 8544);
  assert.equal(sb.flags, 0x9);
  assert.equal(sb.compressor, 'none');
  assert.equal(sb.digester, 'sha256');
  assert.equal(sb.chunkSize, 0x100000);
  assert.equal(sb.explicitUidGid, false);
  assert.equal(sb.rootIno, 1);
  assert.equal(sb.bootstrapSize, 18648);
  assert.equal(sb.inodeCount, 52);
  assert.equal(sb.blobs.length, 1);
  const b = sb.blobs[0];
  assert.equal(b.blobId, V5_BLOB_ID);
  assert.deepEqual([b.chunkCount, b.features, b.compressedSize, b.uncompressedSize], [23, 0, 3508766, 3508766]);
  assert.deepEqual(sb.prefetchList(), []);
  const root = sb.recordAt(1);
  assert.equal(root.inode.ino, 1);
  assert.equal(root.inode.parent, 0);
  assert.equal(root.name.toString(), '/');
  assert.equal(root.inode.digest.toString('hex'), '14af3c0fe575eff6d0d8158e0990e41d4c37494e8005aada7885b36b37ad1886');
});

test('tree equals tree.json (names, types, symlink targets)', (t) => {
  const sb = open(t);
  if (!sb) return;
  const { root } = readTreeJson();
  const build = (ino: number): TreeJsonNode[] =>
    [...sb.readdir(ino)].map((e) => {
      const type = TYPES[e.type];
      const n: TreeJsonNode = { type, name: e.name.toString() };
      if (type === 'directory') n.contents = build(e.ino);
      if (type === 'link') n.target = sb.readlink(e.ino).toString();
      return n;
    });
  const norm = (list: TreeJsonNode[] = []): unknown[] =>
    list
      .map((n) => ({ type: n.type, name: n.name, ...(n.target ? { target: n.target } : {}), ...(n.type === 'directory' ? { contents: norm(n.contents) } : {}) }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  assert.deepEqual(norm(build(sb.rootIno)), norm(root.contents));
});

test('counts, hard links and attributes', async (t) => {
  const sb = open(t);
  if (!sb) return;
  let dirs = 0;
  let fileRecords = 0;
  let symlinks = 0;
  const fileInos = new Set<number>();
  const byIno = new Map<number, string[]>();
  for (const e of walk(sb)) {
    const type = e.attr.mode & S_IFMT;
    if (type === 0o040000) dirs++;
    if (type === 0o120000) symlinks++;
    if (type === 0o100000) {
      fileRecords++;
      fileInos.add(e.ino);
      byIno.set(e.ino, [...(byIno.get(e.ino) ?? []), e.path.toString()]);
    }
    assert.equal(e.attr.mtime, e.ino === 1 ? 0 : 1668232305, e.path.toString());
    assert.deepEqual([e.attr.uid, e.attr.gid, e.attr.mtimeNsec], [0, 0, 0]);
  }
  assert.deepEqual([dirs, fileRecords, fileInos.size, symlinks], [24, 23, 21, 7]);
  assert.deepEqual(byIno.get(5), ['/hardlink-test/foo', '/hardlink-test/test.sh', '/normal-file-test/test.sh']);
  assert.equal(sb.getAttr(5).nlink, 3);
  for (const [ino, paths] of byIno) if (ino !== 5) assert.equal(paths.length, 1);
  // The copies are records of their own with the first link's i_ino.
  const copies = Array.from({ length: 54 }, (_, i) => sb.recordAt(i + 1)).filter((r) => r.inode.ino !== r.index);
  assert.deepEqual(copies.map((r) => [r.index, r.inode.ino]).sort(), [[6, 5], [9, 5]]);
  assert.deepEqual(await validateMetadata(sb), {
    inodes: 52,
    entries: 53,
    dirs: 24,
    files: 21,
    symlinks: 7,
    specials: 0,
    hardlinks: 2,
    xattrs: 0,
    chunks: 27,
    distinctChunks: 23,
    fileBytes: [...fileInos].reduce((s, i) => s + sb.getAttr(i).size, 0),
    blobs: 1,
  });
});

test('chunk records: 29 records, 23 distinct chunks laid end to end in the blob', (t) => {
  const sb = open(t);
  if (!sb) return;
  let records = 0;
  for (let i = 1; i <= sb.indexCount; i++) {
    const rec = sb.recordAt(i);
    if ((rec.inode.mode & S_IFMT) !== 0o100000) continue;
    for (let k = 0; k < rec.inode.childCount; k++) {
      const c = sb.chunkRecord(rec, k);
      records++;
      assert.equal(c.flags, 0);
      assert.equal(c.blobIndex, 0);
      assert.equal(c.compressedSize, c.uncompressedSize);
      assert.equal(c.fileOffset, k * 0x100000);
      assert.ok(c.index < 23);
    }
  }
  assert.equal(records, 29);
  const chunks = sb.blobChunks(0);
  assert.equal(chunks.length, 23);
  let end = 0;
  chunks.forEach((c, i) => {
    assert.equal(c.index, i, 'chunk numbers follow first appearance');
    assert.equal(c.compressedOffset, end);
    assert.equal(c.fileOffset, 0);
    end += c.compressedSize;
  });
  assert.equal(end, 3508766);
  assert.throws(() => sb.blobChunks(1), { code: 'ERR_RAFS_NO_ENTRY' });
});

test('file contents rebuilt from chunks match tree.json md5s and chunk sha256s', (t) => {
  const sb = open(t);
  if (!sb) return;
  const { md5 } = readTreeJson();
  const fd = openSync(join(V5_FIXTURE, 'blobs', V5_BLOB_ID), 'r');
  t.after(() => closeSync(fd));
  let files = 0;
  for (const e of walk(sb)) {
    if ((e.attr.mode & S_IFMT) !== 0o100000) continue;
    const data = Buffer.alloc(e.attr.size);
    for (const c of sb.fileChunks(e.ino, 0, e.attr.size)) {
      const bytes = Buffer.alloc(c.compressedSize);
      assert.equal(readSync(fd, bytes, 0, bytes.length, c.compressedOffset), bytes.length);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), c.digest.toString('hex'));
      bytes.copy(data, c.fileOffset);
    }
    assert.equal(createHash('md5').update(data).digest('hex'), md5.get(e.path.toString()), e.path.toString());
    files++;
  }
  assert.equal(files, 23);
  assert.equal(md5.size, 23);
});

test('fileChunks selects the chunks overlapping a range', (t) => {
  const sb = open(t);
  if (!sb) return;
  const tar = pathIno(sb, '/normal-file-test/busybox/1f777dbdd68d1c4d554bc0d20e027bfef9ed2dfe2d8d5f029e958552a0e12475/layer.tar');
  assert.equal(sb.getAttr(tar).size, 1415680);
  assert.deepEqual(sb.fileChunks(tar, 0, 1415680).map((c) => [c.fileOffset, c.uncompressedSize]), [[0, 1048576], [1048576, 367104]]);
  assert.deepEqual(sb.fileChunks(tar, 1048575, 2).map((c) => c.fileOffset), [0, 1048576]);
  assert.deepEqual(sb.fileChunks(tar, 1048576, 10).map((c) => c.fileOffset), [1048576]);
  assert.deepEqual(sb.fileChunks(tar, 1415680, 10), []);
  assert.deepEqual(sb.fileChunks(tar, 5, 0), []);
  assert.deepEqual(sb.fileChunks(tar, 1415679, 1 << 30).map((c) => c.fileOffset), [1048576]);
});

test('directory operations: lookup, readdir from a position, parentOf, childCount', (t) => {
  const sb = open(t);
  if (!sb) return;
  assert.deepEqual([...sb.readdir(1)].map((e) => e.name.toString()), ['hardlink-test', 'normal-file-test', 'symlink-test']);
  const links = pathIno(sb, '/symlink-test');
  assert.equal(sb.childCount(links), 7);
  assert.deepEqual([...sb.readdir(links, 5)].map((e) => e.name.toString()), ['root-2', 'test.sh']);
  assert.deepEqual([...sb.readdir(links, 7)], []);
  assert.equal(sb.parentOf(links), 1);
  assert.equal(sb.parentOf(1), 1);
  assert.equal(sb.lookup(links, Buffer.from('nope')), undefined);
  assert.equal(sb.lookup(1, Buffer.from('')), undefined);
  assert.equal(sb.readlink(pathIno(sb, '/symlink-test/root-1')).toString(), '/////////////////');
  assert.deepEqual(sb.listXattrs(1), []);
  assert.equal(sb.getXattr(1, Buffer.from('user.x')), undefined);
});

test('errors name the inode and carry the catalogue codes', (t) => {
  const sb = open(t);
  if (!sb) return;
  for (const ino of [0, 55, 1.5, -1, 6, 9]) assert.throws(() => sb.getAttr(ino), { code: 'ERR_RAFS_NO_ENTRY' }, `ino ${ino}`);
  const file = pathIno(sb, '/hardlink-test/foo');
  assert.throws(() => sb.lookup(file, Buffer.from('x')), { code: 'ERR_RAFS_NOT_DIR' });
  assert.throws(() => sb.readdir(file), { code: 'ERR_RAFS_NOT_DIR' });
  assert.throws(() => sb.parentOf(file), { code: 'ERR_RAFS_NOT_DIR' });
  assert.throws(() => sb.readlink(1), { code: 'ERR_RAFS_NOT_SYMLINK', message: /link 1/ });
  assert.throws(() => sb.fileChunks(1, 0, 1), { code: 'ERR_RAFS_NOT_FILE' });
});

test('superblockJson reports RafsSuperMeta fields; openBootstrap reads the file', async (t) => {
  const sb = open(t);
  if (!sb) return;
  assert.deepEqual(sb.superblockJson({ attrTimeout: 1.5, entryTimeout: 2 }), {
    magic: 0x52414653,
    version: 0x500,
    sb_size: 8192,
    root_inode: 1,
    chunk_size: 0x100000,
    inodes_count: 51,
    flags: { bits: 9 },
    inode_table_entries: 54,
    inode_table_offset: 8192,
    blob_table_size: 72,
    blob_table_offset: 8408,
    extended_blob_table_offset: 8480,
    extended_blob_table_entries: 1,
    prefetch_table_offset: 8408,
    prefetch_table_entries: 0,
    attr_timeout: { secs: 1, nanos: 500000000 },
    entry_timeout: { secs: 2, nanos: 0 },
    is_chunk_dict: false,
    meta_blkaddr: 0,
    root_nid: 0,
    chunk_table_offset: 0,
    chunk_table_size: 0,
  });
  const opened = await openBootstrap(V5_BOOTSTRAP);
  assert.equal(opened.version, 5);
  assert.deepEqual(opened.getAttr(5), sb.getAttr(5));
  await assert.rejects(openBootstrap(V5_FIXTURE), { code: 'ERR_RAFS_BAD_SUPERBLOCK' });
});
