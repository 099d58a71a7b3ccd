// Chunks of an eStargz layer (estargz-ref / estargztoc-ref images): each chunk starts a
// gzip member of the original layer, and the member goes on past the chunk (the tar
// padding and the next tar headers share it). Reading a chunk inflates the start of
// its member into exactly the chunk's size and stops there (upstream's "legacy
// stargz" blobs: gzip chunks without the v2 chunk-info array). The member's CRC covers
// the whole member, so nothing checks the inflated bytes but the chunk's digest: the
// reader always verifies them.
import { StorageError } from '../errors.js';
import { BlobFeatures, type BlobInfo } from './types.js';
import { zranAddon } from './zran.js';

const NO_WINDOW = new Uint8Array(0);
const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;

/** A blob whose chunks are gzip members read by prefix (rather than whole members or zran spans). */
export function isStargzBlob(blob: BlobInfo): boolean {
  return blob.compressor === 'gzip' && (blob.features & (BlobFeatures.CHUNK_INFO_V2 | BlobFeatures.ZRAN)) === 0;
}

function fail(at: number, detail: string): StorageError {
  return new StorageError('ERR_STORAGE_DECOMPRESS', `failed to inflate the gzip member at offset ${at}: ${detail}`);
}

/** Length of the gzip member header at the start of `b` (RFC 1952 §2.3). */
function gzipHeaderLength(b: Uint8Array, at = 0): number {
  if (b.length < 10 || b[0] !== 0x1f || b[1] !== 0x8b || b[2] !== 8) throw fail(at, 'no gzip header');
  const flags = b[3];
  let p = 10;
  if (flags & FEXTRA) {
    if (p + 2 > b.length) throw fail(at, 'truncated header');
    p += 2 + (b[p] | (b[p + 1] << 8));
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if ((flags & flag) === 0) continue;
    while (p < b.length && b[p] !== 0) p++;
    p++;
  }
  if (flags & FHCRC) p += 2;
  if (p > b.length) throw fail(at, 'truncated header');
  return p;
}

/**
 * The first `size` bytes of the gzip member at the start of `stored` (which may run on
 * past the member). `at` is the member's offset in its blob, for messages only.
 */
export function inflateMemberPrefix(stored: Uint8Array, size: number, at: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  const n = zranAddon().inflateAt(stored.subarray(gzipHeaderLength(stored, at)), 0, 0, NO_WINDOW, out);
  if (n < 0) throw fail(at, 'invalid deflate data');
  if (n !== size) throw fail(at, `${n} of ${size} bytes`);
  return out;
}
