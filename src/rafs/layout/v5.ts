// RAFS v5 on-disk structures (docs/format.md §3): superblock, inode and prefetch tables,
// blob table and extended blob table, inode record, xattr table, chunk info.
// Bytes only: each fixed struct is a field table (struct.ts) that drives its encoder (the
// builder's) and its decoder, except where the read path decodes per request: those
// decoders are hand-written, and tests hold them to the table. `encode(decode(b))`
// reproduces `b` for every upstream image.
import {
  align8,
  badSuper,
  checkRange,
  copyBytes,
  corrupt,
  isValidChunkSize,
  KNOWN_SUPER_FLAGS,
  RAFS_DIGEST_SIZE,
  RAFS_MAX_METADATA_SIZE,
  readU64,
  writeU64,
} from './common.js';
import { defineStruct } from './struct.js';

export const V5_SUPER_MAGIC = 0x5241_4653;
export const V5_SUPER_VERSION = 0x500;
export const V5_SUPERBLOCK_SIZE = 8192;
export const V5_INODE_SIZE = 128;
export const V5_CHUNK_INFO_SIZE = 80;
export const V5_EXT_BLOB_ENTRY_SIZE = 64;
export const V5_ROOT_INO = 1;
/** Inode table entries are `offset >> 3` and must lie in `(8192 >> 3, 1 << 29)`. */
export const V5_MAX_INODE_TABLE_ENTRY = 1 << 29;

/** The v5 superblock (8192 bytes; fields after offset 80 are reserved zeros). */
export interface V5Superblock {
  magic: number;
  fsVersion: number;
  sbSize: number;
  /** Chunk size. */
  blockSize: number;
  flags: number;
  inodesCount: number;
  inodeTableOffset: number;
  prefetchTableOffset: number;
  blobTableOffset: number;
  inodeTableEntries: number;
  prefetchTableEntries: number;
  blobTableSize: number;
  extendedBlobTableEntries: number;
  extendedBlobTableOffset: number;
}

/** The v5 superblock's field table. */
export const V5SuperblockStruct = defineStruct<V5Superblock>({
  name: 'v5 superblock',
  size: V5_SUPERBLOCK_SIZE,
  fields: {
    magic: [0, 'u32'],
    fsVersion: [4, 'u32'],
    sbSize: [8, 'u32'],
    blockSize: [12, 'u32'],
    flags: [16, 'u64'],
    inodesCount: [24, 'u64'],
    inodeTableOffset: [32, 'u64'],
    prefetchTableOffset: [40, 'u64'],
    blobTableOffset: [48, 'u64'],
    inodeTableEntries: [56, 'u32'],
    prefetchTableEntries: [60, 'u32'],
    blobTableSize: [64, 'u32'],
    extendedBlobTableEntries: [68, 'u32'],
    extendedBlobTableOffset: [72, 'u64'],
  },
});

export function decodeV5Superblock(buf: Buffer, off = 0): V5Superblock {
  return V5SuperblockStruct.decode(buf, off);
}

export function encodeV5Superblock(sb: V5Superblock): Buffer {
  return V5SuperblockStruct.encode(sb);
}

interface Range {
  start: number;
  end: number;
}

function overlaps(a: Range, b: Range): boolean {
  return a.start < b.end && b.start < a.end;
}

/**
 * Upstream's v5 superblock checks (`RafsV5SuperBlock::validate` plus the reader's own):
 * magic and version, sb size, file size, chunk size, flags, and every table inside the
 * file, 8-byte aligned and not overlapping another.
 */
