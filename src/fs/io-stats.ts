// Per-mount filesystem counters in upstream's shapes (nydus utils/src/metrics.rs
// FsIoStats; docs/contract.md §6.1–6.3): fop hits, errors and cumulative latency,
// data read with its block-size and latency distributions, open files, and, when the
// mount's config asks for them, per-inode counters, the access pattern and the set of
// files read since the last query. Fed by the FUSE session's completion hook.
import { Opcode } from '../fuse/abi.js';
import { sizeBucket } from '../util/size-bucket.js';

/** Upstream's StatsFop order: getattr 0 .. batch_forget 14. */
const FOP_OF_OPCODE = new Map<number, number>([
  [Opcode.GETATTR, 0],
  [Opcode.READLINK, 1],
  [Opcode.OPEN, 2],
  [Opcode.RELEASE, 3],
  [Opcode.READ, 4],
  [Opcode.STATFS, 5],
  [Opcode.GETXATTR, 6],
  [Opcode.LISTXATTR, 7],
  [Opcode.OPENDIR, 8],
  [Opcode.LOOKUP, 9],
  [Opcode.READDIR, 10],
  [Opcode.READDIRPLUS, 11],
  [Opcode.ACCESS, 12],
  [Opcode.FORGET, 13],
  [Opcode.BATCH_FORGET, 14],
]);
const FOPS = 15;
const BUCKETS = 8;
const READ = 4;
const OPEN = 2;
const RELEASE = 3;
/** read_latency_dist upper bounds in µs: ≤200, ≤1 ms, ≤20 ms, ≤50 ms, ≤500 ms, ≤1 s, ≤2 s, above. */
const READ_LATENCY_BOUNDS_US = [200, 1_000, 20_000, 50_000, 500_000, 1_000_000, 2_000_000];

function latencyBucket(us: number): number {
  for (let i = 0; i < READ_LATENCY_BOUNDS_US.length; i++) if (us <= READ_LATENCY_BOUNDS_US[i]) return i;
  return BUCKETS - 1;
}

/** GET /api/v1/metrics body. */
export interface FsIoStatsJson {
  files_account_enabled: boolean;
  access_pattern_enabled: boolean;
  record_latest_read_files_enabled: boolean;
  measure_latency: boolean;
  id: string;
  nr_opens: number;
  data_read: number;
  block_count_read: number[];
  fop_hits: number[];
  fop_errors: number[];
  fop_cumulative_latency_total: number[];
  read_latency_dist: number[];
}

/** One value of GET /api/v1/metrics/files. */
export interface FileStatsJson {
  total_fops: number;
  data_read: number;
  block_count_read: number[];
  fop_hits: number[];
  fop_errors: number[];
}

/** One entry of GET /api/v1/metrics/pattern. */
export interface AccessPatternJson {
  ino: number;
  nr_read: number;
  first_access_time_secs: number;
  first_access_time_nanos: number;
}

/** Which optional recordings a mount's config turns on (rafs.iostats_files, access_pattern, latest_read_files). */
export interface IoStatsOptions {
  files: boolean;
  accessPattern: boolean;
  latestReadFiles: boolean;
}

class FileCounters {
  totalFops = 0;
  dataRead = 0;
  readonly blockCountRead = new Array<number>(BUCKETS).fill(0);
  readonly hits = new Array<number>(FOPS).fill(0);
  readonly errors = new Array<number>(FOPS).fill(0);
}

interface Pattern {
  nrRead: number;
  secs: number;
  nanos: number;
}

/** The counters of one mount (keyed by its pseudo-fs mountpoint). */
export class FsIoStats {
  readonly id: string;
  readonly options: IoStatsOptions;
  nrOpens = 0;
  dataRead = 0;
  readonly blockCountRead = new Array<number>(BUCKETS).fill(0);
  readonly fopHits = new Array<number>(FOPS).fill(0);
  readonly fopErrors = new Array<number>(FOPS).fill(0);
  /** µs per fop. */
  readonly fopLatency = new Array<number>(FOPS).fill(0);
  readonly readLatencyDist = new Array<number>(BUCKETS).fill(0);
  readonly #files = new Map<number, FileCounters>();
  readonly #pattern = new Map<number, Pattern>();
  #latest = new Set<number>();

