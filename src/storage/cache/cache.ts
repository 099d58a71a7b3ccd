// The contract between the chunk reader and a chunk cache, plus the counters nydusd
// reports at GET /api/v1/metrics/blobcache (docs/contract.md §6.5). A cache holds
// uncompressed chunk bytes by blob; it never fetches, decodes or verifies anything
// itself: the reader does that and tells the cache what to keep or forget.
import type { BlobInfo, ChunkInfo } from '../types.js';

/** A chunk cache covering many blobs (one per mount). */
export interface ChunkCache {
  /** Cache kind as nydusd names it (`blobcache`). */
  readonly type: string;
  readonly metrics: BlobcacheMetrics;
  /** The cache of one blob, opened on first use; undefined when the blob cannot be cached. */
  openBlob(blob: BlobInfo): Promise<BlobChunkCache | undefined>;
  /** Resolves once everything stored so far is durable (or has failed). */
  flush(): Promise<void>;
  /** Flushes, then releases files. */
  close(): Promise<void>;
}

/** The cache of one blob. Chunks are addressed by `ChunkInfo.index`. */
export interface BlobChunkCache {
  /** True when the chunk's bytes are durably in the cache and may be served. */
  isReady(chunk: ChunkInfo): boolean;
  /**
   * Reads a ready chunk into `out` (at least `uncompressedSize` long). False when the
   * bytes turned out to be missing; the chunk is then no longer ready.
   */
  read(chunk: ChunkInfo, out: Buffer): Promise<boolean>;
  /** Verified bytes of a chunk that is queued for writing but not durable yet. */
  pending(chunk: ChunkInfo): Buffer | undefined;
  /**
   * Queues verified chunks for writing. They become ready once written and synced. The
   * promise resolves when the queue accepted them; it waits while the queue is full.
   */
  store(items: readonly { chunk: ChunkInfo; data: Buffer }[]): Promise<void>;
  /** Forgets a chunk (its cached bytes failed verification). */
  evict(chunk: ChunkInfo): void;
}

/** The JSON body of `GET /api/v1/metrics/blobcache`. */
export interface BlobcacheMetricsJson {
  underlying_files: string[];
  store_path: string;
  partial_hits: number;
  whole_hits: number;
  total: number;
  entries_count: number;
  prefetch_data_amount: number;
  prefetch_requests_count: number;
  prefetch_workers: number;
  prefetch_unmerged_chunks: number;
  prefetch_cumulative_time_millis: number;
  prefetch_begin_time_secs: number;
  prefetch_begin_time_millis: number;
  prefetch_end_time_secs: number;
  prefetch_end_time_millis: number;
  buffered_backend_size: number;
  data_all_ready: boolean;
  /** Extension: cache writes (data or chunk map) that failed; the reads they belonged to were served from the backend. */
  write_errors: number;
  /** Extension: true while the last write to some blob's cache files failed (nothing new is being cached for it). */
  caching_degraded: boolean;
}

/** Prefetch counters of a cache (upstream's `prefetch_*` fields), kept by the prefetcher. */
export interface PrefetchCounters {
  /** Bytes the prefetcher fetched from the backend. */
  dataAmount: number;
  /** Backend requests made for prefetch. */
  requestsCount: number;
  workers: number;
  /** Chunks the prefetch list named. */
  unmergedChunks: number;
  cumulativeTimeMillis: number;
  /** Start and end, as seconds since the epoch plus the milliseconds within that second. */
  beginTimeSecs: number;
  beginTimeMillis: number;
  endTimeSecs: number;
  endTimeMillis: number;
}

/**
 * Cache counters. `toJSON()` is upstream's payload plus `write_errors` and
 * `caching_degraded`; the other extra fields (hits, misses, bytes, evictions, map
 * discards) are for tests and diagnostics.
 */
export class BlobcacheMetrics {
  readonly underlyingFiles = new Set<string>();
  /** Read requests all of whose chunks came from the cache. */
  wholeHits = 0;
  /** Read requests some (not all) of whose chunks came from the cache. */
  partialHits = 0;
  /** Read requests that went through the cache. */
  total = 0;
  /** Chunks served from the cache file. */
  hits = 0;
  /** Chunks that were not ready and had to be fetched. */
  misses = 0;
  bytesRead = 0;
  bytesWritten = 0;
  /** Cached chunks forgotten because their bytes failed verification or were missing. */
  evictions = 0;
  /** Chunk map files that could not be trusted and were started afresh. */
  mapDiscards = 0;
  writeErrors = 0;
  lastWriteError: string | undefined;
  /** Blobs whose last cache write failed. */
  readonly degradedBlobs = new Set<string>();
  readonly prefetch: PrefetchCounters = {
    dataAmount: 0,
    requestsCount: 0,
    workers: 0,
    unmergedChunks: 0,
    cumulativeTimeMillis: 0,
    beginTimeSecs: 0,
    beginTimeMillis: 0,
    endTimeSecs: 0,
    endTimeMillis: 0,
  };

  /** `readyState` reports, over the open blobs, chunks ready and whether all are. */
  constructor(
    readonly storePath: string,
    private readonly readyState: () => { ready: number; allReady: boolean },
  ) {}

  /** Records one read request that needed `chunks` chunks, `fromCache` of them served by the cache. */
  recordRequest(chunks: number, fromCache: number): void {
    this.total++;
    if (fromCache === chunks && chunks > 0) this.wholeHits++;
    else if (fromCache > 0) this.partialHits++;
  }

  toJSON(): BlobcacheMetricsJson {
    const { ready, allReady } = this.readyState();
    return {
      underlying_files: [...this.underlyingFiles],
      store_path: this.storePath,
      partial_hits: this.partialHits,
      whole_hits: this.wholeHits,
      total: this.total,
      entries_count: ready,
      prefetch_data_amount: this.prefetch.dataAmount,
      prefetch_requests_count: this.prefetch.requestsCount,
      prefetch_workers: this.prefetch.workers,
      prefetch_unmerged_chunks: this.prefetch.unmergedChunks,
      prefetch_cumulative_time_millis: this.prefetch.cumulativeTimeMillis,
      prefetch_begin_time_secs: this.prefetch.beginTimeSecs,
      prefetch_begin_time_millis: this.prefetch.beginTimeMillis,
      prefetch_end_time_secs: this.prefetch.endTimeSecs,
      prefetch_end_time_millis: this.prefetch.endTimeMillis,
      buffered_backend_size: 0,
      data_all_ready: allReady,
      write_errors: this.writeErrors,
      caching_degraded: this.degradedBlobs.size > 0,
    };
  }
}
