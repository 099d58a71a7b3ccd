// Chunk codecs: none, raw LZ4 block, zstd (one frame) and gzip (one member), as the
// nydus builder writes them (docs/format.md §1.1). Decoding never allocates more than
// the expected uncompressed size and never returns a buffer of any other length; every
// malformed input becomes ERR_STORAGE_DECOMPRESS. Pure CPU work, synchronous.
import { gunzipSync, gzipSync } from 'node:zlib';
import zstd from 'zstd-napi/binding.js';
import { StorageError } from '../errors.js';
import { loadAddon } from '../util/addon.js';
import type { Compressor } from './types.js';

/** Largest uncompressed chunk any image may hold (docs/format.md §1.6: 16 MiB). */
export const MAX_CHUNK_SIZE = 0x100_0000;
/** zstd level nydus-image uses. */
export const ZSTD_LEVEL = 3;

/** Result of compressing one object with the builder's rule. */
export interface Compressed {
  /** The bytes to store: compressed, or the input itself when compression did not help. */
  data: Buffer;
  /** False when `data` is the raw input ("stored raw": chunk flag cleared, `ci_compressor = 0`). */
  compressed: boolean;
}

// One decompression context reused for every zstd chunk: decoding is synchronous, so
// calls never interleave.
const zstdDctx = new zstd.DCtx();

/** liblz4 through the native addon (src/native/lz4.c): raw blocks between buffers the caller owns. */
interface Lz4Addon {
  /** Bytes written to `dst`, or -1 when `src` is not a valid block or does not fit `dst`. */
  lz4DecodeBlock(src: Uint8Array, dst: Uint8Array): number;
  /** The largest block `size` bytes compress to (LZ4_compressBound); 0 when too large. */
  lz4CompressBound(size: number): number;
  /** Bytes of the block written to `dst` (LZ4_compress_default), or 0 when it does not fit. */
  lz4CompressBlock(src: Uint8Array, dst: Uint8Array): number;
}
let lz4: Lz4Addon | undefined;

function lz4Addon(): Lz4Addon {
  lz4 ??= loadAddon<Lz4Addon>((m) => new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to load liblz4 through the native addon: ${m}`));
  return lz4;
}

function fail(compressor: Compressor, detail: string, cause?: unknown): StorageError {
  return new StorageError('ERR_STORAGE_DECOMPRESS', `failed to decompress ${compressor} chunk: ${detail}`, { cause });
}

function toBuffer(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/**
 * Decodes one stored chunk to exactly `uncompressedSize` bytes. With `out` (at least that
 * long) the bytes land in `out` and its prefix view is returned; otherwise a new buffer is.
 * `none` returns the input itself (or copies it into `out`).
 */
export function decompress(
  compressor: Compressor,
  input: Uint8Array,
  uncompressedSize: number,
  out?: Buffer,
): Buffer {
  if (!Number.isSafeInteger(uncompressedSize) || uncompressedSize < 0 || uncompressedSize > MAX_CHUNK_SIZE) {
    throw fail(compressor, `invalid uncompressed size ${uncompressedSize}`);
  }
  if (out !== undefined && out.length < uncompressedSize) {
    throw new RangeError(`output buffer of ${out.length} bytes is smaller than ${uncompressedSize}`);
  }
  switch (compressor) {
    case 'none':
      return decodeNone(input, uncompressedSize, out);
    case 'lz4_block':
      return decodeLz4(input, uncompressedSize, out);
    case 'zstd':
      return decodeZstd(input, uncompressedSize, out);
    case 'gzip':
      return decodeGzip(input, uncompressedSize, out);
    default:
      throw new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to decompress chunk: unknown compressor ${String(compressor)}`);
  }
}

/**
 * Decodes a metadata object (an inlined bootstrap, zstd or raw as upstream writes it),
 * which may be larger than any chunk; `limit` bounds what is allocated.
 */
