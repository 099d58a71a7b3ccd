// The upstream v6 fixture (zstd, blake3) read through RafsSuper: exactly lib.rs and
// sync_io.rs with the values of docs/format.md §9.3; chunk indexes resolve through the
// chunk table to the right blob ranges (decompressed and hashed here as a cross-check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBLAKE3 } from 'hash-wasm';
import { decompress } from 'zstd-napi';
import { openBootstrap, parseBootstrap, RafsV6Super, validateMetadata, walk } from '../../src/rafs/index.js';
import { haveFixtures, need } from '../helpers/env.js';
import { readV6, V6_BLOB_ID, V6_BLOB_INFO, V6_BLOBS, V6_BOOTSTRAP } from './helpers/fixtures.js';

function open(t: import('node:test').TestContext): RafsV6Super | undefined {
  if (!need(t, haveFixtures(), 'shared fixtures are missing')) return undefined;
  const sb = parseBootstrap(readV6());
  assert.ok(sb instanceof RafsV6Super);
  return sb;
}

const FILES = {
  'lib.rs': {
    nid: 133,
    size: 16931,
    mtime: [1676819553, 628661334],
    sha256: '1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69',
    chunk: { digest: 'f7e2735f1c6ae9cde91e537416b09d8bb71b306a421d19cc1012a51f93a7fe69', index: 0, uoff: 0, coff: 0, csize: 4828 },
  },
  'sync_io.rs': {
    nid: 136,
    size: 13400,
    mtime: [1676819553, 628993084],
    sha256: 'e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96',
    chunk: { digest: '812465bcc9e88393598311dc5fc93abaeccef0185bcd99f9701d17ebdf9adc3f', index: 1, uoff: 5 * 4096, coff: 4828, csize: 2974 },
  },
} as const;

test('superblocks, device slot and blob table hold the §9.3 values', (t) => {
  const sb = open(t);
  if (!sb) return;
  const s = sb.superblock;
  assert.deepEqual(
    [s.rootNid, s.metaBlkaddr, s.inos, s.blocks, s.extraDevices, s.devtSlotoff, s.featureCompat, s.featureIncompat],
    [128, 2, 3, 9, 1, 11, 0x4000_0000, 0xc],
  );
  const e = sb.superblockExt;
  assert.deepEqual(
    [e.flags, e.blobTableOffset, e.blobTableSize, e.chunkSize, e.chunkTableOffset, e.chunkTableSize],
    [0x194, 4096, 256, 0x100000, 16384, 160],
  );
  assert.equal(sb.chunkTableEntries, 2);
  assert.deepEqual(sb.deviceSlot(0), { blobId: V6_BLOB_ID, blocks: 9, mappedBlkaddr: 512 });
  assert.equal(sb.rootIno, 128);
  assert.equal(sb.compressor, 'zstd');
  assert.equal(sb.digester, 'blake3');
  assert.equal(sb.explicitUidGid, true);
  assert.equal(sb.inodeCount, 3);
  assert.equal(sb.bootstrapSize, 20480);
  assert.deepEqual(sb.blobs, [V6_BLOB_INFO]);
  assert.deepEqual(sb.prefetchList(), []);
});

test('the tree is exactly / with lib.rs and sync_io.rs', async (t) => {
  const sb = open(t);
  if (!sb) return;
  const entries = [...walk(sb)].map((e) => [e.path.toString(), e.ino, e.attr.mode, e.attr.nlink, e.attr.size]);
  assert.deepEqual(entries, [
    ['/', 128, 0o040755, 2, 67],
    ['/lib.rs', 133, 0o100644, 1, 16931],
    ['/sync_io.rs', 136, 0o100644, 1, 13400],
  ]);
  const root = sb.getAttr(128);
  assert.deepEqual([root.mtime, root.mtimeNsec, root.blocks], [0, 0, 1]);
  for (const [name, f] of Object.entries(FILES)) {
    assert.equal(sb.lookup(128, Buffer.from(name)), f.nid);
    const a = sb.getAttr(f.nid);
    assert.deepEqual([a.mtime, a.mtimeNsec], f.mtime);
    assert.equal(a.blocks, Math.ceil(f.size / 512));
    assert.equal(a.rdev, 0);
  }
  assert.equal(sb.parentOf(128), 128);
  assert.equal(sb.childCount(128), 2);
  assert.equal(sb.lookup(128, Buffer.from('.')), undefined);
  assert.equal(sb.lookup(128, Buffer.from('..')), undefined);
  assert.equal(sb.lookup(128, Buffer.from('main.rs')), undefined);
  assert.deepEqual([...sb.readdir(128, 1)].map((e) => [e.name.toString(), e.ino, e.type]), [['sync_io.rs', 136, 0o100000]]);
  assert.deepEqual(await validateMetadata(sb), {
    inodes: 3,
    entries: 2,
    dirs: 1,
    files: 2,
    symlinks: 0,
    specials: 0,
    hardlinks: 0,
    xattrs: 0,
    chunks: 2,
    distinctChunks: 2,
    fileBytes: 30331,
    blobs: 1,
  });
});

