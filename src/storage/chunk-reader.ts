// Turns ChunkInfos into verified uncompressed bytes: memory LRU, then the chunk cache,
// then the backend. A backend fetch is amplified to the following not-yet-cached chunks
// of the same blob (one read, up to `amplifyIo` bytes) and feeds the cache with all of
// them. Concurrent requests for one chunk share one fetch. Wrong bytes are never
// returned: a chunk that fails to decode or, with validation, to match its digest is an
// error for that chunk only; with `fetchRetries`, a chunk whose fetched bytes fail is
// fetched again (with backoff) before that error stands. Background (prefetch) reads are
// never amplified and are counted apart; foreground fetches in flight are tracked so a
// prefetcher can yield to user reads. Returned buffers are shared: callers must not
// modify them.
import { StorageError } from '../errors.js';
import type { BlobInfo, ChunkInfo } from '../rafs/types.js';
import { backoffMs, sleep } from '../util/backoff.js';
import type { BlobBackend } from './backend/backend.js';
import { publish, retryChannel } from './backend/events.js';
import type { BlobChunkCache, ChunkCache } from './cache/cache.js';
import { chunkKey, planReads } from './amplify.js';
import { ChunkLru } from './chunk-lru.js';
import { decompress, MAX_CHUNK_SIZE } from './codec.js';
import { digestMatches, DIGEST_SIZE } from './digest.js';

/** BlobFeatures whose chunk layout this reader cannot decode (rafs-format.md §1.3). */
const UNSUPPORTED_FEATURES: readonly [number, string][] = [
  [0x08, 'zran'],
  [0x80, 'batch'],
  [0x100, 'encrypted'],
];
const MAX_STORED_SIZE = 2 * MAX_CHUNK_SIZE;

export interface ChunkReaderOptions {
  /** Verify every chunk (fetched or cached) against its digest. */
  digestValidate: boolean;
  /** Largest merged backend read in bytes when amplifying; 0 = one read per chunk. */
  amplifyIo: number;
  /** Every distinct chunk of a blob ordered by compressed offset (RafsSuper.blobChunks). */
  blobChunks?: (blobIndex: number) => readonly ChunkInfo[];
  /** Bytes of decoded chunks kept in memory (default 16 MiB; 0 disables). */
  memoryCacheBytes?: number;
  /** Largest hole between neighbours that may still be read in one request (default 4 KiB). */
  maxMergeGap?: number;
  /**
   * Extra fetches of a requested chunk whose fetched bytes fail to decode or verify
   * (corrupted in transit); network backends pass their `retry_limit`. Default 0.
   */
  fetchRetries?: number;
}

/** What one prefetch() call did with the chunks it was given. */
export interface PrefetchOutcome {
  /** Chunks fetched from the backend and cached. */
  fetched: number;
  /** Chunks already cached, in memory, or being fetched by someone else. */
  skipped: number;
  /** Chunks whose fetch failed (or that are malformed). */
  failed: number;
}

/** Counters of one reader; tests assert on them. */
export interface ChunkReaderStats {
  backendReads: number;
  backendBytes: number;
  /** Chunks decoded from backend reads (requested plus amplified). */
  chunksFetched: number;
  /** Neighbours added to backend reads by amplification. */
  amplifiedChunks: number;
  cacheHits: number;
  memoryHits: number;
  /** Cached chunks that failed verification and were refetched. */
  cacheEvictions: number;
  digestFailures: number;
  /** Blobs read without the cache because it could not be opened or trusted. */
  cacheBypassedBlobs: number;
  /** Backend reads and bytes made by prefetch() (included in the totals above). */
  prefetchReads: number;
  prefetchBytes: number;
  /** Chunks fetched again because their fetched bytes failed (fetchRetries). */
  refetches: number;
}

interface Slot {
  promise: Promise<Buffer>;
  resolve(data: Buffer): void;
  reject(err: unknown): void;
}

interface Member {
  chunk: ChunkInfo;
  key: string;
  slot: Slot;
  amplified: boolean;
  data?: Buffer;
  settled?: boolean;
}

