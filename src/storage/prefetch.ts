// Background prefetch of one mount: a queue of chunks (prefetch-list.ts) cut into
// batches of at most `batch_size` bytes of one blob, fetched into the cache by
// `threads` workers through ChunkReader.prefetch(). User reads come first: right before
// each request a worker waits while any foreground fetch is in flight, and a chunk a
// user needs is fetched by the user's read at once (never queued here). The
// `bandwidth_limit` caps prefetch bytes per second (a token bucket). stop() (umount,
// exit) aborts the queue and waits for the workers. Counters go to the cache's
// `prefetch_*` metrics (docs/contract.md §6.5).
import type { PrefetchCounters } from './cache/cache.js';
import type { ChunkInfo } from './types.js';
import type { ChunkReader } from './chunk-reader.js';
import { abortable } from '../util/abortable.js';
import { setTimeout as delay } from 'node:timers/promises';

export interface PrefetcherOptions {
  /** Worker count (`threads` / v1 `threads_count`). */
  threads: number;
  /** Bytes per merged prefetch request (`batch_size` / v1 `merging_size`). */
  batchSize: number;
  /** Bytes per second; 0 = unlimited (`bandwidth_limit` / v1 `bandwidth_rate`). */
  bandwidthLimit: number;
  /** Where to keep upstream's prefetch counters (the cache's metrics); optional. */
  counters?: PrefetchCounters;
  /** The time the bandwidth limit reads and waits on; the system's unless a test passes its own. */
  clock?: Clock;
}

/** Monotonic milliseconds and a way to wait for them. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`; rejects when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => delay(ms, undefined, { signal }),
};

/** Progress of one prefetcher. */
export interface PrefetchStats {
  batches: number;
  chunks: number;
  fetched: number;
  skipped: number;
  failed: number;
  /** Times a worker waited for user reads to finish. */
  yields: number;
}

/** A token bucket over bytes: take(n) waits until n bytes fit the rate. */
export class TokenBucket {
  #tokens: number;
  #last: number;
  constructor(
    readonly rate: number,
    readonly burst: number,
    readonly clock: Clock = systemClock,
  ) {
    this.#tokens = burst;
    this.#last = clock.now();
  }

  async take(n: number, signal?: AbortSignal): Promise<void> {
    if (this.rate <= 0) return;
    for (;;) {
      const now = this.clock.now();
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
      this.#last = now;
      // A request larger than the burst goes out once the bucket is full.
      const need = Math.min(n, this.burst);
      if (this.#tokens >= need) {
        this.#tokens -= n;
        return;
      }
      await this.clock.sleep(Math.ceil(((need - this.#tokens) / this.rate) * 1000), signal);
    }
  }
}

/** Cuts `chunks` (in order) into runs of one blob spanning at most `batchSize` stored bytes. */
export function batchChunks(chunks: readonly ChunkInfo[], batchSize: number): ChunkInfo[][] {
  const out: ChunkInfo[][] = [];
  let cur: ChunkInfo[] = [];
  let start = 0;
  for (const c of chunks) {
    const end = c.compressedOffset + c.compressedSize;
    const fits =
      cur.length > 0 &&
      c.blobIndex === cur[0].blobIndex &&
      c.compressedOffset >= start &&
      end - start <= Math.max(batchSize, cur[0].compressedSize);
    if (!fits) {
      if (cur.length > 0) out.push(cur);
      cur = [];
      start = c.compressedOffset;
    }
    cur.push(c);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** The background prefetch of one mount. */
export class Prefetcher {
  readonly stats: PrefetchStats = { batches: 0, chunks: 0, fetched: 0, skipped: 0, failed: 0, yields: 0 };
  readonly #reader: ChunkReader;
  readonly #opts: PrefetcherOptions;
  readonly #abort = new AbortController();
  readonly #bucket: TokenBucket;
  #done: Promise<void> = Promise.resolve();
  #running = false;

  constructor(reader: ChunkReader, opts: PrefetcherOptions) {
    this.#reader = reader;
    this.#opts = { ...opts, threads: Math.max(1, opts.threads), batchSize: Math.max(1, opts.batchSize) };
    // The burst is one request, so a limit below the request size still lets requests through.
    this.#bucket = new TokenBucket(opts.bandwidthLimit, Math.max(opts.bandwidthLimit, this.#opts.batchSize), opts.clock);
  }

  /** Whether workers are running. */
  get running(): boolean {
    return this.#running;
  }

  /** Resolves when every batch is done, or after stop(). */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Starts fetching `chunks` in the background; call once. */
  start(chunks: readonly ChunkInfo[]): void {
    if (this.#running || this.#abort.signal.aborted) return;
    const batches = batchChunks(chunks, this.#opts.batchSize);
    const c = this.#opts.counters;
    const begin = Date.now();
    if (c !== undefined) {
      c.workers = this.#opts.threads;
      c.unmergedChunks += chunks.length;
      c.beginTimeSecs = Math.floor(begin / 1000);
      c.beginTimeMillis = begin % 1000;
    }
    // One prefetcher per reader: the reader's prefetch totals since now are ours.
    const base = { reads: this.#reader.stats.prefetchReads, bytes: this.#reader.stats.prefetchBytes };
    const before = { reads: c?.requestsCount ?? 0, bytes: c?.dataAmount ?? 0 };
    const sync = (): void => {
      if (c === undefined) return;
      c.requestsCount = before.reads + this.#reader.stats.prefetchReads - base.reads;
      c.dataAmount = before.bytes + this.#reader.stats.prefetchBytes - base.bytes;
    };
    this.#running = true;
    let next = 0;
    const worker = async (): Promise<void> => {
      const signal = this.#abort.signal;
      while (!signal.aborted && next < batches.length) {
        const batch = batches[next++];
        const bytes = batch[batch.length - 1].compressedOffset + batch[batch.length - 1].compressedSize - batch[0].compressedOffset;
        await this.#bucket.take(bytes, signal);
        // Right before the request: user reads in flight go first.
        while (this.#reader.foregroundFetches > 0) {
          this.stats.yields++;
          await abortable(this.#reader.whenForegroundIdle(), signal);
        }
        const r = await this.#reader.prefetch(batch, this.#opts.batchSize, signal);
        this.stats.batches++;
        this.stats.chunks += batch.length;
        this.stats.fetched += r.fetched;
        this.stats.skipped += r.skipped;
        this.stats.failed += r.failed;
        sync();
      }
    };
    this.#done = Promise.allSettled(Array.from({ length: this.#opts.threads }, worker)).then(() => {
      this.#running = false;
      sync();
      if (c !== undefined) {
        const end = Date.now();
        c.endTimeSecs = Math.floor(end / 1000);
        c.endTimeMillis = end % 1000;
        c.cumulativeTimeMillis += end - begin;
      }
    });
  }

  /** Stops prefetching (umount, exit) and waits for the workers to finish. */
  async stop(): Promise<void> {
    this.#abort.abort(new Error('prefetch stopped'));
    await this.#done;
  }
}
