// Inflates a .tar.gz once, as the tar reader consumes it, and turns each file chunk into
// a zran chunk: which inflate context (checkpoint) it is read from, at which offset of
// that context's output, and the gzip span up to its end. Contexts are cut with
// upstream's policy (ZranGenerator::begin_read): a chunk reuses the current context
// unless the context has grown past 512 KiB compressed or 2 MiB inflated, a new gzip
// member began, or a big gap opened since; a new one starts at the last deflate block
// boundary before the chunk. Checkpoints (32 KiB window each) and position samples are
// kept only between the tar reader and the inflater, a bounded look-ahead. The source is
// read once, front to back (a FIFO or a pipe will do): its sha256 and size, and a copy
// when the caller wants one, are taken from the same reads.
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { BuildError } from '../errors.js';
import { ZRAN_WINDOW_SIZE, zranAddon, type ZranContext } from '../storage/zran.js';

/** Upstream's thresholds, from RAFS_DEFAULT_CHUNK_SIZE (1 MiB) whatever the image's chunk size. */
const MIN_COMP = 512 << 10;
const MAX_COMP = 1 << 20;
const MAX_UNCOMP = 2 << 20;
const PIECE = 4 << 10;
const U32 = 0xffff_ffff;
/**
 * How far the tar reader may lag behind the inflater: one request (a chunk of at most
 * 16 MiB, or tar metadata of at most 8 MiB) and a piece. Checkpoints further back are
 * dropped even when no file chunk begins (a long run of headers), which bounds memory.
 */
const LOOKBEHIND = 32 << 20;

interface Checkpoint {
  inPos: number;
  outPos: number;
  bits: number;
  byte: number;
  window: Buffer;
  member: number;
}

interface Sample {
  inPos: number;
  outPos: number;
  member: number;
}

/** Where one chunk's bytes are, in upstream's terms (ZranChunkInfo). */
export interface ZranChunk {
  contextIndex: number;
  /** Offset of the chunk in its context's inflated output. */
  contextOffset: number;
  /** Gzip offset around which the chunk starts, and the span through its end. */
  inPos: number;
  inLen: number;
}

function bad(detail: string): BuildError {
  return new BuildError('ERR_BUILD_SOURCE', `failed to index the gzip stream: ${detail}`);
}

