// Buffers for decoded chunks, reused once nobody can still read them. A decoded chunk
// is held by the memory LRU and, for a while, by whoever asked for it; a cold read of a
// whole image decodes its full size, and fresh buffers for that are external memory
// churn that V8 answers with full GCs (decision 0008). So a buffer that leaves the LRU
// is retired, and goes back to the pool only at a moment when it is provably unused:
// - no read of the reader is in progress (readers copy what they need before they end);
// - it was never handed to a caller that may keep it (readChunk(s): escaped for good);
// - the cache does not hold it in its write queue (pinned until the cache releases it).
// Buffers that are not the pool's (views of a read buffer, larger than the pool's
// classes) simply go to the GC.
import { BufferPool } from '../util/buffer-pool.js';

/** Largest decoded chunk served from the pool (larger ones are allocated). */
const POOLED_LIMIT = 4 << 20;
/** Retired bytes kept waiting for a quiet moment; beyond this they go to the GC. */
const RETIRED_LIMIT = 32 << 20;
/** Retired buffers kept waiting for the cache to write them (the cache's queue is bounded too). */
const MAX_RETIRED_PINNED = 256;

/** The decoded-chunk buffers of one chunk reader. */
export class ChunkBuffers {
  readonly #pool = new BufferPool();
  readonly #ours = new WeakSet<ArrayBufferLike>();
  readonly #escaped = new WeakSet<ArrayBufferLike>();
  readonly #pinned = new Set<ArrayBufferLike>();
  /** Out of the LRU but still in the cache's queue: retired once the cache lets go. */
  readonly #retiredPinned = new Set<ArrayBufferLike>();
  #retired: ArrayBufferLike[] = [];
  #retiredBytes = 0;
  #active = 0;
  /** Buffers that went back to the pool (for tests). */
  recycled = 0;

  /** A buffer of exactly `size` bytes for a decoded chunk. */
  get(size: number): Buffer {
    if (size > POOLED_LIMIT || size === 0) return Buffer.allocUnsafe(size);
    const buf = this.#pool.get(size);
    this.#ours.add(buf.buffer);
    return buf.subarray(0, size);
  }

  /** A read that may hold decoded chunks starts; nothing retired is reused until it ends. */
  enter(): void {
    this.#active++;
  }

  /** The read ended: it holds none of the buffers any more. */
  leave(): void {
    if (--this.#active === 0) this.#reuseRetired();
  }

  /** `buf` went to a caller that may keep it: it is never reused. */
  escape(buf: Buffer): void {
    this.#escaped.add(buf.buffer);
  }

  /** The cache queued `buf` for writing: not reused until `unpin`. */
  pin(buf: Buffer): void {
    this.#pinned.add(buf.buffer);
  }

  unpin(buf: Buffer): void {
    const ab = buf.buffer;
    this.#pinned.delete(ab);
    // Left the LRU while the cache still held it: retired now.
    if (this.#retiredPinned.delete(ab)) this.#retire(ab);
  }

  /** `buf` left the memory LRU. */
  retire(buf: Buffer): void {
    const ab = buf.buffer;
    if (!this.#ours.has(ab) || this.#escaped.has(ab)) return;
    if (this.#pinned.has(ab)) {
      if (this.#retiredPinned.size < MAX_RETIRED_PINNED) this.#retiredPinned.add(ab);
      return;
    }
    this.#retire(ab);
  }

  #retire(ab: ArrayBufferLike): void {
    if (this.#active === 0) return this.#reuse(ab);
    if (this.#retiredBytes + ab.byteLength > RETIRED_LIMIT) return;
    this.#retired.push(ab);
    this.#retiredBytes += ab.byteLength;
  }

  #reuseRetired(): void {
    const list = this.#retired;
    this.#retired = [];
    this.#retiredBytes = 0;
    for (const ab of list) this.#reuse(ab);
  }

  #reuse(ab: ArrayBufferLike): void {
    // Escaped after it was retired, or still in the cache's queue: leave it to the GC.
    if (this.#escaped.has(ab) || this.#pinned.has(ab)) return;
    this.#ours.delete(ab);
    this.recycled++;
    this.#pool.put(Buffer.from(ab));
  }
}
