// RAFS v6 on-disk structures (docs/format.md §4): the EROFS superblock, nydus' extended
// superblock, device slots, blob table entries, compact/extended inodes, dirents and
// directory blocks, inline xattr headers and entries, chunk indexes.
// Bytes only; every fixed struct is a field table (struct.ts) driving its encoder (the
// builder's) and decoder, but for the read path's per-request decoders, hand-written and
// held to their tables by tests. The chunk index packs bit fields and is coded by hand.
import { RafsFormatError } from '../../errors.js';
import {
  badSuper,
  checkRange,
  corrupt,
  isValidChunkSize,
  KNOWN_SUPER_FLAGS,
  RAFS_MAX_NAME,
  RAFS_MAX_METADATA_SIZE,
  readU64,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
} from './common.js';
import { defineStruct } from './struct.js';
import { V5_CHUNK_INFO_SIZE } from './v5.js';

export const EROFS_SUPER_MAGIC = 0xe0f5_e1e2;
export const EROFS_SUPER_OFFSET = 1024;
export const EROFS_SUPER_SIZE = 128;
export const V6_EXT_SUPER_OFFSET = 1152;
export const V6_EXT_SUPER_SIZE = 256;
export const V6_DEVTABLE_OFFSET = 1408;
export const V6_DEVICE_SLOT_SIZE = 128;
export const V6_BLOB_ENTRY_SIZE = 256;
export const EROFS_BLOCK_SIZE = 4096;
export const EROFS_BLKSZBITS = 12;
export const EROFS_INODE_SLOT_SIZE = 32;
export const V6_INODE_COMPACT_SIZE = 32;
export const V6_INODE_EXTENDED_SIZE = 64;
export const V6_DIRENT_SIZE = 12;
export const V6_XATTR_IBODY_HEADER_SIZE = 12;
export const V6_XATTR_ENTRY_SIZE = 4;
export const V6_CHUNK_INDEX_SIZE = 8;
/** A chunk index with this block address is a hole (EROFS `EROFS_NULL_ADDR`). */
export const V6_NULL_BLKADDR = 0xffff_ffff;
/** Blob id length nydus requires in v6 blob table entries and device slots. */
export const V6_BLOB_ID_LEN = 64;

export const ErofsFeatureCompat = { SB_CHKSUM: 0x1, MTIME: 0x2, RAFS_V6: 0x4000_0000 } as const;
export const ErofsFeatureIncompat = { CHUNKED_FILE: 0x4, DEVICE_TABLE: 0x8 } as const;

/** Inode data layouts (`i_format` bits 1–3). */
export const ErofsLayout = {
  FLAT_PLAIN: 0,
  COMPRESSED_FULL: 1,
  FLAT_INLINE: 2,
  COMPRESSED_COMPACT: 3,
  CHUNK_BASED: 4,
} as const;

/** Chunk format bits (low 16 bits of `i_u` for chunk-based inodes). */
export const ErofsChunkFormat = { BLKBITS_MASK: 0x1f, INDEXES: 0x20, BIT48: 0x40 } as const;

/** Dirent `file_type` values. */
export const ErofsFileType = {
  UNKNOWN: 0,
  REG_FILE: 1,
  DIR: 2,
  CHRDEV: 3,
  BLKDEV: 4,
  FIFO: 5,
  SOCK: 6,
  SYMLINK: 7,
} as const;

const MODE_BY_FILE_TYPE = [0, S_IFREG, S_IFDIR, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, S_IFLNK];

/** The S_IFMT bits a dirent's file type stands for (0 for unknown). */
export function modeTypeFromFileType(fileType: number): number {
  return MODE_BY_FILE_TYPE[fileType] ?? 0;
}

/** The dirent file type of a mode. */
export function fileTypeFromMode(mode: number): number {
  const t = MODE_BY_FILE_TYPE.indexOf(mode & S_IFMT);
  return t > 0 ? t : ErofsFileType.UNKNOWN;
}

/** The EROFS superblock (128 bytes at offset 1024; 38 trailing reserved bytes). */
export interface V6Superblock {
  magic: number;
  checksum: number;
  featureCompat: number;
  blkszbits: number;
  extslots: number;
  rootNid: number;
  inos: number;
  buildTime: number;
  buildTimeNsec: number;
  blocks: number;
  metaBlkaddr: number;
  xattrBlkaddr: number;
  uuid: Buffer;
  volumeName: Buffer;
  featureIncompat: number;
  /** Union: lz4 max distance / available compression algorithms; 0 in RAFS. */
  u1: number;
  extraDevices: number;
  devtSlotoff: number;
}