interface BlobState {
  blob: BlobInfo;
  entry?: Promise<BlobChunkCache | undefined>;
  /** Sorted neighbours for amplification; null when unavailable. */
  neighbours?: readonly ChunkInfo[] | null;
}

function isUint(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Reads chunks of an image's blobs. */
export class ChunkReader {
  readonly stats: ChunkReaderStats = {
    backendReads: 0,
    backendBytes: 0,
    chunksFetched: 0,
    amplifiedChunks: 0,
    cacheHits: 0,
    memoryHits: 0,
    cacheEvictions: 0,
    digestFailures: 0,
    cacheBypassedBlobs: 0,
    prefetchReads: 0,
    prefetchBytes: 0,
    refetches: 0,
  };
  readonly #states = new Map<number, BlobState>();
  readonly #inflight = new Map<string, Slot>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #lru: ChunkLru;
  readonly #validate: boolean;
  readonly #amplifyIo: number;
  readonly #maxGap: number;
  readonly #fetchRetries: number;
  #foreground = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(
    blobs: readonly BlobInfo[],
    readonly backend: BlobBackend,
    readonly cache: ChunkCache | undefined,
    readonly options: ChunkReaderOptions,
  ) {
    for (const blob of blobs) this.#states.set(blob.index, { blob });
    this.#lru = new ChunkLru(options.memoryCacheBytes ?? 16 * 1024 * 1024);
    this.#validate = options.digestValidate;
    this.#amplifyIo = Math.max(0, options.amplifyIo);
    this.#maxGap = options.maxMergeGap ?? 4096;
    this.#fetchRetries = Math.max(0, options.fetchRetries ?? 0);
  }

  /** Backend fetches for foreground (user) reads in flight now. */
  get foregroundFetches(): number {
    return this.#foreground;
  }

  /** Resolves when no foreground fetch is in flight (at once if none is). */
  whenForegroundIdle(): Promise<void> {
    if (this.#foreground === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** The uncompressed bytes of one chunk. */
  async readChunk(chunk: ChunkInfo, signal?: AbortSignal): Promise<Buffer> {
    return (await this.readChunks([chunk], signal))[0];
  }

  /** The uncompressed bytes of each chunk, in order. */
  async readChunks(chunks: readonly ChunkInfo[], signal?: AbortSignal): Promise<Buffer[]> {
    signal?.throwIfAborted();
    const results = new Array<Promise<Buffer>>(chunks.length);
    const byBlob = new Map<BlobState, number[]>();
    for (let i = 0; i < chunks.length; i++) {
      const state = this.#check(chunks[i]);
      const list = byBlob.get(state);
      if (list === undefined) byBlob.set(state, [i]);
      else list.push(i);
    }
    await Promise.all(
      [...byBlob].map(async ([state, idx]) => {
        const served = await this.#serveBlob(state, idx.map((i) => chunks[i]));
        idx.forEach((i, j) => (results[i] = served[j]));
      }),
    );
    return raceSignal(Promise.all(results), signal);
  }

  /**
   * Fills `out` with bytes `[fileOffset, fileOffset + out.length)` of a file whose chunks
   * covering that range are `chunks` (in file order); bytes no chunk covers are holes (zeros).
   */
  async readRange(chunks: readonly ChunkInfo[], fileOffset: number, out: Buffer, signal?: AbortSignal): Promise<void> {
    const data = await this.readChunks(chunks, signal);
    const end = fileOffset + out.length;
    let cursor = fileOffset;
    for (let i = 0; i < chunks.length; i++) {
      const from = Math.max(chunks[i].fileOffset, fileOffset);
      const to = Math.min(chunks[i].fileOffset + chunks[i].uncompressedSize, end);
      if (to <= from) continue;
      if (from > cursor) out.fill(0, cursor - fileOffset, from - fileOffset);
      data[i].copy(out, from - fileOffset, from - chunks[i].fileOffset, to - chunks[i].fileOffset);
      cursor = Math.max(cursor, to);
    }
    if (cursor < end) out.fill(0, cursor - fileOffset);
  }

  /** Waits for every fetch and cache read in progress. Backend and cache stay open. */
  async close(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  #check(c: ChunkInfo): BlobState {
    const state = this.#states.get(c.blobIndex);
    const where = `chunk ${c.index} of blob index ${c.blobIndex}`;
    if (state === undefined) throw new StorageError('ERR_STORAGE_BAD_CHUNK', `failed to read ${where}: no such blob`);
    if (!this.#sane(c)) {
      throw new StorageError(
        'ERR_STORAGE_BAD_CHUNK',
        `failed to read ${where}: invalid sizes or offsets (stored ${c.compressedSize} at ${c.compressedOffset}, ` +
          `uncompressed ${c.uncompressedSize}, compressed=${c.compressed})`,
      );
    }
    for (const [bit, name] of UNSUPPORTED_FEATURES) {
      if ((state.blob.features & bit) !== 0) {
        throw new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to read blob ${state.blob.blobId}: ${name} blobs are not supported`);
      }
    }
    return state;
  }

  #sane(c: ChunkInfo): boolean {
    return (
      isUint(c.compressedOffset) &&
      isUint(c.uncompressedOffset) &&
      isUint(c.compressedSize) &&
      isUint(c.uncompressedSize) &&
      c.uncompressedSize <= MAX_CHUNK_SIZE &&
      c.compressedSize <= MAX_STORED_SIZE &&
      (c.compressed || c.compressedSize === c.uncompressedSize) &&
      (!this.#validate || c.digest.length === DIGEST_SIZE)
    );
  }

  /**
   * Background fetch of `chunks` into the cache (and memory LRU): chunks already cached,
   * in memory or in flight are skipped without reading them; the rest are merged into
   * backend reads of at most `maxReadBytes` (never amplified with neighbours). These
   * fetches are not foreground fetches. Chunk failures are counted, never thrown.
   */
  async prefetch(chunks: readonly ChunkInfo[], maxReadBytes: number, signal?: AbortSignal): Promise<PrefetchOutcome> {
    signal?.throwIfAborted();
    const outcome: PrefetchOutcome = { fetched: 0, skipped: 0, failed: 0 };
    const byBlob = new Map<BlobState, ChunkInfo[]>();
    for (const c of chunks) {
      let state: BlobState;
      try {
        state = this.#check(c);
      } catch {
        outcome.failed++;
        continue;
      }
      const list = byBlob.get(state);
      if (list === undefined) byBlob.set(state, [c]);
      else list.push(c);
    }
    const pending: Promise<unknown>[] = [];
    for (const [state, list] of byBlob) {
      const entry = await this.#entryOf(state);
      const misses: ChunkInfo[] = [];
      for (const c of list) {
        const key = chunkKey(c);
        const have = this.#lru.has(key) || this.#inflight.has(key) || entry?.isReady(c) === true || entry?.pending(c) !== undefined;
        if (have) outcome.skipped++;
        else {
          pending.push(this.#newSlot(key).promise.then(() => outcome.fetched++, () => outcome.failed++));
          misses.push(c);
        }
      }
      for (const batch of this.#plan(state, entry, misses, true, maxReadBytes)) this.#track(this.#fetch(state, entry, batch, true, 0));
    }
    await raceSignal(Promise.all(pending), signal);
    return outcome;
  }

  async #serveBlob(state: BlobState, chunks: ChunkInfo[]): Promise<Promise<Buffer>[]> {
    const entry = await this.#entryOf(state);
    const out: Promise<Buffer>[] = [];
    const misses: ChunkInfo[] = [];
    let fromCache = 0;
    for (const chunk of chunks) {
      const key = chunkKey(chunk);
      const hit = this.#lru.get(key) ?? entry?.pending(chunk);
      const slot = this.#inflight.get(key);
      if (hit !== undefined) {
        this.stats.memoryHits++;
        fromCache++;
        out.push(Promise.resolve(hit));
      } else if (slot !== undefined) {
        out.push(slot.promise);
      } else if (entry?.isReady(chunk) === true) {
        fromCache++;
        const s = this.#newSlot(key);
        out.push(s.promise);
        this.#track(this.#fromCache(state, entry, { chunk, key, slot: s, amplified: false }));
      } else {
        out.push(this.#newSlot(key).promise);
        misses.push(chunk);
      }
    }
    if (entry !== undefined && this.cache !== undefined) {
      this.cache.metrics.recordRequest(chunks.length, fromCache);
      this.cache.metrics.misses += misses.length;
    }
    for (const batch of this.#plan(state, entry, misses, false, this.#amplifyIo)) this.#track(this.#fetch(state, entry, batch, false, 0));
    return out;
  }

  #entryOf(state: BlobState): Promise<BlobChunkCache | undefined> {
    state.entry ??= (async () => {
      if (this.cache === undefined) return undefined;
      if (!this.#indexSound(state.blob)) {
        this.stats.cacheBypassedBlobs++;
        return undefined;
      }
      try {
        return await this.cache.openBlob(state.blob);
      } catch {
        this.stats.cacheBypassedBlobs++;
        return undefined;
      }
    })();
    return state.entry;
  }

  /**
   * The cache keys chunks by `index`: it is only safe when every distinct chunk of the
   * blob has its own index below the blob's chunk count (old v5 images use 0 for all).
   */
  #indexSound(blob: BlobInfo): boolean {
    if (this.options.blobChunks === undefined) return true;
    const seen = new Uint8Array(Math.ceil(blob.chunkCount / 8));
    for (const c of this.options.blobChunks(blob.index)) {
      if (!isUint(c.index) || c.index >= blob.chunkCount) return false;
      const bit = 1 << (c.index & 7);
      if ((seen[c.index >> 3] & bit) !== 0) return false;
      seen[c.index >> 3] |= bit;
    }
    return true;
  }

  #neighbours(state: BlobState): readonly ChunkInfo[] | null {
    if (state.neighbours === undefined) {
      const list = this.#amplifyIo > 0 ? this.options.blobChunks?.(state.blob.index) : undefined;
      let sorted = list ?? null;
      if (sorted !== null && sorted.some((c, i) => i > 0 && c.compressedOffset < sorted![i - 1].compressedOffset)) {
        sorted = [...sorted].sort((a, b) => a.compressedOffset - b.compressedOffset);
      }
      state.neighbours = sorted;
    }
    return state.neighbours;
  }

  /** Groups misses into backend reads, each extended by amplification, with a slot per chunk. */
  #plan(state: BlobState, entry: BlobChunkCache | undefined, misses: ChunkInfo[], background: boolean, maxReadBytes: number): Member[][] {
    if (misses.length === 0) return [];
    // Background reads merge what they asked for; only user reads pull in neighbours.
    const reads = planReads(misses, background ? null : this.#neighbours(state), {
      amplifyIo: Math.max(0, maxReadBytes),
      maxGap: this.#maxGap,
      available: (c, key) =>
        !this.#lru.has(key) &&
        !this.#inflight.has(key) &&
        entry?.isReady(c) !== true &&
        entry?.pending(c) === undefined &&
        this.#sane(c),
    });
    return reads.map((read) =>
      read.map(({ chunk, key, amplified }) => {
        if (amplified) this.stats.amplifiedChunks++;
        // Requested chunks got their slot in #serveBlob; neighbours get one now.
        return { chunk, key, amplified, slot: amplified ? this.#newSlot(key) : this.#inflight.get(key)! };
      }),
    );
  }

  /**
   * One backend read for a batch; decodes, verifies, caches and settles every member.
   * Requested members whose bytes fail are fetched again alone while `attempt` allows.
   */
  async #fetch(state: BlobState, entry: BlobChunkCache | undefined, batch: Member[], background: boolean, attempt: number): Promise<void> {
    if (!background) this.#foreground++;
    try {
      const { blob } = state;
      const start = batch[0].chunk.compressedOffset;
      const last = batch[batch.length - 1].chunk;
      const buf = Buffer.allocUnsafe(last.compressedOffset + last.compressedSize - start);
      try {
        await this.backend.read(blob.blobId, buf, start);
      } catch (err) {
        if (batch.length > 1 && batch.some((m) => m.amplified)) {
          // The neighbours may be what failed (a range past the blob's end): retry the
          // wanted chunks alone and drop the neighbours.
          for (const m of batch) if (m.amplified) this.#settle(m, err);
          await Promise.all(batch.filter((m) => !m.amplified).map((m) => this.#fetch(state, entry, [m], background, attempt)));
          return;
        }
        throw err;
      }
      this.stats.backendReads++;
      this.stats.backendBytes += buf.length;
      this.stats.chunksFetched += batch.length;
      if (background) {
        this.stats.prefetchReads++;
        this.stats.prefetchBytes += buf.length;
      }
      const toStore: { chunk: ChunkInfo; data: Buffer }[] = [];
      const again: Member[] = [];
      for (const m of batch) {
        const off = m.chunk.compressedOffset - start;
        try {
          m.data = this.#decode(blob, m.chunk, buf.subarray(off, off + m.chunk.compressedSize));
          toStore.push({ chunk: m.chunk, data: m.data });
        } catch (err) {
          if (!m.amplified && attempt < this.#fetchRetries) again.push(m);
          else this.#settle(m, err);
        }
      }
      // Waits only while the cache's write queue is full (backpressure).
      if (entry !== undefined && toStore.length > 0) await entry.store(toStore);
      for (const m of batch) if (m.data !== undefined) this.#settle(m, undefined, m.data);
      if (again.length > 0) await this.#refetch(state, entry, again, background, attempt);
    } catch (err) {
      for (const m of batch) this.#settle(m, err);
    } finally {
      if (!background && --this.#foreground === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /** Fetches chunks whose fetched bytes failed once more, after a backoff. */
  async #refetch(state: BlobState, entry: BlobChunkCache | undefined, members: Member[], background: boolean, attempt: number): Promise<void> {
    const delay = backoffMs(attempt);
    this.stats.refetches += members.length;
    publish(retryChannel, {
      level: 'warn',
      backend: this.backend.type,
      id: '',
      blobId: state.blob.blobId,
      attempt: attempt + 1,
      message:
        `failed to verify ${members.length} chunk(s) of blob ${state.blob.blobId} as fetched ` +
        `(attempt ${attempt + 1} of ${this.#fetchRetries + 1}); fetching again in ${delay} ms`,
    });
    await sleep(delay);
    await Promise.all(members.map((m) => this.#fetch(state, entry, [m], background, attempt + 1)));
  }

  async #fromCache(state: BlobState, entry: BlobChunkCache, m: Member): Promise<void> {
    try {
      const out = Buffer.allocUnsafe(m.chunk.uncompressedSize);
      let ok = await entry.read(m.chunk, out).catch(() => false);
      if (ok && this.#validate && !digestMatches(state.blob.digester, out, m.chunk.digest)) {
        entry.evict(m.chunk);
        this.stats.cacheEvictions++;
        ok = false;
      }
      if (ok) {
        this.stats.cacheHits++;
        this.#settle(m, undefined, out);
        return;
      }
    } catch (err) {
      this.#settle(m, err);
      return;
    }
    await this.#fetch(state, entry, [m], false, 0);
  }

  #decode(blob: BlobInfo, c: ChunkInfo, stored: Buffer): Buffer {
    const data = c.compressed ? decompress(blob.compressor, stored, c.uncompressedSize) : stored;
    if (this.#validate && !digestMatches(blob.digester, data, c.digest)) {
      this.stats.digestFailures++;
      throw new StorageError(
        'ERR_STORAGE_DIGEST_MISMATCH',
        `failed to verify chunk ${c.index} of blob ${blob.blobId} at offset ${c.compressedOffset}: ${blob.digester} digest mismatch`,
      );
    }
    return data;
  }

  #newSlot(key: string): Slot {
    let resolve!: (d: Buffer) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<Buffer>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Amplified neighbours may fail with nobody waiting: that must not be an unhandled rejection.
    promise.catch(() => {});
    const slot = { promise, resolve, reject };
    this.#inflight.set(key, slot);
    return slot;
  }

  #settle(m: Member, err: unknown, data?: Buffer): void {
    if (m.settled === true) return;
    m.settled = true;
    if (data !== undefined) this.#lru.set(m.key, data);
    if (this.#inflight.get(m.key) === m.slot) this.#inflight.delete(m.key);
    if (data !== undefined) m.slot.resolve(data);
    else m.slot.reject(err);
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    void task.finally(() => this.#tasks.delete(task));
  }
}

function raceSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
