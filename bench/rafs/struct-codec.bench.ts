// Micro benchmark of the RAFS struct codecs over every instance of each struct in the
// upstream fixtures: the exported decoders (hand-written where the read path calls them
// per lookup or read) against the table-driven decoder of the same struct
// (src/rafs/layout/struct.ts), and the exported encoders. Prints ns per call; a script,
// never an assertion. The numbers decide which decoders stay hand-written.
// Run: `node --import tsx bench/rafs/struct-codec.bench.ts [--rounds 100000]`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as L from '../../src/rafs/layout/index.js';
import { V5_FIXTURE, V6_FIXTURE } from '../../test/helpers/env.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '100000' } } });
const ROUNDS = Number(values.rounds);

interface Case {
  name: string;
  buf: Buffer;
  offsets: number[];
  variants: Record<string, (buf: Buffer, off: number) => unknown>;
}

/** Offsets of every inode record, chunk record and the superblock of the v5 fixture. */
function v5Cases(): Case[] {
  const buf = readFileSync(join(V5_FIXTURE, 'bootstrap'));
  const sb = L.decodeV5Superblock(buf);
  const inodes = [...L.decodeV5InodeTable(buf, sb.inodeTableOffset, sb.inodeTableEntries)].map((e) => e * 8);
  const chunks: number[] = [];
  for (const off of inodes) {
    const i = L.decodeV5Inode(buf, off);
    if ((i.mode & L.S_IFMT) !== L.S_IFREG) continue;
    let pos = off + L.V5_INODE_SIZE + L.align8(i.nameSize) + L.align8(i.symlinkSize);
    if (i.flags & L.V5InodeFlags.XATTR) pos += L.decodeV5XattrTable(buf, pos, buf.length).byteLength;
    for (let k = 0; k < i.childCount; k++) chunks.push(pos + k * L.V5_CHUNK_INFO_SIZE);
  }
  return [
    { name: 'v5 inode', buf, offsets: inodes, variants: { exported: L.decodeV5Inode, table: L.V5InodeStruct.decode } },
    { name: 'v5 chunk info', buf, offsets: chunks, variants: { exported: L.decodeV5ChunkInfo, table: L.V5ChunkInfoStruct.decode } },
    { name: 'v5 superblock', buf, offsets: [0], variants: { exported: L.decodeV5Superblock, table: L.V5SuperblockStruct.decode } },
  ];
}

/** Offsets of every inode, root dirent and chunk table entry of the v6 fixture, and its superblocks. */
function v6Cases(): Case[] {
  const buf = readFileSync(join(V6_FIXTURE, 'bootstrap'));
  const sb = L.decodeV6Superblock(buf);
  const ext = L.decodeV6SuperblockExt(buf);
  const inodeAt = (nid: number): number => sb.metaBlkaddr * L.EROFS_BLOCK_SIZE + nid * L.EROFS_INODE_SLOT_SIZE;
  const root = inodeAt(sb.rootNid);
  const rootInode = L.decodeV6Inode(buf, root);
  const rootSize = L.isExtendedInode(rootInode.format) ? L.V6_INODE_EXTENDED_SIZE : L.V6_INODE_COMPACT_SIZE;
  const block = buf.subarray(root + rootSize, root + rootSize + rootInode.size);
  const entries = L.decodeV6DirBlock(block, 'root');
  const dirents = entries.map((_, i) => root + rootSize + i * L.V6_DIRENT_SIZE);
  const inodes = entries.map((e) => inodeAt(e.nid));
  const extended = inodes.filter((off) => L.isExtendedInode(buf.readUInt16LE(off)));
  const compact = inodes.filter((off) => !L.isExtendedInode(buf.readUInt16LE(off)));
  const chunkTable: number[] = [];
  for (let off = ext.chunkTableOffset; off < ext.chunkTableOffset + ext.chunkTableSize; off += L.V5_CHUNK_INFO_SIZE) chunkTable.push(off);
  const blobs = Array.from({ length: ext.blobTableSize / L.V6_BLOB_ENTRY_SIZE }, (_, k) => ext.blobTableOffset + k * L.V6_BLOB_ENTRY_SIZE);
  const cases: Case[] = [
    { name: 'v6 dirent', buf, offsets: dirents, variants: { exported: L.decodeV6Dirent, table: L.V6DirentStruct.decode } },
    { name: 'v6 chunk table entry', buf, offsets: chunkTable, variants: { exported: L.decodeV5ChunkInfo, table: L.V5ChunkInfoStruct.decode } },
    { name: 'v6 superblock', buf, offsets: [L.EROFS_SUPER_OFFSET], variants: { exported: L.decodeV6Superblock, table: L.V6SuperblockStruct.decode } },
    { name: 'v6 ext superblock', buf, offsets: [L.V6_EXT_SUPER_OFFSET], variants: { exported: L.decodeV6SuperblockExt, table: L.V6SuperblockExtStruct.decode } },
    { name: 'v6 blob entry', buf, offsets: blobs, variants: { exported: L.decodeV6BlobEntry, table: L.V6BlobEntryStruct.decode } },
  ];
  if (extended.length > 0) {
    cases.push({ name: 'v6 extended inode', buf, offsets: extended, variants: { exported: L.decodeV6InodeExtended, table: L.V6InodeExtendedStruct.decode } });
  }
  if (compact.length > 0) {
    cases.push({ name: 'v6 compact inode', buf, offsets: compact, variants: { exported: L.decodeV6InodeCompact, table: L.V6InodeCompactStruct.decode } });
  }
  return cases;
}

