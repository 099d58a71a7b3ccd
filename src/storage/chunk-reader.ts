// Turns ChunkInfos into verified uncompressed bytes: memory LRU, then the chunk cache,
// then the backend. A backend fetch is amplified to the following not-yet-cached chunks
// of the same blob (one read, up to `amplifyIo` bytes) and feeds the cache with all of
// them. Concurrent requests for one chunk share one fetch. Wrong bytes are never
// returned: a chunk that fails to decode or, with validation, to match its digest is an
// error for that chunk only; with `fetchRetries`, a chunk whose fetched bytes fail is
// fetched again (with backoff) before that error stands. Background (prefetch) reads are
// never amplified and are counted apart; foreground fetches in flight are tracked so a
// prefetcher can yield to user reads. Returned buffers are shared: callers must not
// modify them. The checks before any I/O are in chunk-checks.ts, the single-flight
// table and memory LRU in chunk-slots.ts, read planning in amplify.ts.
import { StorageError } from '../errors.js';
import { BlobFeatures, type BlobInfo, type ChunkInfo } from './types.js';
import { abortable } from '../util/abortable.js';
import { BufferPool } from '../util/buffer-pool.js';
import { retry } from '../util/retry.js';
import type { BlobBackend } from './backend/backend.js';
import { publish, retryChannel } from './backend/events.js';
import type { BlobChunkCache, ChunkCache } from './cache/cache.js';
import { chunkKey, planReads } from './amplify.js';
import { cacheIndexSound, checkChunk, isSaneChunk } from './chunk-checks.js';
import { ChunkSlots, type Member, type Slot } from './chunk-slots.js';
import { decompress } from './codec.js';
import { digestMatches } from './digest.js';
import { inflateMemberPrefix, isStargzBlob } from './gzip-member.js';
import { ZranBlobMeta } from './zran-meta.js';

/**
 * Backend reads land in pooled buffers: a cold read of an image fetches its whole size,
 * and fresh buffers for it would be external memory churn that triggers full GCs.
 */
const fetchPool = new BufferPool();
const FETCH_POOL_LIMIT = 4 << 20;

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

interface BlobState {
  blob: BlobInfo;
  entry?: Promise<BlobChunkCache | undefined>;
  /** Sorted neighbours for amplification; null when unavailable. */
  neighbours?: readonly ChunkInfo[] | null;
  /** Zran blobs (targz-ref): the blob meta, loaded on first fetch. */
  zran?: Promise<ZranBlobMeta>;
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
  readonly #slots: ChunkSlots;
  readonly #tasks = new Set<Promise<void>>();
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
    this.#slots = new ChunkSlots(options.memoryCacheBytes ?? 16 * 1024 * 1024);
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
    return abortable(Promise.all(results), signal);
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

  /** Bytes of blob `blobIndex`'s chunks that are durably in the cache (0 without a cache). */
  async cachedBytes(blobIndex: number): Promise<number> {
    const state = this.#states.get(blobIndex);
    const entry = state === undefined ? undefined : await this.#entryOf(state).catch(() => undefined);
    if (state === undefined || entry === undefined) return 0;
    let bytes = 0;
    for (const c of this.options.blobChunks?.(blobIndex) ?? []) if (entry.isReady(c)) bytes += c.uncompressedSize;
    return bytes;
  }