export function decompressMetadata(compressor: 'none' | 'zstd', input: Uint8Array, size: number, limit: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0 || size > limit) throw fail(compressor, `invalid uncompressed size ${size}`);
  return compressor === 'zstd' ? decodeZstd(input, size) : decodeNone(input, size);
}

function decodeNone(input: Uint8Array, size: number, out?: Buffer): Buffer {
  if (input.length !== size) throw fail('none', `stored ${input.length} bytes, expected ${size}`);
  if (out === undefined) return toBuffer(input);
  out.set(input, 0);
  return out.subarray(0, size);
}

function decodeLz4(input: Uint8Array, size: number, out?: Buffer): Buffer {
  if (input.length === 0) throw fail('lz4_block', 'empty input');
  // The destination has exactly `size` bytes: a block that decodes to more fails here.
  const dst = out === undefined ? Buffer.allocUnsafe(size) : out.subarray(0, size);
  const n = lz4Addon().lz4DecodeBlock(input, dst);
  if (n < 0) throw fail('lz4_block', `malformed block or more than ${size} bytes decoded`);
  if (n !== size) throw fail('lz4_block', `decoded ${n} bytes, expected ${size}`);
  return dst;
}

/** A raw block as upstream's nydus-image writes it: LZ4_compress_default into a buffer of LZ4_compressBound bytes. */
function compressLz4(raw: Buffer): Buffer {
  const lz4 = lz4Addon();
  const dst = Buffer.allocUnsafe(lz4.lz4CompressBound(raw.length));
  const n = dst.length > 0 ? lz4.lz4CompressBlock(raw, dst) : 0;
  if (n <= 0) throw new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to compress ${raw.length} bytes with lz4_block: the input is too large`);
  return dst.subarray(0, n);
}

function decodeZstd(input: Uint8Array, size: number, out?: Buffer): Buffer {
  const dst = out === undefined ? Buffer.allocUnsafe(size) : out.subarray(0, size);
  let n: number;
  try {
    // The destination has exactly `size` bytes: a frame that decodes to more fails here.
    n = zstdDctx.decompress(dst, input);
  } catch (err) {
    throw fail('zstd', (err as Error).message, err);
  }
  if (n !== size) throw fail('zstd', `decoded ${n} bytes, expected ${size}`);
  return dst;
}

function decodeGzip(input: Uint8Array, size: number, out?: Buffer): Buffer {
  let decoded: Buffer;
  try {
    // maxOutputLength stops inflation one byte past the expected size (zlib needs ≥ 1).
    decoded = gunzipSync(input, { maxOutputLength: size + 1 });
  } catch (err) {
    throw fail('gzip', (err as Error).message, err);
  }
  if (decoded.length !== size) throw fail('gzip', `decoded ${decoded.length} bytes, expected ${size}`);
  if (out === undefined) return decoded;
  out.set(decoded, 0);
  return out.subarray(0, size);
}

/**
 * Compresses one object the way nydus-image does: zstd level 3, raw LZ4 block (no size
 * prefix), or one gzip member. When the output is not smaller than the input, the input
 * is returned with `compressed: false` (docs/format.md §1.1).
 */
export function compress(compressor: Compressor, input: Uint8Array): Compressed {
  const raw = toBuffer(input);
  let data: Buffer;
  switch (compressor) {
    case 'none':
      return { data: raw, compressed: false };
    case 'lz4_block':
      data = compressLz4(raw);
      break;
    case 'zstd': {
      const dst = Buffer.allocUnsafe(zstd.compressBound(raw.length));
      data = dst.subarray(0, zstd.compress(dst, raw, ZSTD_LEVEL));
      break;
    }
    case 'gzip':
      data = gzipSync(raw);
      break;
    default:
      throw new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to compress: unknown compressor ${String(compressor)}`);
  }
  if (data.length >= raw.length) return { data: raw, compressed: false };
  return { data, compressed: true };
}