/** Inline xattr headers and entry headers: the fixtures hold none, so 16 encoded ones of each. */
function xattrCases(): Case[] {
  const headers = Buffer.concat(Array.from({ length: 16 }, (_, i) => L.encodeV6XattrIbodyHeader({ nameFilter: i * 7919, sharedCount: 0 })));
  const entries = Buffer.concat(Array.from({ length: 16 }, (_, i) => L.encodeV6XattrEntry({ nameLen: 4 + i, nameIndex: 1 + (i % 6), valueSize: 10 * i })));
  return [
    {
      name: 'v6 xattr header',
      buf: headers,
      offsets: Array.from({ length: 16 }, (_, i) => i * L.V6_XATTR_IBODY_HEADER_SIZE),
      variants: { exported: L.decodeV6XattrIbodyHeader, table: L.V6XattrIbodyHeaderStruct.decode },
    },
    {
      name: 'v6 xattr entry',
      buf: entries,
      offsets: Array.from({ length: 16 }, (_, i) => i * L.V6_XATTR_ENTRY_SIZE),
      variants: { exported: L.decodeV6XattrEntry, table: L.V6XattrEntryStruct.decode },
    },
  ];
}

let sink = 0;

/** ns per call of `fn` over every offset, `rounds` times (after a tenth as warm-up). */
function time(fn: (buf: Buffer, off: number) => unknown, buf: Buffer, offsets: number[], rounds: number): number {
  const pass = (n: number): void => {
    for (let r = 0; r < n; r++) for (const off of offsets) sink ^= (fn(buf, off) as object) === null ? 1 : 0;
  };
  pass(Math.ceil(rounds / 10));
  const start = process.hrtime.bigint();
  pass(rounds);
  return Number(process.hrtime.bigint() - start) / (rounds * offsets.length);
}

const cases = [...v5Cases(), ...v6Cases(), ...xattrCases()];
console.log(`decode, ns per call (${ROUNDS} rounds over each struct's instances):`);
for (const c of cases) {
  const cols = Object.entries(c.variants).map(([label, fn]) => `${label} ${time(fn, c.buf, c.offsets, ROUNDS).toFixed(1)}`);
  console.log(`  ${c.name.padEnd(22)} x${String(c.offsets.length).padEnd(3)} ${cols.join('  ')}`);
}

/** Every decoded instance re-encoded: the builder's side. */
const encodes: [string, () => void][] = cases.map((c) => {
  const enc: Record<string, (v: never) => Buffer> = {
    'v5 inode': L.encodeV5Inode,
    'v5 chunk info': L.encodeV5ChunkInfo,
    'v5 superblock': L.encodeV5Superblock,
    'v6 dirent': L.encodeV6Dirent,
    'v6 chunk table entry': L.encodeV5ChunkInfo,
    'v6 superblock': L.encodeV6Superblock,
    'v6 ext superblock': L.encodeV6SuperblockExt,
    'v6 blob entry': L.encodeV6BlobEntry,
    'v6 extended inode': L.encodeV6InodeExtended,
    'v6 compact inode': L.encodeV6InodeCompact,
    'v6 xattr header': L.encodeV6XattrIbodyHeader,
    'v6 xattr entry': L.encodeV6XattrEntry,
  };
  const decoded = c.offsets.map((off) => c.variants.exported(c.buf, off) as never);
  return [c.name, () => decoded.forEach((v) => (sink ^= enc[c.name](v).length))];
});
const encRounds = Math.ceil(ROUNDS / 10);
console.log(`encode, ns per call (${encRounds} rounds):`);
for (const [name, run] of encodes) {
  const n = cases.find((c) => c.name === name)!.offsets.length;
  for (let r = 0; r < encRounds / 10; r++) run();
  const start = process.hrtime.bigint();
  for (let r = 0; r < encRounds; r++) run();
  console.log(`  ${name.padEnd(22)} ${(Number(process.hrtime.bigint() - start) / (encRounds * n)).toFixed(1)}`);
}
if (sink === 42) console.log('');