/** The EROFS superblock's field table. */
export const V6SuperblockStruct = defineStruct<V6Superblock>({
  name: 'EROFS superblock',
  size: EROFS_SUPER_SIZE,
  fields: {
    magic: [0, 'u32'],
    checksum: [4, 'u32'],
    featureCompat: [8, 'u32'],
    blkszbits: [12, 'u8'],
    extslots: [13, 'u8'],
    rootNid: [14, 'u16'],
    inos: [16, 'u64'],
    buildTime: [24, 'u64'],
    buildTimeNsec: [32, 'u32'],
    blocks: [36, 'u32'],
    metaBlkaddr: [40, 'u32'],
    xattrBlkaddr: [44, 'u32'],
    uuid: [48, 'bytes:16'],
    volumeName: [64, 'bytes:16'],
    featureIncompat: [80, 'u32'],
    u1: [84, 'u16'],
    extraDevices: [86, 'u16'],
    devtSlotoff: [88, 'u16'],
  },
});

/** Decodes the EROFS superblock at `off` (1024 in an image). */
export function decodeV6Superblock(buf: Buffer, off = EROFS_SUPER_OFFSET): V6Superblock {
  return V6SuperblockStruct.decode(buf, off);
}

export function encodeV6Superblock(sb: V6Superblock): Buffer {
  return V6SuperblockStruct.encode(sb);
}

/** Upstream's checks of the EROFS superblock of a RAFS v6 image (docs/format.md §4.2). */
export function validateV6Superblock(sb: V6Superblock, fileSize: number): void {
  if (sb.magic !== EROFS_SUPER_MAGIC) throw badSuper(`EROFS magic 0x${sb.magic.toString(16)} is wrong`);
  if (fileSize < EROFS_BLOCK_SIZE || fileSize % EROFS_BLOCK_SIZE !== 0 || fileSize > RAFS_MAX_METADATA_SIZE) {
    throw badSuper(`bootstrap size ${fileSize} is not a multiple of ${EROFS_BLOCK_SIZE}`);
  }
  if (sb.blkszbits !== EROFS_BLKSZBITS) {
    // HEAD also allows 9 (tarfs mode, 512-byte blocks); nothing produces it for nydusd.
    const code = sb.blkszbits === 9 ? 'ERR_RAFS_UNSUPPORTED' : 'ERR_RAFS_BAD_SUPERBLOCK';
    throw new RafsFormatError(code, `failed to validate superblock: block size bits ${sb.blkszbits}`);
  }
  if (sb.metaBlkaddr * EROFS_BLOCK_SIZE > fileSize) throw badSuper(`meta_blkaddr ${sb.metaBlkaddr} beyond the bootstrap`);
  if (sb.checksum !== 0) throw badSuper(`checksum 0x${sb.checksum.toString(16)} must be 0`);
  if (sb.extslots !== 0) throw badSuper(`extslots ${sb.extslots} must be 0`);
  if (sb.inos === 0) throw badSuper('inode count is 0');
  if (sb.u1 !== 0) throw badSuper(`union field ${sb.u1} must be 0`);
  if (sb.xattrBlkaddr !== 0) throw badSuper('shared xattrs are not supported');
  if (sb.extraDevices === 0 && sb.blocks !== 0 && sb.blocks !== 4096) {
    throw badSuper(`blocks ${sb.blocks} with no extra devices`);
  }
  if (sb.devtSlotoff * V6_DEVICE_SLOT_SIZE !== V6_DEVTABLE_OFFSET) {
    throw badSuper(`device table slot offset ${sb.devtSlotoff} is not ${V6_DEVTABLE_OFFSET / V6_DEVICE_SLOT_SIZE}`);
  }
  if (V6_DEVTABLE_OFFSET + sb.extraDevices * V6_DEVICE_SLOT_SIZE > fileSize) {
    throw badSuper(`device table of ${sb.extraDevices} slots beyond the bootstrap`);
  }
  if (sb.featureIncompat !== (ErofsFeatureIncompat.CHUNKED_FILE | ErofsFeatureIncompat.DEVICE_TABLE)) {
    throw badSuper(`incompatible features 0x${sb.featureIncompat.toString(16)} must be 0xc`);
  }
  if ((sb.featureCompat & ErofsFeatureCompat.RAFS_V6) === 0) throw badSuper('compat feature RAFS_V6 is missing');
}

