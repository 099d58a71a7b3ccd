// What the chunk reader decides before any I/O: whether a chunk's sizes and offsets are
// sane (a corrupt record must drive no read and no allocation), whether its blob's
// layout is one this reader can decode, and whether the cache may key a blob's chunks
// by their index. Pure: no I/O, no state.
import { StorageError } from '../errors.js';
import type { BlobInfo, ChunkInfo } from './types.js';
import { MAX_CHUNK_SIZE } from './codec.js';
import { DIGEST_SIZE } from './digest.js';

/** BlobFeatures whose chunk layout this reader cannot decode (docs/format.md §1.3). */
const UNSUPPORTED_FEATURES: readonly [number, string][] = [
  [0x80, 'batch'],
  [0x100, 'encrypted'],
];
const MAX_STORED_SIZE = 2 * MAX_CHUNK_SIZE;

function isUint(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** True when a chunk's sizes and offsets can be read as they are (and, with `validate`, its digest checked). */
export function isSaneChunk(c: ChunkInfo, validate: boolean): boolean {
  return (
    isUint(c.compressedOffset) &&
    isUint(c.uncompressedOffset) &&
    isUint(c.compressedSize) &&
    isUint(c.uncompressedSize) &&
    c.uncompressedSize <= MAX_CHUNK_SIZE &&
    c.compressedSize <= MAX_STORED_SIZE &&
    (c.compressed || c.compressedSize === c.uncompressedSize) &&
    (!validate || c.digest.length === DIGEST_SIZE)
  );
}

/**
 * Throws unless chunk `c` of `blob` (undefined: the image has no such blob) can be read:
 * ERR_STORAGE_BAD_CHUNK for a missing blob or insane fields, ERR_STORAGE_UNSUPPORTED for
 * a blob layout this reader cannot decode.
 */
export function checkChunk(c: ChunkInfo, blob: BlobInfo | undefined, validate: boolean): void {
  const where = `chunk ${c.index} of blob index ${c.blobIndex}`;
  if (blob === undefined) throw new StorageError('ERR_STORAGE_BAD_CHUNK', `failed to read ${where}: no such blob`);
  if (!isSaneChunk(c, validate)) {
    throw new StorageError(
      'ERR_STORAGE_BAD_CHUNK',
      `failed to read ${where}: invalid sizes or offsets (stored ${c.compressedSize} at ${c.compressedOffset}, ` +
        `uncompressed ${c.uncompressedSize}, compressed=${c.compressed})`,
    );
  }
  for (const [bit, name] of UNSUPPORTED_FEATURES) {
    if ((blob.features & bit) !== 0) {
      throw new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to read blob ${blob.blobId}: ${name} blobs are not supported`);
    }
  }
}

/**
 * The cache keys chunks by `index`: it is only safe when every distinct chunk of the blob
 * (`chunks`) has its own index below the blob's chunk count (old v5 images use 0 for all).
 */
export function cacheIndexSound(blob: BlobInfo, chunks: readonly ChunkInfo[]): boolean {
  const seen = new Uint8Array(Math.ceil(blob.chunkCount / 8));
  for (const c of chunks) {
    if (!isUint(c.index) || c.index >= blob.chunkCount) return false;
    const bit = 1 << (c.index & 7);
    if ((seen[c.index >> 3] & bit) !== 0) return false;
    seen[c.index >> 3] |= bit;
  }
  return true;
}