export function validateV5Superblock(sb: V5Superblock, fileSize: number): void {
  if (sb.magic !== V5_SUPER_MAGIC || sb.fsVersion !== V5_SUPER_VERSION) {
    throw badSuper(`magic 0x${sb.magic.toString(16)} version 0x${sb.fsVersion.toString(16)} is not RAFS v5`);
  }
  if (sb.sbSize !== V5_SUPERBLOCK_SIZE) throw badSuper(`sb_size ${sb.sbSize} is not ${V5_SUPERBLOCK_SIZE}`);
  if (fileSize <= V5_SUPERBLOCK_SIZE || fileSize > RAFS_MAX_METADATA_SIZE || fileSize % 8 !== 0) {
    throw badSuper(`bootstrap size ${fileSize} is not a valid v5 metadata size`);
  }
  // Upstream also names 4 MiB (stargz) explicitly; it lies inside the general range.
  if (!isValidChunkSize(sb.blockSize)) {
    throw badSuper(`chunk size 0x${sb.blockSize.toString(16)} is invalid`);
  }
  if (sb.flags - (sb.flags % 2 ** 32) !== 0 || (sb.flags & ~KNOWN_SUPER_FLAGS) !== 0) {
    throw badSuper(`unknown flags in 0x${sb.flags.toString(16)}`);
  }
  const meta: Range = { start: V5_SUPERBLOCK_SIZE, end: fileSize };
  const table = (name: string, start: number, size: number): Range => {
    const r = { start, end: start + size };
    if (start % 8 !== 0 || r.start < meta.start || r.end > meta.end) {
      throw badSuper(`${name} [${start}, +${size}) is misaligned or outside the bootstrap`);
    }
    return r;
  };
  const inodes = table('inode table', sb.inodeTableOffset, sb.inodeTableEntries * 4);
  if (sb.inodesCount > sb.inodeTableEntries) {
    throw badSuper(`inodes count ${sb.inodesCount} exceeds inode table entries ${sb.inodeTableEntries}`);
  }
  const blobs = table('blob table', sb.blobTableOffset, sb.blobTableSize);
  if (overlaps(blobs, inodes)) throw badSuper('blob table overlaps the inode table');
  const others: Range[] = [inodes, blobs];
  if (sb.extendedBlobTableEntries > 0) {
    const ext = table(
      'extended blob table',
      sb.extendedBlobTableOffset,
      sb.extendedBlobTableEntries * V5_EXT_BLOB_ENTRY_SIZE,
    );
    if (others.some((r) => overlaps(ext, r))) throw badSuper('extended blob table overlaps another table');
    others.push(ext);
  }
  if (sb.prefetchTableEntries > 0) {
    const pre = table('prefetch table', sb.prefetchTableOffset, sb.prefetchTableEntries * 4);
    if (others.some((r) => overlaps(pre, r))) throw badSuper('prefetch table overlaps another table');
  }
}

/** A table of u32 (inode table: `offset >> 3` per index; prefetch table: inode numbers). */
function decodeU32Table(buf: Buffer, off: number, entries: number, what: string): Uint32Array {
  checkRange(buf, off, entries * 4, what);
  const out = new Uint32Array(entries);
  for (let i = 0; i < entries; i++) out[i] = buf.readUInt32LE(off + i * 4);
  return out;
}

function encodeU32Table(values: ArrayLike<number>): Buffer {
  const buf = Buffer.alloc(align8(values.length * 4));
  for (let i = 0; i < values.length; i++) buf.writeUInt32LE(values[i], i * 4);
  return buf;
}

/** The inode table: entry `i` is the byte offset of index `i + 1`'s record, shifted right by 3. */
export function decodeV5InodeTable(buf: Buffer, off: number, entries: number): Uint32Array {
  return decodeU32Table(buf, off, entries, 'v5 inode table');
}

/** The inode table, zero-padded to 8 bytes. */
export function encodeV5InodeTable(entries: ArrayLike<number>): Buffer {
  return encodeU32Table(entries);
}

export function decodeV5PrefetchTable(buf: Buffer, off: number, entries: number): Uint32Array {
  return decodeU32Table(buf, off, entries, 'v5 prefetch table');
}