/** Nydus' extended superblock (256 bytes at offset 1152). */
export interface V6SuperblockExt {
  flags: number;
  blobTableOffset: number;
  blobTableSize: number;
  chunkSize: number;
  chunkTableOffset: number;
  chunkTableSize: number;
  prefetchTableOffset: number;
  prefetchTableSize: number;
}

/** The extended superblock's field table (bytes 52..256 reserved). */
export const V6SuperblockExtStruct = defineStruct<V6SuperblockExt>({
  name: 'RAFS v6 extended superblock',
  size: V6_EXT_SUPER_SIZE,
  fields: {
    flags: [0, 'u64'],
    blobTableOffset: [8, 'u64'],
    blobTableSize: [16, 'u32'],
    chunkSize: [20, 'u32'],
    chunkTableOffset: [24, 'u64'],
    chunkTableSize: [32, 'u64'],
    prefetchTableOffset: [40, 'u64'],
    prefetchTableSize: [48, 'u32'],
  },
});

export function decodeV6SuperblockExt(buf: Buffer, off = V6_EXT_SUPER_OFFSET): V6SuperblockExt {
  return V6SuperblockExtStruct.decode(buf, off);
}

export function encodeV6SuperblockExt(e: V6SuperblockExt): Buffer {
  return V6SuperblockExtStruct.encode(e);
}

/**
 * Upstream's checks of the extended superblock (`RafsV6SuperBlockExt::validate`): flags,
 * chunk size, and blob/chunk/prefetch tables inside the file, after the device table,
 * aligned and not overlapping.
 */
export function validateV6SuperblockExt(e: V6SuperblockExt, sb: V6Superblock, fileSize: number): void {
  if (e.flags - (e.flags % 2 ** 32) !== 0 || (e.flags & ~KNOWN_SUPER_FLAGS) !== 0) {
    throw badSuper(`unknown flags in 0x${e.flags.toString(16)}`);
  }
  if (!isValidChunkSize(e.chunkSize)) throw badSuper(`chunk size 0x${e.chunkSize.toString(16)} is invalid`);
  const devEnd = V6_DEVTABLE_OFFSET + sb.extraDevices * V6_DEVICE_SLOT_SIZE;
  const blob = { start: e.blobTableOffset, end: e.blobTableOffset + e.blobTableSize };
  if (
    blob.start % EROFS_BLOCK_SIZE !== 0 ||
    blob.start < EROFS_BLOCK_SIZE ||
    blob.start < devEnd ||
    e.blobTableSize % V6_BLOB_ENTRY_SIZE !== 0 ||
    blob.end > fileSize
  ) {
    throw badSuper(`blob table [${blob.start}, +${e.blobTableSize}) is invalid`);
  }
  const ranges = [blob];
  if (e.chunkTableSize > 0) {
    const chunk = { start: e.chunkTableOffset, end: e.chunkTableOffset + e.chunkTableSize };
    if (
      chunk.start % EROFS_BLOCK_SIZE !== 0 ||
      chunk.start < EROFS_BLOCK_SIZE ||
      chunk.start < devEnd ||
      e.chunkTableSize % V5_CHUNK_INFO_SIZE !== 0 ||
      chunk.end > fileSize ||
      (chunk.start < blob.end && blob.start < chunk.end)
    ) {
      throw badSuper(`chunk table [${chunk.start}, +${e.chunkTableSize}) is invalid`);
    }
    ranges.push(chunk);
  }
  // Legacy images carry a size with offset 0 for "no table".
  if (e.prefetchTableSize > 0 && e.prefetchTableOffset !== 0) {
    const pre = { start: e.prefetchTableOffset, end: e.prefetchTableOffset + e.prefetchTableSize };
    if (
      pre.start < EROFS_BLOCK_SIZE ||
      pre.start < devEnd ||
      e.prefetchTableSize % 4 !== 0 ||
      pre.end > fileSize ||
      ranges.some((r) => pre.start < r.end && r.start < pre.end)
    ) {
      throw badSuper(`prefetch table [${pre.start}, +${e.prefetchTableSize}) is invalid`);
    }
  }
}

