// Chunk codecs: none, raw LZ4 block, zstd (one frame) and gzip (one member), as the
// nydus builder writes them (rafs-format.md §1.1). Decoding never allocates more than
// the expected uncompressed size and never returns a buffer of any other length; every
// malformed input becomes ERR_STORAGE_DECOMPRESS. Pure CPU work, synchronous.
import { gunzipSync, gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import zstd from 'zstd-napi/binding.js';
import { StorageError } from '../errors.js';
import { loadAddon } from '../util/addon.js';
import type { Compressor } from '../rafs/types.js';

/** Largest uncompressed chunk any image may hold (rafs-format.md §1.6: 16 MiB). */
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

/** lz4-napi's block compressor, loaded on first use: only the builder compresses, and the daemon's start should not wait for it. */
let lz4Compress: ((data: Buffer) => Buffer) | undefined;
function lz4CompressSync(data: Buffer): Buffer {
  lz4Compress ??= (createRequire(import.meta.url)('lz4-napi') as { compressSync(data: Buffer): Buffer }).compressSync;
  return lz4Compress(data);
}

/** liblz4 through src/storage/native/lz4.c: decodes a raw block into the caller's buffer. */
interface Lz4Addon {
  /** Bytes written to `dst`, or -1 when `src` is not a valid block or does not fit `dst`. */
  decodeBlock(src: Uint8Array, dst: Uint8Array): number;
}
let lz4: Lz4Addon | undefined;

function lz4Addon(): Lz4Addon {
  lz4 ??= loadAddon<Lz4Addon>('nydus_lz4', import.meta.url, (m) => new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to load the lz4 decoder: ${m}`));
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
  const n = lz4Addon().decodeBlock(input, dst);
  if (n < 0) throw fail('lz4_block', `malformed block or more than ${size} bytes decoded`);
  if (n !== size) throw fail('lz4_block', `decoded ${n} bytes, expected ${size}`);
  return dst;
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
 * is returned with `compressed: false` (rafs-format.md §1.1).
 */
export function compress(compressor: Compressor, input: Uint8Array): Compressed {
  const raw = toBuffer(input);
  let data: Buffer;
  switch (compressor) {
    case 'none':
      return { data: raw, compressed: false };
    case 'lz4_block':
      // lz4-napi prepends the uncompressed size as u32 LE; the block follows it.
      data = lz4CompressSync(raw).subarray(4);
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