/** The prefetch table (inode numbers), zero-padded to 8 bytes. */
export function encodeV5PrefetchTable(inos: ArrayLike<number>): Buffer {
  return encodeU32Table(inos);
}

/** One blob table entry. */
export interface V5BlobEntry {
  readaheadOffset: number;
  readaheadSize: number;
  /** Decoded as latin1 so that any byte string round-trips. */
  blobId: string;
}

/** The blob table: `u32 u32 id` entries separated by NUL (none after the last), padded to 8. */
export function decodeV5BlobTable(buf: Buffer, off: number, size: number): V5BlobEntry[] {
  checkRange(buf, off, size, 'v5 blob table');
  const out: V5BlobEntry[] = [];
  let pos = off;
  const end = off + size;
  while (end - pos > 8) {
    const readaheadOffset = buf.readUInt32LE(pos);
    const readaheadSize = buf.readUInt32LE(pos + 4);
    let idEnd = buf.indexOf(0, pos + 8);
    if (idEnd < 0 || idEnd > end) idEnd = end;
    out.push({ readaheadOffset, readaheadSize, blobId: buf.toString('latin1', pos + 8, idEnd) });
    pos = idEnd === end ? end : idEnd + 1;
  }
  return out;
}

export function encodeV5BlobTable(entries: readonly V5BlobEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((e, i) => {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(e.readaheadOffset, 0);
    head.writeUInt32LE(e.readaheadSize, 4);
    parts.push(head, Buffer.from(e.blobId, 'latin1'));
    if (i !== entries.length - 1) parts.push(Buffer.alloc(1));
  });
  const body = Buffer.concat(parts);
  return Buffer.concat([body, Buffer.alloc(align8(body.length) - body.length)]);
}

/** One extended blob table entry (64 bytes). */
export interface V5ExtBlobEntry {
  chunkCount: number;
  features: number;
  uncompressedSize: number;
  compressedSize: number;
}

/** The extended blob table entry's field table (bytes 24..64 reserved). */
export const V5ExtBlobEntryStruct = defineStruct<V5ExtBlobEntry>({
  name: 'v5 extended blob table entry',
  size: V5_EXT_BLOB_ENTRY_SIZE,
  fields: {
    chunkCount: [0, 'u32'],
    features: [4, 'u32'],
    uncompressedSize: [8, 'u64'],
    compressedSize: [16, 'u64'],
  },
});

export function decodeV5ExtBlobEntry(buf: Buffer, off: number): V5ExtBlobEntry {
  return V5ExtBlobEntryStruct.decode(buf, off);
}

export function encodeV5ExtBlobEntry(e: V5ExtBlobEntry): Buffer {
  return V5ExtBlobEntryStruct.encode(e);
}

/** The fixed 128-byte part of an inode record. */
export interface V5Inode {
  digest: Buffer;
  parent: number;
  ino: number;
  uid: number;
  gid: number;
  projid: number;
  mode: number;
  size: number;
  blocks: number;
  flags: number;
  nlink: number;
  childIndex: number;
  /** Directory: number of children; regular file: number of chunk records. */
  childCount: number;
  nameSize: number;
  symlinkSize: number;
  rdev: number;
  mtimeNsec: number;
  mtime: number;
}

/** The inode's field table (bytes 120..128 reserved). */
export const V5InodeStruct = defineStruct<V5Inode>({
  name: 'v5 inode',
  size: V5_INODE_SIZE,
  where: (off) => `v5 inode at offset ${off}`,
  fields: {
    digest: [0, 'bytes:32'],
    parent: [32, 'u64'],
    ino: [40, 'u64'],
    uid: [48, 'u32'],
    gid: [52, 'u32'],
    projid: [56, 'u32'],
    mode: [60, 'u32'],
    size: [64, 'u64'],
    blocks: [72, 'u64'],
    flags: [80, 'u64'],
    nlink: [88, 'u32'],
    childIndex: [92, 'u32'],
    childCount: [96, 'u32'],
    nameSize: [100, 'u16'],
    symlinkSize: [102, 'u16'],
    rdev: [104, 'u32'],
    mtimeNsec: [108, 'u32'],
    mtime: [112, 'u64'],
  },
});