/** An EROFS device slot (128 bytes); slot `k` is blob `k`, device id `k + 1`. */
export interface V6Device {
  blobId: string;
  blocks: number;
  mappedBlkaddr: number;
}

/** The device slot's field table. */
export const V6DeviceStruct = defineStruct<V6Device>({
  name: 'EROFS device slot',
  size: V6_DEVICE_SLOT_SIZE,
  fields: {
    blobId: [0, `latin1:${V6_BLOB_ID_LEN}`],
    blocks: [64, 'u32'],
    mappedBlkaddr: [68, 'u32'],
  },
});

export function decodeV6Device(buf: Buffer, off: number): V6Device {
  return V6DeviceStruct.decode(buf, off);
}

export function encodeV6Device(d: V6Device): Buffer {
  return V6DeviceStruct.encode(d);
}

/** A v6 blob table entry (256 bytes). */
export interface V6BlobEntry {
  blobId: string;
  blobIndex: number;
  chunkSize: number;
  chunkCount: number;
  compressionAlgo: number;
  digestAlgo: number;
  features: number;
  compressedSize: number;
  uncompressedSize: number;
  blobTocSize: number;
  ciCompressor: number;
  ciOffset: number;
  ciCompressedSize: number;
  ciUncompressedSize: number;
  blobTocDigest: Buffer;
  blobMetaDigest: Buffer;
  blobMetaSize: number;
  /** HEAD: second half of the cipher IV (8 bytes); zeros otherwise. */
  cipherIv: Buffer;
  /** HEAD: cipher algorithm (0 none). */
  cipherAlgo: number;
}

/** The blob table entry's field table. */
export const V6BlobEntryStruct = defineStruct<V6BlobEntry>({
  name: 'v6 blob table entry',
  size: V6_BLOB_ENTRY_SIZE,
  where: (off) => `v6 blob table entry at offset ${off}`,
  fields: {
    blobId: [0, `latin1:${V6_BLOB_ID_LEN}`],
    blobIndex: [64, 'u32'],
    chunkSize: [68, 'u32'],
    chunkCount: [72, 'u32'],
    compressionAlgo: [76, 'u32'],
    digestAlgo: [80, 'u32'],
    features: [84, 'u32'],
    compressedSize: [88, 'u64'],
    uncompressedSize: [96, 'u64'],
    blobTocSize: [104, 'u32'],
    ciCompressor: [108, 'u32'],
    ciOffset: [112, 'u64'],
    ciCompressedSize: [120, 'u64'],
    ciUncompressedSize: [128, 'u64'],
    blobTocDigest: [136, 'bytes:32'],
    blobMetaDigest: [168, 'bytes:32'],
    blobMetaSize: [200, 'u64'],
    cipherIv: [208, 'bytes:8'],
    cipherAlgo: [216, 'u32'],
  },
});

export function decodeV6BlobEntry(buf: Buffer, off: number): V6BlobEntry {
  return V6BlobEntryStruct.decode(buf, off);
}

export function encodeV6BlobEntry(b: V6BlobEntry): Buffer {
  return V6BlobEntryStruct.encode(b);
}

/**
 * A compact (32 B) or extended (64 B) inode, as one shape. Compact inodes have 16-bit
 * nlink/uid/gid, a 32-bit size, no nsec, and `mtime` relative to the superblock's
 * build time (newer EROFS; nydus writes 0).
 */
export interface V6Inode {
  /** Bit 0: extended; bits 1–3: data layout. */
  format: number;
  xattrIcount: number;
  mode: number;
  nlink: number;
  size: number;
  /** Union: first data block, rdev, or chunk format. */
  u: number;
  ino: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
}

export function isExtendedInode(format: number): boolean {
  return (format & 1) === 1;
}

export function inodeLayout(format: number): number {
  return (format >> 1) & 0x7;
}

/** The compact inode's field table (it stores no nsec; bytes 28..32 reserved). */
export const V6InodeCompactStruct = defineStruct<Omit<V6Inode, 'mtimeNsec'>>({
  name: 'v6 compact inode',
  size: V6_INODE_COMPACT_SIZE,
  fields: {
    format: [0, 'u16'],
    xattrIcount: [2, 'u16'],
    mode: [4, 'u16'],
    nlink: [6, 'u16'],
    size: [8, 'u32'],
    mtime: [12, 'u32'],
    u: [16, 'u32'],
    ino: [20, 'u32'],
    uid: [24, 'u16'],
    gid: [26, 'u16'],
  },
});

