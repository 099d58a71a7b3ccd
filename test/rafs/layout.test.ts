// Byte-level layouts against the real fixtures: struct sizes, and encode(decode(x)) == x
// for every fixed structure of both bootstraps. The v5 bootstrap is rebuilt whole from
// decoded parts; for v6 every decoded structure is re-encoded in place and every byte
// outside them is checked to be zero (nothing meaningful is left undecoded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../../src/rafs/layout/index.js';
import { parseBootstrap, RafsV6Super } from '../../src/rafs/index.js';
import { haveFixtures, need } from '../helpers/env.js';
import { readV5, readV6 } from './helpers/fixtures.js';

test('struct sizes match docs/format.md', () => {
  assert.equal(L.encodeV5Superblock(L.decodeV5Superblock(Buffer.alloc(8192))).length, L.V5_SUPERBLOCK_SIZE);
  assert.equal(L.V5_SUPERBLOCK_SIZE, 8192);
  assert.equal(L.encodeV5Inode(L.decodeV5Inode(Buffer.alloc(128), 0)).length, 128);
  assert.equal(L.encodeV5ChunkInfo(L.decodeV5ChunkInfo(Buffer.alloc(80), 0)).length, 80);
  assert.equal(L.encodeV5ExtBlobEntry(L.decodeV5ExtBlobEntry(Buffer.alloc(64), 0)).length, 64);
  assert.equal(L.encodeV6Superblock(L.decodeV6Superblock(Buffer.alloc(1152))).length, 128);
  assert.equal(L.encodeV6SuperblockExt(L.decodeV6SuperblockExt(Buffer.alloc(1408))).length, 256);
  assert.equal(L.encodeV6Device(L.decodeV6Device(Buffer.alloc(128), 0)).length, 128);
  assert.equal(L.encodeV6BlobEntry(L.decodeV6BlobEntry(Buffer.alloc(256), 0)).length, 256);
  assert.equal(L.encodeV6InodeCompact(L.decodeV6InodeCompact(Buffer.alloc(32), 0)).length, 32);
  assert.equal(L.encodeV6InodeExtended(L.decodeV6InodeExtended(Buffer.alloc(64), 0)).length, 64);
  assert.equal(L.encodeV6Dirent(L.decodeV6Dirent(Buffer.alloc(12), 0)).length, 12);
  assert.equal(L.encodeV6XattrIbodyHeader(L.decodeV6XattrIbodyHeader(Buffer.alloc(12), 0)).length, 12);
  assert.equal(L.encodeV6XattrEntry(L.decodeV6XattrEntry(Buffer.alloc(4), 0)).length, 4);
  assert.equal(L.encodeV6ChunkIndex(L.decodeV6ChunkIndex(Buffer.alloc(8), 0)).length, 8);
});

test('decoders report truncation and u64 overflow as RafsFormatError', () => {
  assert.throws(() => L.decodeV5Superblock(Buffer.alloc(8191)), { code: 'ERR_RAFS_TRUNCATED' });
  const extended = Buffer.alloc(40);
  extended[0] = 1; // format bit 0: a 64-byte inode in 40 bytes
  assert.throws(() => L.decodeV6Inode(extended, 0), { code: 'ERR_RAFS_TRUNCATED' });
  const inode = Buffer.alloc(128);
  inode.writeUInt32LE(0xffffffff, 68); // high half of i_size
  assert.throws(() => L.decodeV5Inode(inode, 0), { code: 'ERR_RAFS_CORRUPT' });
});

test('v6 chunk index codec is bijective on the 8-byte form', () => {
  const raw = Buffer.from([0x34, 0x12, 0x07, 0xab, 1, 2, 3, 4]);
  const c = L.decodeV6ChunkIndex(raw, 0);
  assert.deepEqual(c, { deviceId: 7, ciIndex: 0xab1234, blkaddr: 0x04030201 });
  assert.deepEqual(L.encodeV6ChunkIndex(c), raw);
});

test('v5 fixture: rebuilt from decoded structures byte for byte', (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures are missing')) return;
  const buf = readV5();
  const sb = L.decodeV5Superblock(buf);
  const table = L.decodeV5InodeTable(buf, sb.inodeTableOffset, sb.inodeTableEntries);
  const parts: Buffer[] = [
    L.encodeV5Superblock(sb),
    L.encodeV5InodeTable(table),
    L.encodeV5PrefetchTable(L.decodeV5PrefetchTable(buf, sb.prefetchTableOffset, sb.prefetchTableEntries)),
    L.encodeV5BlobTable(L.decodeV5BlobTable(buf, sb.blobTableOffset, sb.blobTableSize)),
  ];
  for (let i = 0; i < sb.extendedBlobTableEntries; i++) {
    parts.push(L.encodeV5ExtBlobEntry(L.decodeV5ExtBlobEntry(buf, sb.extendedBlobTableOffset + i * 64)));
  }
  // Records in file order; each is decoded into its parts and re-encoded.
  const offsets = [...table].map((e) => e * 8).sort((a, b) => a - b);
  let records = 0;
  let chunks = 0;
  for (const off of offsets) {
    const inode = L.decodeV5Inode(buf, off);
    let pos = off + 128;
    const name = buf.subarray(pos, pos + inode.nameSize);
    pos += L.align8(inode.nameSize);
    const symlink = buf.subarray(pos, pos + inode.symlinkSize);
    pos += L.align8(inode.symlinkSize);
    let xattrs: L.Xattr[] = [];
    if (inode.flags & L.V5InodeFlags.XATTR) {
      const x = L.decodeV5XattrTable(buf, pos, buf.length);
      xattrs = x.xattrs;
      pos += x.byteLength;
    }
    const isFile = (inode.mode & L.S_IFMT) === L.S_IFREG;
    const list: L.V5ChunkInfo[] = [];
    for (let k = 0; isFile && k < inode.childCount; k++) list.push(L.decodeV5ChunkInfo(buf, pos + k * 80));
    const rec = L.encodeV5InodeRecord({ inode, name, symlink, xattrs, chunks: list });
    assert.deepEqual(rec, buf.subarray(off, off + rec.length), `record at ${off}`);
    list.forEach((c, k) => assert.deepEqual(L.encodeV5ChunkInfo(c), buf.subarray(pos + k * 80, pos + k * 80 + 80)));
    parts.push(rec);
    records++;
    chunks += list.length;
  }
  assert.equal(records, 54);
  assert.equal(chunks, 29);
  assert.deepEqual(Buffer.concat(parts), buf);
});