/** Hand-written rather than table-driven: it runs on every lookup (bench/rafs/struct-codec.bench.ts). */
export function decodeV5Inode(buf: Buffer, off: number): V5Inode {
  checkRange(buf, off, V5_INODE_SIZE, 'v5 inode');
  const w = `v5 inode at offset ${off}`;
  return {
    digest: copyBytes(buf, off, RAFS_DIGEST_SIZE),
    parent: readU64(buf, off + 32, w),
    ino: readU64(buf, off + 40, w),
    uid: buf.readUInt32LE(off + 48),
    gid: buf.readUInt32LE(off + 52),
    projid: buf.readUInt32LE(off + 56),
    mode: buf.readUInt32LE(off + 60),
    size: readU64(buf, off + 64, w),
    blocks: readU64(buf, off + 72, w),
    flags: readU64(buf, off + 80, w),
    nlink: buf.readUInt32LE(off + 88),
    childIndex: buf.readUInt32LE(off + 92),
    childCount: buf.readUInt32LE(off + 96),
    nameSize: buf.readUInt16LE(off + 100),
    symlinkSize: buf.readUInt16LE(off + 102),
    rdev: buf.readUInt32LE(off + 104),
    mtimeNsec: buf.readUInt32LE(off + 108),
    mtime: readU64(buf, off + 112, w),
  };
}

export function encodeV5Inode(i: V5Inode): Buffer {
  if (i.digest.length !== RAFS_DIGEST_SIZE) throw new RangeError('inode digest must be 32 bytes');
  return V5InodeStruct.encode(i);
}

/** One chunk record (80 bytes); also the v6 chunk table entry. */
export interface V5ChunkInfo {
  blockId: Buffer;
  blobIndex: number;
  flags: number;
  compressedSize: number;
  uncompressedSize: number;
  compressedOffset: number;
  uncompressedOffset: number;
  fileOffset: number;
  index: number;
  /** Reserved in 2.2; HEAD stores the chunk's crc32 here when flag HAS_CRC32 is set. */
  crc32: number;
}

/** The chunk record's field table. */
export const V5ChunkInfoStruct = defineStruct<V5ChunkInfo>({
  name: 'chunk info',
  size: V5_CHUNK_INFO_SIZE,
  where: (off) => `chunk info at offset ${off}`,
  fields: {
    blockId: [0, 'bytes:32'],
    blobIndex: [32, 'u32'],
    flags: [36, 'u32'],
    compressedSize: [40, 'u32'],
    uncompressedSize: [44, 'u32'],
    compressedOffset: [48, 'u64'],
    uncompressedOffset: [56, 'u64'],
    fileOffset: [64, 'u64'],
    index: [72, 'u32'],
    crc32: [76, 'u32'],
  },
});

/** Hand-written rather than table-driven: it runs on every read (bench/rafs/struct-codec.bench.ts). */
export function decodeV5ChunkInfo(buf: Buffer, off: number): V5ChunkInfo {
  checkRange(buf, off, V5_CHUNK_INFO_SIZE, 'chunk info');
  const w = `chunk info at offset ${off}`;
  return {
    blockId: copyBytes(buf, off, RAFS_DIGEST_SIZE),
    blobIndex: buf.readUInt32LE(off + 32),
    flags: buf.readUInt32LE(off + 36),
    compressedSize: buf.readUInt32LE(off + 40),
    uncompressedSize: buf.readUInt32LE(off + 44),
    compressedOffset: readU64(buf, off + 48, w),
    uncompressedOffset: readU64(buf, off + 56, w),
    fileOffset: readU64(buf, off + 64, w),
    index: buf.readUInt32LE(off + 72),
    crc32: buf.readUInt32LE(off + 76),
  };
}