test('chunks resolve through the chunk table to the §9.3 fields', (t) => {
  const sb = open(t);
  if (!sb) return;
  for (const f of Object.values(FILES)) {
    const chunks = sb.fileChunks(f.nid, 0, f.size);
    assert.equal(chunks.length, 1);
    const c = chunks[0];
    assert.deepEqual(
      { ...c, digest: c.digest.toString('hex') },
      {
        digest: f.chunk.digest,
        blobIndex: 0,
        index: f.chunk.index,
        compressed: true,
        compressedOffset: f.chunk.coff,
        compressedSize: f.chunk.csize,
        uncompressedOffset: f.chunk.uoff,
        uncompressedSize: f.size,
        fileOffset: 0,
      },
    );
    assert.deepEqual(sb.fileChunks(f.nid, f.size - 1, 100).length, 1);
    assert.deepEqual(sb.fileChunks(f.nid, f.size, 100), []);
  }
  const blob = sb.blobChunks(0);
  assert.deepEqual(blob.map((c) => [c.index, c.compressedOffset]), [[0, 0], [1, 4828]]);
});

test('chunk bytes decompress to the files of §9.3 (blake3 chunk ids, sha256 of files)', async (t) => {
  const sb = open(t);
  if (!sb) return;
  const blob = readFileSync(join(V6_BLOBS, V6_BLOB_ID));
  const b3 = await createBLAKE3();
  for (const f of Object.values(FILES)) {
    const [c] = sb.fileChunks(f.nid, 0, f.size);
    const data = decompress(blob.subarray(c.compressedOffset, c.compressedOffset + c.compressedSize));
    assert.equal(data.length, c.uncompressedSize);
    b3.init();
    b3.update(data);
    assert.equal(b3.digest('hex'), c.digest.toString('hex'));
    assert.equal(createHash('sha256').update(data).digest('hex'), f.sha256);
  }
});

test('errors and superblockJson', async (t) => {
  const sb = open(t);
  if (!sb) return;
  // nid 0 is the unused first meta block; a nid past the file is nothing at all.
  for (const nid of [0, 1 << 20, -1, 2.5]) assert.throws(() => sb.getAttr(nid), { code: 'ERR_RAFS_NO_ENTRY' }, `nid ${nid}`);
  assert.throws(() => sb.lookup(133, Buffer.from('x')), { code: 'ERR_RAFS_NOT_DIR' });
  assert.throws(() => sb.parentOf(133), { code: 'ERR_RAFS_NOT_DIR' });
  assert.throws(() => sb.readdir(133), { code: 'ERR_RAFS_NOT_DIR' });
  assert.throws(() => sb.childCount(136), { code: 'ERR_RAFS_NOT_DIR' });
  assert.throws(() => sb.readlink(133), { code: 'ERR_RAFS_NOT_SYMLINK' });
  assert.throws(() => sb.fileChunks(128, 0, 1), { code: 'ERR_RAFS_NOT_FILE' });
  assert.deepEqual(sb.listXattrs(133), []);
  assert.deepEqual(sb.superblockJson(), {
    magic: 0xe0f5e1e2,
    version: 0x600,
    sb_size: 0,
    root_inode: 128,
    chunk_size: 0x100000,
    inodes_count: 3,
    flags: { bits: 0x194 },
    inode_table_entries: 0,
    inode_table_offset: 0,
    blob_table_size: 256,
    blob_table_offset: 4096,
    extended_blob_table_offset: 0,
    extended_blob_table_entries: 0,
    prefetch_table_offset: 0,
    prefetch_table_entries: 0,
    attr_timeout: { secs: 2 ** 32, nanos: 0 },
    entry_timeout: { secs: 2 ** 32, nanos: 0 },
    is_chunk_dict: false,
    meta_blkaddr: 2,
    root_nid: 128,
    chunk_table_offset: 16384,
    chunk_table_size: 160,
  });
  const opened = await openBootstrap(V6_BOOTSTRAP);
  assert.equal(opened.version, 6);
  assert.deepEqual(opened.getAttr(136), sb.getAttr(136));
});