/** The extended inode's field table (bytes 48..64 reserved). */
export const V6InodeExtendedStruct = defineStruct<V6Inode>({
  name: 'v6 extended inode',
  size: V6_INODE_EXTENDED_SIZE,
  where: (off) => `v6 inode at offset ${off}`,
  fields: {
    format: [0, 'u16'],
    xattrIcount: [2, 'u16'],
    mode: [4, 'u16'],
    size: [8, 'u64'],
    u: [16, 'u32'],
    ino: [20, 'u32'],
    uid: [24, 'u32'],
    gid: [28, 'u32'],
    mtime: [32, 'u64'],
    mtimeNsec: [40, 'u32'],
    nlink: [44, 'u32'],
  },
});

// The inode decoders are hand-written rather than table-driven: they run on every lookup
// and getattr (bench/rafs/struct-codec.bench.ts).
export function decodeV6InodeCompact(buf: Buffer, off: number): V6Inode {
  checkRange(buf, off, V6_INODE_COMPACT_SIZE, 'v6 compact inode');
  return {
    format: buf.readUInt16LE(off),
    xattrIcount: buf.readUInt16LE(off + 2),
    mode: buf.readUInt16LE(off + 4),
    nlink: buf.readUInt16LE(off + 6),
    size: buf.readUInt32LE(off + 8),
    mtime: buf.readUInt32LE(off + 12),
    u: buf.readUInt32LE(off + 16),
    ino: buf.readUInt32LE(off + 20),
    uid: buf.readUInt16LE(off + 24),
    gid: buf.readUInt16LE(off + 26),
    mtimeNsec: 0,
  };
}

export function decodeV6InodeExtended(buf: Buffer, off: number): V6Inode {
  checkRange(buf, off, V6_INODE_EXTENDED_SIZE, 'v6 extended inode');
  const w = `v6 inode at offset ${off}`;
  return {
    format: buf.readUInt16LE(off),
    xattrIcount: buf.readUInt16LE(off + 2),
    mode: buf.readUInt16LE(off + 4),
    size: readU64(buf, off + 8, w),
    u: buf.readUInt32LE(off + 16),
    ino: buf.readUInt32LE(off + 20),
    uid: buf.readUInt32LE(off + 24),
    gid: buf.readUInt32LE(off + 28),
    mtime: readU64(buf, off + 32, w),
    mtimeNsec: buf.readUInt32LE(off + 40),
    nlink: buf.readUInt32LE(off + 44),
  };
}

/** Decodes the inode at `off`, compact or extended by its format bit. */
export function decodeV6Inode(buf: Buffer, off: number): V6Inode {
  checkRange(buf, off, 2, 'v6 inode');
  return isExtendedInode(buf.readUInt16LE(off)) ? decodeV6InodeExtended(buf, off) : decodeV6InodeCompact(buf, off);
}

export function encodeV6InodeCompact(i: V6Inode): Buffer {
  return V6InodeCompactStruct.encode(i);
}

export function encodeV6InodeExtended(i: V6Inode): Buffer {
  return V6InodeExtendedStruct.encode(i);
}

/** Encodes compact or extended by the format bit. */
export function encodeV6Inode(i: V6Inode): Buffer {
  return isExtendedInode(i.format) ? encodeV6InodeExtended(i) : encodeV6InodeCompact(i);
}

/** A directory entry (12 bytes). */
export interface V6Dirent {
  nid: number;
  nameoff: number;
  fileType: number;
}

/** The dirent's field table (byte 11 reserved). */
export const V6DirentStruct = defineStruct<V6Dirent>({
  name: 'v6 dirent',
  size: V6_DIRENT_SIZE,
  fields: {
    nid: [0, 'u64'],
    nameoff: [8, 'u16'],
    fileType: [10, 'u8'],
  },
});

/** One dirent; the read path reads directory blocks through `v6DirBlock*` instead. */
export function decodeV6Dirent(buf: Buffer, off: number): V6Dirent {
  return V6DirentStruct.decode(buf, off);
}

export function encodeV6Dirent(d: V6Dirent): Buffer {
  return V6DirentStruct.encode(d);
}

