// RAFS v5 on-disk structures (rafs-format.md §3): superblock, inode and prefetch tables,
// blob table and extended blob table, inode record, xattr table, chunk info.
// Bytes only: each struct has its size, a decoder into a plain object and an encoder
// that the builder reuses; `encode(decode(b))` reproduces `b` for every upstream image.
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

export function decodeV5Superblock(buf: Buffer, off = 0): V5Superblock {
  checkRange(buf, off, V5_SUPERBLOCK_SIZE, 'v5 superblock');
  const w = 'v5 superblock';
  return {
    magic: buf.readUInt32LE(off),
    fsVersion: buf.readUInt32LE(off + 4),
    sbSize: buf.readUInt32LE(off + 8),
    blockSize: buf.readUInt32LE(off + 12),
    flags: readU64(buf, off + 16, w),
    inodesCount: readU64(buf, off + 24, w),
    inodeTableOffset: readU64(buf, off + 32, w),
    prefetchTableOffset: readU64(buf, off + 40, w),
    blobTableOffset: readU64(buf, off + 48, w),
    inodeTableEntries: buf.readUInt32LE(off + 56),
    prefetchTableEntries: buf.readUInt32LE(off + 60),
    blobTableSize: buf.readUInt32LE(off + 64),
    extendedBlobTableEntries: buf.readUInt32LE(off + 68),
    extendedBlobTableOffset: readU64(buf, off + 72, w),
  };
}

export function encodeV5Superblock(sb: V5Superblock): Buffer {
  const buf = Buffer.alloc(V5_SUPERBLOCK_SIZE);
  buf.writeUInt32LE(sb.magic, 0);
  buf.writeUInt32LE(sb.fsVersion, 4);
  buf.writeUInt32LE(sb.sbSize, 8);
  buf.writeUInt32LE(sb.blockSize, 12);
  writeU64(buf, 16, sb.flags);
  writeU64(buf, 24, sb.inodesCount);
  writeU64(buf, 32, sb.inodeTableOffset);
  writeU64(buf, 40, sb.prefetchTableOffset);
  writeU64(buf, 48, sb.blobTableOffset);
  buf.writeUInt32LE(sb.inodeTableEntries, 56);
  buf.writeUInt32LE(sb.prefetchTableEntries, 60);
  buf.writeUInt32LE(sb.blobTableSize, 64);
  buf.writeUInt32LE(sb.extendedBlobTableEntries, 68);
  writeU64(buf, 72, sb.extendedBlobTableOffset);
  return buf;
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

export function decodeV5ExtBlobEntry(buf: Buffer, off: number): V5ExtBlobEntry {
  checkRange(buf, off, V5_EXT_BLOB_ENTRY_SIZE, 'v5 extended blob table entry');
  const w = 'v5 extended blob table entry';
  return {
    chunkCount: buf.readUInt32LE(off),
    features: buf.readUInt32LE(off + 4),
    uncompressedSize: readU64(buf, off + 8, w),
    compressedSize: readU64(buf, off + 16, w),
  };
}

export function encodeV5ExtBlobEntry(e: V5ExtBlobEntry): Buffer {
  const buf = Buffer.alloc(V5_EXT_BLOB_ENTRY_SIZE);
  buf.writeUInt32LE(e.chunkCount, 0);
  buf.writeUInt32LE(e.features, 4);
  writeU64(buf, 8, e.uncompressedSize);
  writeU64(buf, 16, e.compressedSize);
  return buf;
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
  const buf = Buffer.alloc(V5_INODE_SIZE);
  i.digest.copy(buf, 0);
  writeU64(buf, 32, i.parent);
  writeU64(buf, 40, i.ino);
  buf.writeUInt32LE(i.uid, 48);
  buf.writeUInt32LE(i.gid, 52);
  buf.writeUInt32LE(i.projid, 56);
  buf.writeUInt32LE(i.mode, 60);
  writeU64(buf, 64, i.size);
  writeU64(buf, 72, i.blocks);
  writeU64(buf, 80, i.flags);
  buf.writeUInt32LE(i.nlink, 88);
  buf.writeUInt32LE(i.childIndex, 92);
  buf.writeUInt32LE(i.childCount, 96);
  buf.writeUInt16LE(i.nameSize, 100);
  buf.writeUInt16LE(i.symlinkSize, 102);
  buf.writeUInt32LE(i.rdev, 104);
  buf.writeUInt32LE(i.mtimeNsec, 108);
  writeU64(buf, 112, i.mtime);
  return buf;
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
  const buf = Buffer.alloc(V5_CHUNK_INFO_SIZE);
  c.blockId.copy(buf, 0);
  buf.writeUInt32LE(c.blobIndex, 32);
  buf.writeUInt32LE(c.flags, 36);
  buf.writeUInt32LE(c.compressedSize, 40);
  buf.writeUInt32LE(c.uncompressedSize, 44);
  writeU64(buf, 48, c.compressedOffset);
  writeU64(buf, 56, c.uncompressedOffset);
  writeU64(buf, 64, c.fileOffset);
  buf.writeUInt32LE(c.index, 72);
  buf.writeUInt32LE(c.crc32, 76);
  return buf;
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
