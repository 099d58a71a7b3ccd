// The uncompressed address space of one blob as a flat file: byte X of the view is
// byte X of the blob once every chunk sits at its uncompressed offset, zeros fill the
// gaps, and the size is rounded up to 4 KiB. It is what upstream's fscache mode writes
// into its cache files, and what the kernel's erofs reads through a loop device in the
// erofs fs driver: a RAFS v6 inode's chunk index points at blkaddr = offset / 4 KiB of
// the blob's device. Bytes come through the mount's ChunkReader, so every read is
// cached, amplified, verified and counted as a fusedev read is.
import { StorageError } from '../errors.js';
import type { BlobInfo, ChunkInfo } from './types.js';
import type { ChunkReader } from './chunk-reader.js';

/** Block size of erofs devices: views are sized and chunks aligned to it. */
export const VIEW_BLOCK = 4096;

/** Why a blob cannot be laid out as a view, or undefined when it can. */
export function viewLayoutProblem(blob: BlobInfo, chunks: readonly ChunkInfo[]): string | undefined {
  let end = 0;
  for (const c of [...chunks].sort((a, b) => a.uncompressedOffset - b.uncompressedOffset)) {
    if (c.uncompressedOffset % VIEW_BLOCK !== 0) {
      return `chunk ${c.index} of blob ${blob.blobId} starts at uncompressed offset ${c.uncompressedOffset}, not 4 KiB-aligned`;
    }
    if (c.uncompressedOffset < end) return `chunks of blob ${blob.blobId} overlap at uncompressed offset ${c.uncompressedOffset}`;
    end = c.uncompressedOffset + c.uncompressedSize;
  }
  return undefined;
}

/** One blob's view. Immutable; reads may run concurrently. */
export class BlobView {
  readonly blob: BlobInfo;
  /** Bytes of the view (a multiple of 4 KiB). */
  readonly size: number;
  readonly #reader: ChunkReader;
  /** The blob's chunks by uncompressed offset, with fileOffset = uncompressedOffset so readRange places them. */
  readonly #chunks: ChunkInfo[];
  readonly #starts: Float64Array;

  /** `chunks`: every distinct chunk of the blob (RafsSuper.blobChunks); check viewLayoutProblem first. */
  constructor(blob: BlobInfo, chunks: readonly ChunkInfo[], reader: ChunkReader) {
    this.blob = blob;
    this.#reader = reader;
    this.#chunks = chunks.map((c) => ({ ...c, fileOffset: c.uncompressedOffset })).sort((a, b) => a.fileOffset - b.fileOffset);
    this.#starts = Float64Array.from(this.#chunks, (c) => c.fileOffset);
    const last = this.#chunks.at(-1);
    const end = Math.max(blob.uncompressedSize, last === undefined ? 0 : last.fileOffset + last.uncompressedSize);
    this.size = Math.ceil(end / VIEW_BLOCK) * VIEW_BLOCK;
  }

  /** Fills `out` with view bytes from `offset` (the caller keeps offset + out.length <= size). */
  read(offset: number, out: Buffer, signal?: AbortSignal): Promise<void> {
    if (offset < 0 || offset + out.length > this.size) {
      throw new StorageError('ERR_STORAGE_BAD_CHUNK', `failed to read view of blob ${this.blob.blobId}: range ${offset}+${out.length} is outside its ${this.size} bytes`);
    }
    return this.#reader.readRange(this.#covering(offset, offset + out.length), offset, out, signal);
  }

  /** The chunks that intersect [from, to), in offset order. */
  #covering(from: number, to: number): ChunkInfo[] {
    const starts = this.#starts;
    // Last chunk starting at or before `from` (it may reach into the range).
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid] <= from) lo = mid + 1;
      else hi = mid;
    }
    let i = Math.max(0, lo - 1);
    const out: ChunkInfo[] = [];
    for (; i < starts.length && starts[i] < to; i++) {
      const c = this.#chunks[i];
      if (c.fileOffset + c.uncompressedSize > from) out.push(c);
    }
    return out;
  }
}