export class ZranGenerator {
  readonly contexts: ZranContext[] = [];
  private readonly members: number[] = [];
  private readonly hash = createHash('sha256');
  private readonly handle = zranAddon().indexerCreate();
  private readonly state = new Float64Array(6);
  private readonly checkpoints: Checkpoint[] = [];
  private readonly samples: Sample[] = [{ inPos: 0, outPos: 0, member: 0 }];
  private member = 0;
  private size = 0;
  private current = -1;
  private chunkStart = 0;
  private chunkIn = 0;
  private lastIn = -1;
  /** Whether the gzip magic was checked. */
  private checked = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    private readonly tee: ((piece: Buffer) => Promise<void>) | undefined,
  ) {}

  /** Opens `path` for one pass; `tee` is handed every piece of the stream as it is read. */
  static async open(path: string, tee?: (piece: Buffer) => Promise<void>): Promise<ZranGenerator> {
    return new ZranGenerator(await open(path, 'r'), path, tee);
  }

  /** Bytes of the gzip stream read so far (its size once the stream was consumed). */
  get compressedSize(): number {
    return this.size;
  }

  /** sha256 of the whole gzip stream, once consumed: the blob id. */
  digest(): string {
    return this.hash.digest('hex');
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** The inflated stream, in pieces of at most 4 KiB (the granularity of chunk offsets). */
  async *inflated(): AsyncGenerator<Buffer> {
    const addon = zranAddon();
    const input = Buffer.allocUnsafe(1 << 20);
    let ended = true; // no member started: EOF here is a clean end
    for (;;) {
      const out = Buffer.allocUnsafe(PIECE);
      const r = addon.indexerStep(this.handle, out, this.state);
      const [produced, inPos, outPos, atBoundary, bits, byte] = this.state;
      if (r < 0) throw bad(`invalid gzip data near offset ${inPos}`);
      if (r === 1) {
        const bytesRead = await this.fill(input);
        if (bytesRead === 0) {
          if (!this.checked) throw this.notGzip();
          if (!ended) throw bad(`the stream ends inside a gzip member at offset ${this.size}`);
          return;
        }
        const piece = input.subarray(0, bytesRead);
        if (!this.checked) this.checkMagic(piece);
        this.hash.update(piece);
        this.size += bytesRead;
        await this.tee?.(piece);
        addon.indexerFeed(this.handle, piece);
        continue;
      }
      ended = false;
      this.samples.push({ inPos, outPos, member: this.member });
      this.prune(outPos - LOOKBEHIND);
      if (r === 2) {
        this.member++;
        ended = true;
      } else if (atBoundary === 1) {
        const window = Buffer.allocUnsafe(ZRAN_WINDOW_SIZE);
        const n = addon.indexerWindow(this.handle, window);
        if (n < 0) throw bad(`no inflate window at offset ${inPos}`);
        this.checkpoints.push({ inPos, outPos, bits, byte, window: window.subarray(0, n), member: this.member });
      }
      if (produced > 0) yield out.subarray(0, produced);
    }
  }

  /** Starts a chunk of `size` bytes at inflated offset `outPos` (the tar reader's position). */
  beginChunk(outPos: number, size: number): void {
    this.prune(outPos);
    const blk = this.checkpoints[0];
    if (blk === undefined || blk.outPos > outPos) throw bad(`no deflate block boundary before inflated offset ${outPos}`);
    const inPos = this.inBefore(outPos);
    const ctx = this.current >= 0 ? this.contexts[this.current] : undefined;
    let fresh = ctx === undefined;
    if (ctx !== undefined) {
      const comp = inPos - ctx.inOffset;
      const uncomp = outPos - ctx.outOffset;
      const first = blk.inPos === ctx.inOffset && blk.member === this.members[this.current];
      const enough = !first && (comp >= MAX_COMP / 2 || uncomp + size >= MAX_UNCOMP);
      if (blk.member !== this.members[this.current] || enough) fresh = true;
      else if (!first && comp > 2 * ctx.inLen && ctx.inLen > MIN_COMP) fresh = true;
    }
    if (fresh) {
      this.current = this.contexts.push({ inOffset: blk.inPos, outOffset: blk.outPos, inLen: 0, outLen: 0, ctxByte: blk.byte, ctxBits: blk.bits, window: blk.window }) - 1;
      this.members.push(blk.member);
    }
    this.chunkStart = outPos;
    // Chunk offsets stay distinct, as readers key stored chunks by them.
    this.chunkIn = Math.max(inPos, this.lastIn + 1);
    this.lastIn = this.chunkIn;
  }

  /** Ends the chunk begun last at inflated offset `outEnd`. */
  endChunk(outEnd: number): ZranChunk {
    const ctx = this.contexts[this.current];
    const end = this.samples.find((s) => s.outPos >= outEnd);
    if (end === undefined) throw bad(`inflated offset ${outEnd} not reached`);
    if (end.member !== this.members[this.current]) throw bad(`a file chunk spans two gzip members at offset ${end.inPos}`);
    const inEnd = Math.max(end.inPos, this.chunkIn + 1);
    ctx.outLen = outEnd - ctx.outOffset;
    ctx.inLen = inEnd - ctx.inOffset;
    if (ctx.outLen > U32 || ctx.inLen > U32) throw bad(`a zran context at offset ${ctx.inOffset} grew past 4 GiB`);
    return {
      contextIndex: this.current,
      contextOffset: this.chunkStart - ctx.outOffset,
      inPos: this.chunkIn,
      inLen: inEnd - this.chunkIn,
    };
  }

  /**
   * Reads until `buf` is full or the stream ends. A FIFO returns a little at a time, and
   * where checkpoints fall depends on the input the inflater is given: whole pieces make
   * the index the same whatever the source is.
   */
  private async fill(buf: Buffer): Promise<number> {
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await this.fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return n;
  }

  /** Checks the gzip magic in the first piece (a whole one: it has both bytes unless the stream is shorter). */
  private checkMagic(piece: Buffer): void {
    if (piece.length < 2 || piece[0] !== 0x1f || piece[1] !== 0x8b) throw this.notGzip();
    this.checked = true;
  }

  private notGzip(): BuildError {
    return new BuildError('ERR_BUILD_SOURCE', `failed to build from ${this.path}: not a gzip stream (targz-ref indexes a .tar.gz; a plain tar builds with tar-rafs)`);
  }

  /** Drops checkpoints and samples before the last ones at or before `outPos`. */
  private prune(outPos: number): void {
    let k = 0;
    while (k + 1 < this.checkpoints.length && this.checkpoints[k + 1].outPos <= outPos) k++;
    if (k > 0) this.checkpoints.splice(0, k);
    let j = 0;
    while (j + 1 < this.samples.length && this.samples[j + 1].outPos <= outPos) j++;
    if (j > 0) this.samples.splice(0, j);
  }

  private inBefore(outPos: number): number {
    let best = this.samples[0].inPos;
    for (const s of this.samples) if (s.outPos <= outPos) best = s.inPos;
    return best;
  }
}