test('v6 fixture: every structure round-trips and nothing else is non-zero', (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures are missing')) return;
  const buf = readV6();
  const covered = new Uint8Array(buf.length);
  const check = (off: number, encoded: Buffer, what: string): void => {
    assert.deepEqual(encoded, buf.subarray(off, off + encoded.length), what);
    covered.fill(1, off, off + encoded.length);
  };
  const sb = L.decodeV6Superblock(buf);
  check(1024, L.encodeV6Superblock(sb), 'superblock');
  const ext = L.decodeV6SuperblockExt(buf);
  check(1152, L.encodeV6SuperblockExt(ext), 'extended superblock');
  for (let k = 0; k < sb.extraDevices; k++) check(1408 + k * 128, L.encodeV6Device(L.decodeV6Device(buf, 1408 + k * 128)), `device ${k}`);
  for (let k = 0; k < ext.blobTableSize / 256; k++) {
    const off = ext.blobTableOffset + k * 256;
    check(off, L.encodeV6BlobEntry(L.decodeV6BlobEntry(buf, off)), `blob ${k}`);
  }
  for (let off = ext.chunkTableOffset; off < ext.chunkTableOffset + ext.chunkTableSize; off += 80) {
    check(off, L.encodeV5ChunkInfo(L.decodeV5ChunkInfo(buf, off)), `chunk table entry at ${off}`);
  }
  const rs = parseBootstrap(buf);
  assert.ok(rs instanceof RafsV6Super);
  const pending = [rs.rootIno];
  const seen = new Set<number>();
  while (pending.length > 0) {
    const nid = pending.pop() as number;
    if (seen.has(nid)) continue;
    seen.add(nid);
    const off = sb.metaBlkaddr * 4096 + nid * 32;
    const inode = L.decodeV6Inode(buf, off);
    const isize = L.isExtendedInode(inode.format) ? 64 : 32;
    check(off, L.encodeV6Inode(inode), `inode ${nid}`);
    const type = inode.mode & L.S_IFMT;
    if (type === L.S_IFDIR) {
      // The fixture's root is one inline block right after the inode.
      const start = off + isize;
      const block = buf.subarray(start, start + inode.size);
      const entries = L.decodeV6DirBlock(block, 'root');
      assert.deepEqual(L.encodeV6DirBlock(entries), block);
      for (let i = 0; i < entries.length; i++) {
        const d = L.decodeV6Dirent(buf, start + i * 12);
        assert.equal(d.nid, entries[i].nid);
        check(start + i * 12, L.encodeV6Dirent(d), `dirent ${i}`);
      }
      covered.fill(1, start, start + inode.size);
      for (const e of entries) pending.push(e.nid);
    } else if (type === L.S_IFREG) {
      const base = Math.ceil((off + isize) / 8) * 8;
      for (let k = 0; k < Math.ceil(inode.size / ext.chunkSize); k++) {
        check(base + k * 8, L.encodeV6ChunkIndex(L.decodeV6ChunkIndex(buf, base + k * 8)), `chunk index ${k} of ${nid}`);
      }
    }
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), [128, 133, 136]);
  const stray = buf.findIndex((b, i) => b !== 0 && covered[i] === 0);
  assert.equal(stray, -1, `non-zero byte at ${stray} outside every decoded structure`);
});

test('xattr name prefixes split and join as EROFS indexes them', () => {
  const cases: [string, number, string][] = [
    ['user.mime', 1, 'mime'],
    ['system.posix_acl_access', 2, ''],
    ['system.posix_acl_default', 3, ''],
    ['trusted.overlay.opaque', 4, 'overlay.opaque'],
    ['security.capability', 6, 'capability'],
    ['system.other', 0, 'system.other'],
  ];
  for (const [name, index, suffix] of cases) {
    const s = L.splitV6XattrName(Buffer.from(name));
    assert.equal(s.nameIndex, index, name);
    assert.equal(s.suffix.toString(), suffix, name);
    assert.equal(L.V6_XATTR_PREFIXES[s.nameIndex] + s.suffix.toString(), name);
  }
});
