// The storage backend contract: where blob bytes come from (a local directory today, a
// registry or HTTP proxy later), plus the per-backend read counters nydusd reports at
// GET /api/v1/metrics/backend (docs/contract.md §6.4). A backend only moves bytes; it
// knows nothing about chunks, codecs, digests or caches.
import { performance } from 'node:perf_hooks';
import { sizeBucket } from '../../util/size-bucket.js';

/**
 * A source of blob bytes. Every method is async and takes an optional AbortSignal.
 * Network backends retry transient failures themselves (their `retry_limit`); whatever
 * they throw is final for that call: a StorageError with `ERR_STORAGE_BLOB_NOT_FOUND`,
 * `ERR_STORAGE_SHORT_READ` or `ERR_STORAGE_BACKEND`, or the signal's reason.
 */
export interface BlobBackend {
  /** Backend kind as nydusd names it (`localfs`, `registry`, `http-proxy`). */
  readonly type: string;
  readonly metrics: BackendMetrics;
  /** Size of a blob in bytes. */
  blobSize(blobId: string, signal?: AbortSignal): Promise<number>;
  /**
   * Fills all of `buf` with the blob's bytes starting at `offset`. A blob that ends first
   * is `ERR_STORAGE_SHORT_READ`; partial data is never reported as success.
   */
  read(blobId: string, buf: Uint8Array, offset: number, signal?: AbortSignal): Promise<void>;
  /**
   * Replaces the credentials (base64 `user:password`, `PUT /api/v1/config`
   * `registry_auth`) from the next request on. Only backends that authenticate have it.
   */
  setAuth?(auth: string | undefined): void;
  /** Releases handles and connections; later calls fail. */
  close(): Promise<void>;
}

/** Number of size and latency buckets in upstream's backend metrics. */
const BUCKETS = 8;
/** Latency bucket upper bounds in ms: ≤1, ≤20, ≤50, ≤100, ≤500, ≤1000, ≤2000, >2000. */
const LATENCY_BOUNDS_MS = [1, 20, 50, 100, 500, 1000, 2000];

function latencyBucket(ms: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (ms <= LATENCY_BOUNDS_MS[i]) return i;
  return BUCKETS - 1;
}

/** The JSON body of `GET /api/v1/metrics/backend`. */
export interface BackendMetricsJson {
  backend_type: string;
  read_count: number;
  read_errors: number;
  read_amount_total: number;
  read_cumulative_latency_millis_total: number;
  read_cumulative_latency_millis_dist: number[];
  read_count_block_size_dist: number[];
  read_latency_sizes_dist: number[][];
}

/** Read counters of one backend instance. */
export class BackendMetrics {
  readCount = 0;
  readErrors = 0;
  /** Bytes delivered by successful reads. */
  readAmountTotal = 0;
  readLatencyMillisTotal = 0;
  readonly latencyDist = new Array<number>(BUCKETS).fill(0);
  readonly blockSizeDist = new Array<number>(BUCKETS).fill(0);
  readonly latencySizesDist: number[][] = Array.from({ length: BUCKETS }, () => new Array<number>(BUCKETS).fill(0));

  constructor(readonly backendType: string) {}

  /** Records one finished read of `size` requested bytes that took `elapsedMs`. */
  record(size: number, elapsedMs: number, ok: boolean): void {
    const lat = latencyBucket(elapsedMs);
    const sz = sizeBucket(size);
    this.readCount++;
    if (ok) this.readAmountTotal += size;
    else this.readErrors++;
    this.readLatencyMillisTotal += Math.round(elapsedMs);
    this.latencyDist[lat]++;
    this.blockSizeDist[sz]++;
    this.latencySizesDist[sz][lat]++;
  }

  /** Runs one read of `size` requested bytes and records it: as failed when `read` throws. */
  async timed<T>(size: number, read: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      const out = await read();
      this.record(size, performance.now() - start, true);
      return out;
    } catch (err) {
      this.record(size, performance.now() - start, false);
      throw err;
    }
  }

  /** Upstream's payload shape (the instance id is not serialized, as upstream). */
  toJSON(): BackendMetricsJson {
    return {
      backend_type: this.backendType,
      read_count: this.readCount,
      read_errors: this.readErrors,
      read_amount_total: this.readAmountTotal,
      read_cumulative_latency_millis_total: this.readLatencyMillisTotal,
      read_cumulative_latency_millis_dist: [...this.latencyDist],
      read_count_block_size_dist: [...this.blockSizeDist],
      read_latency_sizes_dist: this.latencySizesDist.map((row) => [...row]),
    };
  }
}
