// Enumerations, flag bits, limits and byte helpers shared by the v5 and v6 layouts
// (docs/format.md §1). Bytes only: nothing here does I/O or knows about inodes.
// Every reader of an on-disk integer goes through these helpers so that a field
// beyond the buffer is a RafsFormatError, never a RangeError.
import { RafsFormatError } from '../../errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../../util/file-mode.js';
import type { Compressor, Digester } from '../../storage/types.js';

/** `RafsSuperFlags` bits (v5 `s_flags`, v6 extended superblock `s_flags`). */
export const RafsSuperFlags = {
  COMPRESSION_NONE: 0x1,
  COMPRESSION_LZ4: 0x2,
  HASH_BLAKE3: 0x4,
  HASH_SHA256: 0x8,
  EXPLICIT_UID_GID: 0x10,
  HAS_XATTR: 0x20,
  COMPRESSION_GZIP: 0x40,
  COMPRESSION_ZSTD: 0x80,
  INLINED_CHUNK_DIGEST: 0x100,
  TARTFS_MODE: 0x200,
  ENCRYPTION_NONE: 0x0100_0000,
  ENCRYPTION_ASE_128_XTS: 0x0200_0000,
} as const;

/** Every RafsSuperFlags bit upstream (2.2 or HEAD) knows; others make `from_bits` fail. */
export const KNOWN_SUPER_FLAGS = 0x3ff | 0x0100_0000 | 0x0200_0000;

export { BlobFeatures } from '../../storage/types.js';

/** Low 16 BlobFeatures bits upstream HEAD knows; an unknown low bit is rejected. */
export const KNOWN_LOW_BLOB_FEATURES = 0xfff;

/** Chunk flags (v5 chunk info, v6 chunk table). */
export const ChunkFlags = {
  COMPRESSED: 0x1,
  HOLECHUNK: 0x2,
  ENCRYPTED: 0x4,
  BATCH: 0x8,
  HAS_CRC32: 0x10,
} as const;

/** RAFS v5 inode flags (`i_flags`). */
export const V5InodeFlags = {
  SYMLINK: 0x1,
  HARDLINK: 0x2,
  XATTR: 0x4,
  HAS_HOLE: 0x8,
} as const;

/** File type bits of st_mode, for the layouts' callers. */
export { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK };

/** True for the seven file types a filesystem may hold. */
export function isValidFileType(mode: number): boolean {
  switch (mode & S_IFMT) {
    case S_IFSOCK:
    case S_IFLNK:
    case S_IFREG:
    case S_IFBLK:
    case S_IFDIR:
    case S_IFCHR:
    case S_IFIFO:
      return true;
    default:
      return false;
  }
}

/** Limits and constants of docs/format.md §1.6. */
export const RAFS_DEFAULT_CHUNK_SIZE = 0x100000;
export const RAFS_MIN_CHUNK_SIZE = 0x1000;
export const RAFS_MAX_CHUNK_SIZE = 0x1000000;
export const RAFS_MAX_CHUNKS_PER_BLOB = 1 << 24;
export const RAFS_MAX_NAME = 255;
export const RAFS_MAX_XATTR_NAME = 255;
export const RAFS_MAX_XATTR_VALUE = 0x10000;
export const RAFS_MAX_METADATA_SIZE = 0x8000_0000;
export const RAFS_DIGEST_SIZE = 32;
/** Upstream's default FUSE attr/entry timeout in seconds (`RAFS_DEFAULT_ATTR_TIMEOUT`). */
export const RAFS_DEFAULT_TIMEOUT_SECS = 2 ** 32;

/** Compressors by numeric id (v6 blob table `compression_algo`, `ci_compressor`). */
const COMPRESSOR_BY_ID: readonly Compressor[] = ['none', 'lz4_block', 'gzip', 'zstd'];
/** Digesters by numeric id (v6 blob table `digest_algo`). */
const DIGESTER_BY_ID: readonly Digester[] = ['blake3', 'sha256'];

export function compressorFromId(id: number, where: string): Compressor {
  const c = COMPRESSOR_BY_ID[id];
  if (c === undefined) throw corrupt(`failed to decode ${where}: unknown compressor id ${id}`);
  return c;
}

export function compressorToId(c: Compressor): number {
  return COMPRESSOR_BY_ID.indexOf(c);
}

export function digesterFromId(id: number, where: string): Digester {
  const d = DIGESTER_BY_ID[id];
  if (d === undefined) throw corrupt(`failed to decode ${where}: unknown digester id ${id}`);
  return d;
}

export function digesterToId(d: Digester): number {
  return DIGESTER_BY_ID.indexOf(d);
}

const COMPRESSOR_FLAGS: readonly [number, Compressor][] = [
  [RafsSuperFlags.COMPRESSION_NONE, 'none'],
  [RafsSuperFlags.COMPRESSION_LZ4, 'lz4_block'],
  [RafsSuperFlags.COMPRESSION_GZIP, 'gzip'],
  [RafsSuperFlags.COMPRESSION_ZSTD, 'zstd'],
];
const COMPRESSOR_MASK = 0x1 | 0x2 | 0x40 | 0x80;
const DIGESTER_MASK = 0x4 | 0x8;