export function encodeV5ChunkInfo(c: V5ChunkInfo): Buffer {
  if (c.blockId.length !== RAFS_DIGEST_SIZE) throw new RangeError('chunk digest must be 32 bytes');
  return V5ChunkInfoStruct.encode(c);
}

/** One extended attribute: full name (`user.foo`) and value. */
export interface Xattr {
  name: Buffer;
  value: Buffer;
}

/**
 * The xattr table at `off`: `u64 size`, then `size` bytes of `u32 pair_size, name, NUL,
 * value` records, padded so the table is `8 + align8(size)` bytes. `limit` bounds the
 * table (the end of the inode record's space).
 */
export function decodeV5XattrTable(buf: Buffer, off: number, limit: number): { xattrs: Xattr[]; byteLength: number } {
  checkRange(buf, off, 8, 'v5 xattr table');
  const size = readU64(buf, off, 'v5 xattr table');
  const byteLength = 8 + align8(size);
  if (off + byteLength > limit) throw corrupt(`failed to decode v5 xattr table at offset ${off}: size ${size} overruns`);
  checkRange(buf, off, byteLength, 'v5 xattr table');
  const xattrs: Xattr[] = [];
  let pos = off + 8;
  const end = off + 8 + size;
  while (pos < end) {
    if (end - pos < 4) throw corrupt(`failed to decode v5 xattr pair at offset ${pos}: truncated header`);
    const pairSize = buf.readUInt32LE(pos);
    const start = pos + 4;
    if (pairSize > end - start) throw corrupt(`failed to decode v5 xattr pair at offset ${pos}: size ${pairSize} overruns`);
    const nul = buf.indexOf(0, start);
    if (nul < 0 || nul >= start + pairSize) throw corrupt(`failed to decode v5 xattr pair at offset ${pos}: no name terminator`);
    xattrs.push({ name: copyBytes(buf, start, nul - start), value: copyBytes(buf, nul + 1, start + pairSize - nul - 1) });
    pos = start + pairSize;
  }
  return { xattrs, byteLength };
}

export function encodeV5XattrTable(xattrs: readonly Xattr[]): Buffer {
  const parts: Buffer[] = [];
  for (const x of xattrs) {
    const head = Buffer.alloc(4);
    head.writeUInt32LE(x.name.length + 1 + x.value.length, 0);
    parts.push(head, x.name, Buffer.alloc(1), x.value);
  }
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  writeU64(head, 0, body.length);
  return Buffer.concat([head, body, Buffer.alloc(align8(body.length) - body.length)]);
}

/** Everything one inode record holds, in on-disk order. */
export interface V5InodeRecord {
  inode: V5Inode;
  name: Buffer;
  symlink?: Buffer;
  xattrs?: readonly Xattr[];
  chunks?: readonly V5ChunkInfo[];
}

/**
 * A whole inode record: fixed part, name and symlink padded to 8, the xattr table when
 * the XATTR flag is set, then the chunk records. Sizes in `inode` must match the parts.
 */
export function encodeV5InodeRecord(r: V5InodeRecord): Buffer {
  const symlink = r.symlink ?? Buffer.alloc(0);
  const chunks = r.chunks ?? [];
  if (r.inode.nameSize !== r.name.length || r.inode.symlinkSize !== symlink.length) {
    throw new RangeError('inode name/symlink sizes do not match the record');
  }
  const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc(align8(b.length) - b.length)]);
  const parts = [encodeV5Inode(r.inode), pad(r.name), pad(symlink)];
  if (r.inode.flags & 0x4) parts.push(encodeV5XattrTable(r.xattrs ?? []));
  for (const c of chunks) parts.push(encodeV5ChunkInfo(c));
  return Buffer.concat(parts);
}
