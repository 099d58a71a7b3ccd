// The blob meta of a zran blob (a targz-ref image's view of an original .tar.gz layer):
// the v2 chunk-info array, whose `data` word names each chunk's inflate context and its
// offset in that context's output, followed by the context table (docs/format.md §7.2,
// §7.4). It lives in a separate meta blob, fetched once per blob through the backend.
// Decoding a batch inflates each context once from its checkpoint through the last
// chunk the batch needs from it.
import { StorageError } from '../errors.js';
import type { BlobInfo, ChunkInfo } from './types.js';
import { BufferPool } from '../util/buffer-pool.js';
import type { BlobBackend } from './backend/backend.js';
import { decompressMetadata } from './codec.js';
import { decodeZranTable, inflateFromContext, type ZranContext } from './zran.js';

const HEADER_SIZE = 4096;
const HEADER_MAGIC = 0xb10b_b10b;
const CI_V2_SIZE = 24;
const CI_ZRAN = 0x02;
/** Generous bound on a meta blob's chunk-info data (1 Mi chunks with their windows). */
const MAX_META = 256 << 20;

const scratchPool = new BufferPool();
const SCRATCH_LIMIT = 4 << 20;

function bad(blob: BlobInfo, detail: string): StorageError {
  return new StorageError('ERR_STORAGE_BAD_CHUNK', `failed to load the zran meta of blob ${blob.blobId}: ${detail}`);
}

export class ZranBlobMeta {
  private constructor(
    private readonly blob: BlobInfo,
    private readonly ci: Buffer,
    readonly contexts: readonly ZranContext[],
  ) {}

  /** Fetches and decodes the meta blob of `blob` (its `blob_meta_digest` names it). */
  static async load(backend: BlobBackend, blob: BlobInfo): Promise<ZranBlobMeta> {
    if (blob.metaBlobId === undefined) throw bad(blob, 'the image names no meta blob (blob_meta_digest is zero)');
    const { metaCiOffset: off, metaCiCompressedSize: csize, metaCiUncompressedSize: usize } = blob;
    if (csize + HEADER_SIZE > MAX_META || usize > MAX_META || usize < blob.chunkCount * CI_V2_SIZE) throw bad(blob, `chunk-info sizes ${csize}/${usize}`);
    const raw = Buffer.allocUnsafe(csize + HEADER_SIZE);
    await backend.read(blob.metaBlobId, raw, off);
    const header = raw.subarray(csize);
    if (header.readUInt32LE(0) !== HEADER_MAGIC || header.readUInt32LE(4092) !== HEADER_MAGIC) throw bad(blob, 'bad meta header magic');
    const zranOffset = Number(header.readBigUInt64LE(40));
    const zranSize = Number(header.readBigUInt64LE(48));
    const zranCount = header.readUInt32LE(56);
    if (zranOffset !== blob.chunkCount * CI_V2_SIZE || zranOffset + zranSize > usize) throw bad(blob, `zran table at ${zranOffset}+${zranSize}`);
    const compressor = blob.metaCiCompressor;
    if (compressor !== 'none' && compressor !== 'zstd') throw bad(blob, `chunk-info array compressed with ${compressor}`);
    let ci: Buffer;
    try {
      // Metadata, not a chunk: a large layer's contexts exceed the 16 MiB chunk limit.
      ci = decompressMetadata(compressor, raw.subarray(0, csize), usize, MAX_META);
    } catch (err) {
      throw bad(blob, (err as Error).message);
    }
    return new ZranBlobMeta(blob, ci, decodeZranTable(ci.subarray(zranOffset, zranOffset + zranSize), zranCount));
  }

  /** The context of chunk `c` and the chunk's offset in that context's output. */
  locate(c: ChunkInfo): { ctx: ZranContext; index: number; offset: number } {
    if (c.index >= this.blob.chunkCount) throw bad(this.blob, `chunk index ${c.index} of ${this.blob.chunkCount}`);
    const o = c.index * CI_V2_SIZE;
    if ((this.ci[o + 7] & CI_ZRAN) === 0) throw bad(this.blob, `chunk ${c.index} is not a zran chunk`);
    const index = this.ci.readUInt32LE(o + 20);
    const offset = this.ci.readUInt32LE(o + 16);
    const ctx = this.contexts[index];
    if (ctx === undefined || offset + c.uncompressedSize > ctx.outLen || c.compressedOffset + c.compressedSize > ctx.inOffset + ctx.inLen) {
      throw bad(this.blob, `chunk ${c.index} lies outside its zran context ${index}`);
    }
    return { ctx, index, offset };
  }

  /** Where a backend read for `chunks` must start: the earliest checkpoint among them. */
  spanStart(chunks: readonly ChunkInfo[]): number {
    let start = Infinity;
    for (const c of chunks) start = Math.min(start, this.locate(c).ctx.inOffset);
    return start;
  }

  /**
   * The inflated bytes of each chunk (or the error that chunk gets), from `buf`: the gzip
   * stream from offset `start` through the end of the last chunk.
   */
  decode(chunks: readonly ChunkInfo[], buf: Buffer, start: number): (Buffer | Error)[] {
    const out = new Array<Buffer | Error>(chunks.length);
    const groups = new Map<number, number[]>();
    const located = chunks.map((c, i) => {
      const l = this.locate(c);
      const g = groups.get(l.index);
      if (g === undefined) groups.set(l.index, [i]);
      else g.push(i);
      return l;
    });
    for (const members of groups.values()) {
      try {
        this.inflateInto(out, chunks, located, members, buf, start);
      } catch (err) {
        // One bad byte late in a context must not fail the chunks before it: each alone
        // inflates only through its own end.
        for (const i of members) {
          try {
            if (members.length > 1) this.inflateInto(out, chunks, located, [i], buf, start);
            else throw err;
          } catch (e) {
            out[i] = e as Error;
          }
        }
      }
    }
    return out;
  }

  /** Inflates the context of `members` (chunk positions, one context) once, through the last byte they need. */
  private inflateInto(
    out: (Buffer | Error)[],
    chunks: readonly ChunkInfo[],
    located: readonly { ctx: ZranContext; offset: number }[],
    members: readonly number[],
    buf: Buffer,
    start: number,
  ): void {
    const { ctx } = located[members[0]];
    let need = 0;
    let inEnd = 0;
    for (const i of members) {
      need = Math.max(need, located[i].offset + chunks[i].uncompressedSize);
      inEnd = Math.max(inEnd, chunks[i].compressedOffset + chunks[i].compressedSize);
    }
    const pooled = need <= SCRATCH_LIMIT ? scratchPool.get(need) : undefined;
    const scratch = (pooled ?? Buffer.allocUnsafe(need)).subarray(0, need);
    try {
      inflateFromContext(ctx, buf.subarray(ctx.inOffset - start, inEnd - start), scratch);
      for (const i of members) {
        const from = located[i].offset;
        out[i] = Buffer.from(scratch.subarray(from, from + chunks[i].uncompressedSize));
      }
    } finally {
      if (pooled !== undefined) scratchPool.put(pooled);
    }
  }
}