/**
 * The chunk compressor the superblock flags name. v5 takes the first of NONE, LZ4, GZIP,
 * ZSTD that is set and defaults to lz4_block; v6 (`strict`) requires exactly one bit.
 */
export function compressorFromFlags(flags: number, strict: boolean): Compressor {
  if (strict && popcount(flags & COMPRESSOR_MASK) !== 1) {
    throw badSuper(`compressor flags 0x${(flags & COMPRESSOR_MASK).toString(16)} must name exactly one algorithm`);
  }
  for (const [bit, name] of COMPRESSOR_FLAGS) if (flags & bit) return name;
  return 'lz4_block';
}

/** The digester the superblock flags name: BLAKE3 first, then SHA256, default blake3. */
export function digesterFromFlags(flags: number, strict: boolean): Digester {
  if (strict && popcount(flags & DIGESTER_MASK) !== 1) {
    throw badSuper(`digester flags 0x${(flags & DIGESTER_MASK).toString(16)} must name exactly one algorithm`);
  }
  if (flags & RafsSuperFlags.HASH_BLAKE3) return 'blake3';
  if (flags & RafsSuperFlags.HASH_SHA256) return 'sha256';
  return 'blake3';
}

/** The superblock flag bit for a compressor. */
export function compressorFlag(c: Compressor): number {
  const hit = COMPRESSOR_FLAGS.find(([, name]) => name === c);
  return hit ? hit[0] : RafsSuperFlags.COMPRESSION_LZ4;
}

/** The superblock flag bit for a digester. */
export function digesterFlag(d: Digester): number {
  return d === 'sha256' ? RafsSuperFlags.HASH_SHA256 : RafsSuperFlags.HASH_BLAKE3;
}

/** True for a chunk size upstream accepts: a power of two in [4 KiB, 16 MiB]. */
export function isValidChunkSize(size: number): boolean {
  return size >= RAFS_MIN_CHUNK_SIZE && size <= RAFS_MAX_CHUNK_SIZE && isPowerOfTwo(size);
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export function popcount(n: number): number {
  let count = 0;
  for (let v = n >>> 0; v !== 0; v &= v - 1) count++;
  // Bits above 32 (flags are u64) are counted separately.
  for (let hi = Math.floor(n / 2 ** 32); hi > 0; hi = Math.floor(hi / 2)) count += hi & 1;
  return count;
}

export function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

export function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** A RafsFormatError for corrupt metadata. */
export function corrupt(message: string): RafsFormatError {
  return new RafsFormatError('ERR_RAFS_CORRUPT', message);
}

/** A RafsFormatError for a superblock that fails validation. */
export function badSuper(message: string): RafsFormatError {
  return new RafsFormatError('ERR_RAFS_BAD_SUPERBLOCK', `failed to validate superblock: ${message}`);
}

/** Throws ERR_RAFS_TRUNCATED unless `[off, off + len)` lies inside `buf`. */
export function checkRange(buf: Buffer, off: number, len: number, what: string): void {
  if (!(off >= 0 && len >= 0 && off + len <= buf.length)) {
    throw new RafsFormatError(
      'ERR_RAFS_TRUNCATED',
      `failed to read ${what}: ${len} bytes at offset ${off} are beyond the end (${buf.length} bytes)`,
    );
  }
}

/** A u64 field as a number; values above 2^53 cannot be offsets or sizes and are corrupt. */
export function readU64(buf: Buffer, off: number, what: string): number {
  const lo = buf.readUInt32LE(off);
  const hi = buf.readUInt32LE(off + 4);
  if (hi > 0x1fffff) throw corrupt(`failed to decode ${what}: value at offset ${off} exceeds 2^53`);
  return hi * 2 ** 32 + lo;
}

export function writeU64(buf: Buffer, off: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 field out of range: ${value}`);
  buf.writeUInt32LE(value % 2 ** 32, off);
  buf.writeUInt32LE(Math.floor(value / 2 ** 32), off + 4);
}

/** A fixed-size byte field padded with NULs, decoded up to the first NUL (latin1: lossless). */
export function readPaddedString(buf: Buffer, off: number, len: number): string {
  const field = buf.subarray(off, off + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('latin1');
}

export function writePaddedString(buf: Buffer, off: number, len: number, value: string): void {
  const bytes = Buffer.from(value, 'latin1');
  if (bytes.length > len) throw new RangeError(`string field longer than ${len} bytes: ${value}`);
  bytes.copy(buf, off);
}

/** A copy of `len` bytes: decoded objects never alias the bootstrap buffer. */
export function copyBytes(buf: Buffer, off: number, len: number): Buffer {
  return Buffer.from(buf.subarray(off, off + len));
}

/**
 * True for a blob id that is safe as a file name in a blob directory: printable ASCII,
 * no `/`, not `.` or `..`. Upstream writes 64 lower-case hex characters.
 */
export function isSafeBlobId(id: string): boolean {
  if (id.length === 0 || id.length > 1024 || id === '.' || id === '..') return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x2f) return false;
  }
  return true;
}