  /** Waits for every fetch and cache read in progress. Backend and cache stay open. */
  async close(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  #check(c: ChunkInfo): BlobState {
    const state = this.#states.get(c.blobIndex);
    checkChunk(c, state?.blob, this.#validate);
    return state as BlobState;
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
        const have = this.#slots.busy(key) || entry?.isReady(c) === true || entry?.pending(c) !== undefined;
        if (have) outcome.skipped++;
        else {
          pending.push(this.#slots.open(key).promise.then(() => outcome.fetched++, () => outcome.failed++));
          misses.push(c);
        }
      }
      for (const batch of this.#plan(state, entry, misses, true, maxReadBytes)) this.#track(this.#fetch(state, entry, batch, true));
    }
    await abortable(Promise.all(pending), signal);
    return outcome;
  }

  async #serveBlob(state: BlobState, chunks: ChunkInfo[]): Promise<Promise<Buffer>[]> {
    const entry = await this.#entryOf(state);
    const out: Promise<Buffer>[] = [];
    const misses: ChunkInfo[] = [];
    let fromCache = 0;
    for (const chunk of chunks) {
      const key = chunkKey(chunk);
      const hit = this.#slots.memory(key) ?? entry?.pending(chunk);
      const slot = this.#slots.inflight(key);
      if (hit !== undefined) {
        this.stats.memoryHits++;
        fromCache++;
        out.push(Promise.resolve(hit));
      } else if (slot !== undefined) {
        out.push(slot.promise);
      } else if (entry?.isReady(chunk) === true) {
        fromCache++;
        const s = this.#slots.open(key);
        out.push(s.promise);
        this.#track(this.#fromCache(state, entry, { chunk, key, slot: s, amplified: false }));
      } else {
        out.push(this.#slots.open(key).promise);
        misses.push(chunk);
      }
    }
    if (entry !== undefined && this.cache !== undefined) {
      this.cache.metrics.recordRequest(chunks.length, fromCache);
      this.cache.metrics.misses += misses.length;
    }
    for (const batch of this.#plan(state, entry, misses, false, this.#amplifyIo)) this.#track(this.#fetch(state, entry, batch, false));
    return out;
  }

  #entryOf(state: BlobState): Promise<BlobChunkCache | undefined> {
    state.entry ??= (async () => {
      if (this.cache === undefined) return undefined;
      // The cache keys chunks by index; a blob whose chunks do not have distinct indexes bypasses it.
      if (this.options.blobChunks !== undefined && !cacheIndexSound(state.blob, this.options.blobChunks(state.blob.index))) {
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
        !this.#slots.busy(key) && entry?.isReady(c) !== true && entry?.pending(c) === undefined && isSaneChunk(c, this.#validate),
    });
    return reads.map((read) =>
      read.map(({ chunk, key, amplified }) => {
        if (amplified) this.stats.amplifiedChunks++;
        // Requested chunks got their slot in #serveBlob; neighbours get one now.
        return { chunk, key, amplified, slot: amplified ? this.#slots.open(key) : (this.#slots.inflight(key) as Slot) };
      }),
    );
  }

  /**
   * One backend read for a batch (#fetchBatch); then each requested chunk whose bytes
   * failed is fetched alone again while `fetchRetries` allows (#refetch).
   */
  async #fetch(state: BlobState, entry: BlobChunkCache | undefined, batch: Member[], background: boolean): Promise<void> {
    if (!background) this.#foreground++;
    try {
      const failed = await this.#fetchBatch(state, entry, batch, background);
      await Promise.all(failed.map(({ m, err }) => this.#refetch(state, entry, m, err, background)));
    } finally {
      if (!background && --this.#foreground === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /**
   * One backend read for a batch; decodes, verifies, caches and settles every member,
   * except the requested ones whose bytes failed while refetches are allowed: those are
   * returned, unsettled, with their errors.
   */
  async #fetchBatch(state: BlobState, entry: BlobChunkCache | undefined, batch: Member[], background: boolean): Promise<{ m: Member; err: unknown }[]> {
    const failed: { m: Member; err: unknown }[] = [];
    try {
      const { blob } = state;
      // A zran chunk is inflated from its context's checkpoint: the read starts there.
      const zran = (blob.features & BlobFeatures.ZRAN) !== 0 ? await this.#zranOf(state) : undefined;
      const start = zran?.spanStart(batch.map((m) => m.chunk)) ?? batch[0].chunk.compressedOffset;
      let end = 0;
      for (const m of batch) end = Math.max(end, m.chunk.compressedOffset + m.chunk.compressedSize);
      const size = end - start;
      const pooled = size <= FETCH_POOL_LIMIT ? fetchPool.get(size) : undefined;
      const buf = pooled?.subarray(0, size) ?? Buffer.allocUnsafe(size);
      try {
        await this.backend.read(blob.blobId, buf, start);
      } catch (err) {
        if (batch.length > 1 && batch.some((m) => m.amplified)) {
          // The neighbours may be what failed (a range past the blob's end): retry the
          // wanted chunks alone and drop the neighbours.
          for (const m of batch) if (m.amplified) this.#slots.settle(m, err);
          const alone = await Promise.all(batch.filter((m) => !m.amplified).map((m) => this.#fetchBatch(state, entry, [m], background)));
          return alone.flat();
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
      const inflated = zran?.decode(batch.map((m) => m.chunk), buf, start);
      for (const [i, m] of batch.entries()) {
        const off = m.chunk.compressedOffset - start;
        try {
          const z = inflated?.[i];
          if (z instanceof Error) throw z;
          m.data = z !== undefined ? this.#verify(blob, m.chunk, z, true) : this.#decode(blob, m.chunk, buf.subarray(off, off + m.chunk.compressedSize));
          toStore.push({ chunk: m.chunk, data: m.data });
        } catch (err) {
          if (!m.amplified && this.#fetchRetries > 0) failed.push({ m, err });
          else this.#slots.settle(m, err);
        }
      }
      // The read buffer goes back to the pool unless a chunk stored raw is a view of it.
      if (pooled !== undefined && batch.every((m) => m.data === undefined || m.data.buffer !== pooled.buffer)) fetchPool.put(pooled);
      // Waits only while the cache's write queue is full (backpressure).
      if (entry !== undefined && toStore.length > 0) await entry.store(toStore);
      for (const m of batch) if (m.data !== undefined) this.#slots.settle(m, undefined, m.data);
      return failed;
    } catch (err) {
      for (const m of batch) this.#slots.settle(m, err);
      return [];
    }
  }

  /**
   * Fetches a requested chunk whose fetched bytes failed (`first`) alone again, with
   * backoff, until its bytes verify or `fetchRetries` refetches failed too.
   */
  async #refetch(state: BlobState, entry: BlobChunkCache | undefined, m: Member, first: unknown, background: boolean): Promise<void> {
    const blobId = state.blob.blobId;
    try {
      await retry(
        {
          retries: this.#fetchRetries,
          retryable: () => true,
          onRetry: (_err, attempt, delay) => {
            this.stats.refetches++;
            publish(retryChannel, {
              level: 'warn',
              backend: this.backend.type,
              id: '',
              blobId,
              attempt,
              message:
                `failed to verify chunk ${m.chunk.index} of blob ${blobId} as fetched ` +
                `(attempt ${attempt} of ${this.#fetchRetries + 1}); fetching again in ${delay} ms`,
            });
          },
        },
        async (attempt) => {
          // Attempt 0 is the batch read that already failed.
          if (attempt === 0) throw first;
          const [again] = await this.#fetchBatch(state, entry, [m], background);
          if (again !== undefined) throw again.err;
        },
      );
    } catch (err) {
      this.#slots.settle(m, err);
    }
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
        this.#slots.settle(m, undefined, out);
        return;
      }
    } catch (err) {
      this.#slots.settle(m, err);
      return;
    }
    await this.#fetch(state, entry, [m], false);
  }

  #zranOf(state: BlobState): Promise<ZranBlobMeta> {
    if (state.zran === undefined) {
      const loading = ZranBlobMeta.load(this.backend, state.blob);
      // A failed load is retried by the next fetch (the meta blob may be reachable again).
      loading.catch(() => {
        if (state.zran === loading) state.zran = undefined;
      });
      state.zran = loading;
    }
    return state.zran;
  }

  #decode(blob: BlobInfo, c: ChunkInfo, stored: Buffer): Buffer {
    // eStargz chunks: the start of a longer gzip member, checked by nothing but the digest.
    if (c.compressed && isStargzBlob(blob)) return this.#verify(blob, c, inflateMemberPrefix(stored, c.uncompressedSize, c.compressedOffset), true);
    return this.#verify(blob, c, c.compressed ? decompress(blob.compressor, stored, c.uncompressedSize) : stored);
  }

  /**
   * Checks `data` against the chunk's digest with validation on, or `always`: inflated
   * gzip carries no check of its own until the end of its member.
   */
  #verify(blob: BlobInfo, c: ChunkInfo, data: Buffer, always = false): Buffer {
    if ((always || this.#validate) && !digestMatches(blob.digester, data, c.digest)) {
      this.stats.digestFailures++;
      throw new StorageError(
        'ERR_STORAGE_DIGEST_MISMATCH',
        `failed to verify chunk ${c.index} of blob ${blob.blobId} at offset ${c.compressedOffset}: ${blob.digester} digest mismatch`,
      );
    }
    return data;
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    void task.finally(() => this.#tasks.delete(task));
  }
}