/** One entry of a directory block, its name a view into the block. */
export interface V6DirBlockEntry {
  nid: number;
  fileType: number;
  name: Buffer;
}

/**
 * Number of entries in a directory block (`block`: the block's used bytes, 4096 or the
 * directory's tail), from the first name offset as the kernel reads it: `nameoff[0] / 12`.
 */
export function v6DirBlockEntries(block: Buffer, where: string): number {
  if (block.length < V6_DIRENT_SIZE) throw corrupt(`failed to read ${where}: block of ${block.length} bytes`);
  const first = block.readUInt16LE(8);
  if (first < V6_DIRENT_SIZE || first >= block.length) {
    throw corrupt(`failed to read ${where}: first name offset ${first} is invalid`);
  }
  return Math.floor(first / V6_DIRENT_SIZE);
}

/**
 * `[start, end)` of entry `i`'s name in a block of `n` entries: up to the next entry's
 * name offset, the last one to the first NUL or the block end. Checked: non-empty, at
 * most 255 bytes, after the dirents, inside the block.
 */
export function v6DirBlockName(block: Buffer, i: number, n: number, where: string): [number, number] {
  const at = i * V6_DIRENT_SIZE;
  const nameoff = block.readUInt16LE(at + 8);
  let end: number;
  if (i + 1 < n) {
    end = block.readUInt16LE(at + V6_DIRENT_SIZE + 8);
  } else {
    const nul = block.indexOf(0, nameoff);
    end = nul < 0 ? block.length : nul;
  }
  if (nameoff < n * V6_DIRENT_SIZE || end <= nameoff || end > block.length || end - nameoff > RAFS_MAX_NAME) {
    throw corrupt(`failed to read ${where}: entry ${i} has a bad name range [${nameoff}, ${end})`);
  }
  return [nameoff, end];
}

/** The nid of entry `i` of a directory block. */
export function v6DirBlockNid(block: Buffer, i: number, where: string): number {
  return readU64(block, i * V6_DIRENT_SIZE, where);
}

/** Parses one directory block into its entries (names are views into `block`). */
export function decodeV6DirBlock(block: Buffer, where: string): V6DirBlockEntry[] {
  const n = v6DirBlockEntries(block, where);
  const out: V6DirBlockEntry[] = [];
  for (let i = 0; i < n; i++) {
    const [s, e] = v6DirBlockName(block, i, n, where);
    out.push({ nid: v6DirBlockNid(block, i, where), fileType: block.readUInt8(i * V6_DIRENT_SIZE + 10), name: block.subarray(s, e) });
  }
  return out;
}

/** Encodes entries (already sorted, fitting one block) as a directory block's used bytes. */
export function encodeV6DirBlock(entries: readonly { nid: number; fileType: number; name: Buffer }[]): Buffer {
  const head = entries.length * V6_DIRENT_SIZE;
  const size = head + entries.reduce((s, e) => s + e.name.length, 0);
  if (entries.length === 0 || size > EROFS_BLOCK_SIZE) throw new RangeError(`directory block of ${size} bytes`);
  const buf = Buffer.alloc(size);
  let nameoff = head;
  entries.forEach((e, i) => {
    encodeV6Dirent({ nid: e.nid, nameoff, fileType: e.fileType }).copy(buf, i * V6_DIRENT_SIZE);
    e.name.copy(buf, nameoff);
    nameoff += e.name.length;
  });
  return buf;
}

/** The inline xattr area header (12 bytes). */
export interface V6XattrIbodyHeader {
  /** `h_reserved`; newer EROFS: name bloom filter (compat XATTR_FILTER only). */
  nameFilter: number;
  sharedCount: number;
}

/** The inline xattr header's field table (bytes 5..12 reserved). */
export const V6XattrIbodyHeaderStruct = defineStruct<V6XattrIbodyHeader>({
  name: 'v6 xattr header',
  size: V6_XATTR_IBODY_HEADER_SIZE,
  fields: {
    nameFilter: [0, 'u32'],
    sharedCount: [4, 'u8'],
  },
});

// The xattr decoders are hand-written rather than table-driven: getxattr and listxattr
// run them per request (bench/rafs/struct-codec.bench.ts).
export function decodeV6XattrIbodyHeader(buf: Buffer, off: number): V6XattrIbodyHeader {
  checkRange(buf, off, V6_XATTR_IBODY_HEADER_SIZE, 'v6 xattr header');
  return { nameFilter: buf.readUInt32LE(off), sharedCount: buf.readUInt8(off + 4) };
}