  constructor(id: string, options: IoStatsOptions) {
    this.id = id;
    this.options = options;
  }

  /** Records one served request on image inode `ino` (errno 0: success; bytes: payload sent). */
  record(opcode: number, ino: number, errno: number, latencyNs: number, bytes: number): void {
    const fop = FOP_OF_OPCODE.get(opcode);
    if (fop === undefined) return;
    const us = Math.round(latencyNs / 1000);
    this.fopLatency[fop] += us;
    const ok = errno === 0;
    if (ok) {
      this.fopHits[fop]++;
      if (fop === OPEN) this.nrOpens++;
      else if (fop === RELEASE && this.nrOpens > 0) this.nrOpens--;
    } else {
      this.fopErrors[fop]++;
    }
    if (fop === READ) {
      this.readLatencyDist[latencyBucket(us)]++;
      if (ok) {
        this.dataRead += bytes;
        this.blockCountRead[sizeBucket(bytes)]++;
        this.#recordRead(ino);
      }
    }
    if (this.options.files) this.#recordFile(ino, fop, ok, bytes);
  }

  #recordRead(ino: number): void {
    if (this.options.latestReadFiles) this.#latest.add(ino);
    if (this.options.accessPattern) {
      const p = this.#pattern.get(ino);
      if (p !== undefined) p.nrRead++;
      else {
        const now = Date.now();
        this.#pattern.set(ino, { nrRead: 1, secs: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 });
      }
    }
  }

  #recordFile(ino: number, fop: number, ok: boolean, bytes: number): void {
    let f = this.#files.get(ino);
    if (f === undefined) this.#files.set(ino, (f = new FileCounters()));
    f.totalFops++;
    if (!ok) {
      f.errors[fop]++;
      return;
    }
    f.hits[fop]++;
    if (fop === READ) {
      f.dataRead += bytes;
      f.blockCountRead[sizeBucket(bytes)]++;
    }
  }

  toJSON(): FsIoStatsJson {
    return {
      files_account_enabled: this.options.files,
      access_pattern_enabled: this.options.accessPattern,
      record_latest_read_files_enabled: this.options.latestReadFiles,
      measure_latency: true,
      id: this.id,
      nr_opens: this.nrOpens,
      data_read: this.dataRead,
      block_count_read: [...this.blockCountRead],
      fop_hits: [...this.fopHits],
      fop_errors: [...this.fopErrors],
      fop_cumulative_latency_total: [...this.fopLatency],
      read_latency_dist: [...this.readLatencyDist],
    };
  }

  /** Per-inode counters keyed by inode number (`{}` unless iostats_files is on). */
  filesJson(): Record<string, FileStatsJson> {
    const out: Record<string, FileStatsJson> = {};
    for (const [ino, f] of [...this.#files].sort((a, b) => a[0] - b[0])) {
      out[String(ino)] = {
        total_fops: f.totalFops,
        data_read: f.dataRead,
        block_count_read: [...f.blockCountRead],
        fop_hits: [...f.hits],
        fop_errors: [...f.errors],
      };
    }
    return out;
  }

  /** Regular files read since the last call, as `[start, end]` ranges or `[ino]`; clears the set. */
  takeLatestReadFiles(): number[][] {
    const inos = [...this.#latest].sort((a, b) => a - b);
    this.#latest = new Set();
    const out: number[][] = [];
    for (let i = 0; i < inos.length; ) {
      let j = i;
      while (j + 1 < inos.length && inos[j + 1] === inos[j] + 1) j++;
      out.push(j === i ? [inos[i]] : [inos[i], inos[j]]);
      i = j + 1;
    }
    return out;
  }

  /** Inodes read at least once, in inode order. */
  accessPattern(): AccessPatternJson[] {
    return [...this.#pattern]
      .sort((a, b) => a[0] - b[0])
      .map(([ino, p]) => ({ ino, nr_read: p.nrRead, first_access_time_secs: p.secs, first_access_time_nanos: p.nanos }));
  }
}