export function encodeV6XattrIbodyHeader(h: V6XattrIbodyHeader): Buffer {
  return V6XattrIbodyHeaderStruct.encode(h);
}

/** An inline xattr entry header (4 bytes), followed by name suffix and value, padded to 4. */
export interface V6XattrEntry {
  nameLen: number;
  nameIndex: number;
  valueSize: number;
}

/** The inline xattr entry header's field table. */
export const V6XattrEntryStruct = defineStruct<V6XattrEntry>({
  name: 'v6 xattr entry',
  size: V6_XATTR_ENTRY_SIZE,
  fields: {
    nameLen: [0, 'u8'],
    nameIndex: [1, 'u8'],
    valueSize: [2, 'u16'],
  },
});

export function decodeV6XattrEntry(buf: Buffer, off: number): V6XattrEntry {
  checkRange(buf, off, V6_XATTR_ENTRY_SIZE, 'v6 xattr entry');
  return { nameLen: buf.readUInt8(off), nameIndex: buf.readUInt8(off + 1), valueSize: buf.readUInt16LE(off + 2) };
}

export function encodeV6XattrEntry(e: V6XattrEntry): Buffer {
  return V6XattrEntryStruct.encode(e);
}

/** Name prefixes by `e_name_index` (0: the name is stored whole). */
export const V6_XATTR_PREFIXES: readonly string[] = [
  '',
  'user.',
  'system.posix_acl_access',
  'system.posix_acl_default',
  'trusted.',
  'lustre.',
  'security.',
];

/** Bytes of the inline xattr area for `i_xattr_icount`. */
export function v6XattrAreaSize(icount: number): number {
  return icount === 0 ? 0 : V6_XATTR_IBODY_HEADER_SIZE + (icount - 1) * 4;
}

/** `i_xattr_icount` for an inline xattr area of `size` bytes (header included). */
export function v6XattrIcount(size: number): number {
  return size === 0 ? 0 : (size - V6_XATTR_IBODY_HEADER_SIZE) / 4 + 1;
}

/** The (index, suffix) a full xattr name is stored as: the longest known prefix wins. */
export function splitV6XattrName(name: Buffer): { nameIndex: number; suffix: Buffer } {
  let best = 0;
  for (let i = 1; i < V6_XATTR_PREFIXES.length; i++) {
    const p = V6_XATTR_PREFIXES[i];
    if (p.length > V6_XATTR_PREFIXES[best].length && name.length >= p.length && name.toString('latin1', 0, p.length) === p) {
      best = i;
    }
  }
  return { nameIndex: best, suffix: name.subarray(V6_XATTR_PREFIXES[best].length) };
}

/** A chunk index (8 bytes): EROFS device id = blob index + 1, chunk-info index, block address. */
export interface V6ChunkIndex {
  /** EROFS device id (blob index + 1; 0 would be the bootstrap itself). */
  deviceId: number;
  /** 24-bit index into the blob's chunk-info array. */
  ciIndex: number;
  /** `uncompressed_offset / 4096` in the blob; `V6_NULL_BLKADDR` for a hole. */
  blkaddr: number;
}

export function decodeV6ChunkIndex(buf: Buffer, off: number): V6ChunkIndex {
  checkRange(buf, off, V6_CHUNK_INDEX_SIZE, 'v6 chunk index');
  const lo = buf.readUInt16LE(off);
  const hi = buf.readUInt16LE(off + 2);
  return { deviceId: hi & 0xff, ciIndex: ((hi >> 8) << 16) | lo, blkaddr: buf.readUInt32LE(off + 4) };
}

export function encodeV6ChunkIndex(c: V6ChunkIndex): Buffer {
  if (c.ciIndex > 0xffffff || c.deviceId > 0xff) throw new RangeError('chunk index fields out of range');
  const buf = Buffer.alloc(V6_CHUNK_INDEX_SIZE);
  buf.writeUInt16LE(c.ciIndex & 0xffff, 0);
  buf.writeUInt16LE(((c.ciIndex >> 16) << 8) | c.deviceId, 2);
  buf.writeUInt32LE(c.blkaddr, 4);
  return buf;
}
