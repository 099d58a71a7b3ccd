// The contract between the admin API (src/api) and the daemon (src/daemon): everything
// an API request may ask of nydusd. HTTP handlers only translate requests into these
// calls and results into upstream's JSON (nydus `ApiRequest`/`ApiResponse`). Reads
// answer from current state at once; writes are lifecycle events or mount-table
// changes, applied one at a time, journaled before they resolve. Failures are thrown as
// NydusError subclasses; the API maps their `code` (and `detail`) to upstream's status
// codes and message strings: `detail.event` names a refused lifecycle event (`Start`,
// `Takeover`, ...) and `detail.upstream` replaces the text inside upstream's `Other("...")`
// where clients match on it (e.g. `blob_cache: cache entry not found`).
import type { DaemonContext } from '../../machines/daemon.js';
import type { BuildInfo } from '../util/build-info.js';
import type { JournalRecord } from './journal-records.js';

/** The journal's records, as `journal()` returns them (the API redacts and serves them). */
export type { JournalRecord };

/** Body of POST/PUT /api/v1/mount (upstream `ApiMountCmd`). */
export interface MountCmd {
  source: string;
  /** "rafs" (also accepted: "passthrough", "passthroughfs", "passthrough_fs"). */
  fs_type: string;
  /** A nydusd config, legacy v1 or v2, as a JSON string. */
  config: string;
  /** Absolute paths inside the image to prefetch. */
  prefetch_files: string[] | null;
}

/** One mounted filesystem in DaemonInfo.backend_collection. */
export interface BackendEntry {
  backend_type: 'Rafs' | 'PassthroughFs';
  mountpoint: string;
  /** "YYYY-MM-DD HH:MM:SS.fffffffff +HH:MM:SS" (UTC). */
  mounted_time: string;
  /** The mount's config with secrets removed. */
  config: Record<string, unknown> | null;
}

/** Upstream's DaemonInfo (docs/contract.md §2.4), fields in upstream order. */
export interface DaemonInfo {
  version: BuildInfo;
  id: string | null;
  supervisor: string | null;
  /** INIT, READY, RUNNING, UPGRADING, INTERRUPTED, STOPPED. */
  state: string;
  /** Mounts keyed by pseudo-fs mountpoint; `{}` when none. v2 GET reports null. */
  backend_collection: Record<string, BackendEntry> | null;
}

/** GET /api/v1/daemon/events: the ring of backend read failures (§6.7). */
export interface ErrorEvents {
  max_errors: number;
  total_errors: number;
  max_size: number;
  total_size: number;
  errors: string[];
}

/** One entry of GET /api/v1/metrics/inflight (§6.6). */
export interface InflightEntry {
  inode: number;
  opcode: number;
  unique: number;
  timestamp_secs: number;
}

/** What GET /api/v1/daemon/machine reports (the project's extension). */
export interface MachineView {
  /** The machine definition as JSON: `machineGraph()` of src/daemon/diagram.ts (a LifecycleGraph). */
  definition: unknown;
  /** Reported state and the leaf state key (e.g. "READY.starting"). */
  state: string;
  stateKey: string;
  /** The machine's context (`DaemonContext`); the API redacts `config` values before answering. */
  context: DaemonContext;
  /** Recent transitions from the journal, oldest first. */
  transitions: Array<{ seq: number; time: string; from: string; to: string; event: string }>;
}

/** Which metrics set a metrics request asks for. */
export type MetricsKind = 'fs' | 'files' | 'pattern' | 'backend' | 'blobcache';

/** Query of a metrics request: `id` selects an instance; none means "the only one". */
export interface MetricsQuery {
  id?: string;
  /** files only: `latest=true` returns and clears the recently-read list. */
  latest?: boolean;
}

/** PUT /api/v2/blobs body (upstream BlobCacheEntry, §2.6). */
export interface BlobCacheEntry {
  type: 'bootstrap' | 'datablob';
  id: string;
  domain_id?: string;
  config?: Record<string, unknown>;
  config_v2?: Record<string, unknown>;
}

/** Everything the admin API can ask of the daemon. */
export interface DaemonControl {
  // Reads: answered from current state, never waiting for an event in progress.
  info(): DaemonInfo;
  errorEvents(): ErrorEvents;
  /** The RAFS superblock of the mount at `mountpoint` (upstream RafsSuperMeta JSON). */
  backendInfo(mountpoint: string): Record<string, unknown>;
  machine(): MachineView;
  /** Upstream-shaped metrics JSON for one instance; throws ERR_API_NO_COUNTER when none matches. */
  metrics(kind: MetricsKind, query: MetricsQuery): unknown;
  /** The instance ids each metrics kind has now (for exporters that walk all of them). */
  metricIds(): Record<MetricsKind, string[]>;
  /** In-flight FUSE requests; empty when idle (the API answers 204 then). */
  inflight(): InflightEntry[];
  /** GET /api/v1/config: stored keys, prefixed "<id>:" unless `id` is given. */
  getConfig(id: string | undefined): Record<string, string>;
  /**
   * GET /api/v1/daemon/journal (extension): stored journal records with seq > `sinceSeq`,
   * oldest first, at most `limit` (`readRecords(stateDir, ...)` of journal.ts). Never waits
   * for a write in progress. The API strips mount configs before answering.
   */
  journal(query: { sinceSeq: number; limit: number }): Promise<JournalRecord[]>;

  // Writes: applied one at a time, journaled (fsync'd) before they resolve.
  setLogLevel(level: string): Promise<void>;
  /** PUT /api/v1/daemon/start: START (READY -> RUNNING). */
  start(): Promise<void>;
  /** PUT /api/v1/daemon/exit: upstream's trigger_exit; the process exits afterwards, leaving the FUSE mount. */
  exit(): Promise<void>;
  /** PUT /api/v1/daemon/fuse/sendfd: save state and fd to the supervisor. */
  sendFd(): Promise<void>;
  /** PUT /api/v1/daemon/fuse/takeover: TAKEOVER (INIT -> UPGRADING -> READY). */
  takeover(): Promise<void>;
  mount(mountpoint: string, cmd: MountCmd): Promise<void>;
  remount(mountpoint: string, cmd: MountCmd): Promise<void>;
  umount(mountpoint: string): Promise<void>;
  /** PUT /api/v1/config: keys registry_auth, proxy_url, dragonfly_scheduler_endpoint. */
  putConfig(id: string, values: Record<string, string>): Promise<void>;
  /** PUT /api/v2/blobs. */
  addBlob(entry: BlobCacheEntry): Promise<void>;
  /** DELETE /api/v2/blobs. */
  deleteBlobs(query: { domain_id?: string; blob_id?: string }): Promise<void>;
  /** GET /api/v2/blobs (erofs fs driver): the blob objects of one image. */
  blobObjects(query: { domain_id: string; blob_id?: string }): Promise<BlobObject[]>;
}

/** One blob of an image served with the erofs fs driver (GET /api/v2/blobs; upstream leaves this route unimplemented). */
export interface BlobObject {
  domain_id: string;
  blob_id: string;
  /** Host path of the image's erofs mount. */
  mountpoint: string;
  /** Size of the blob view: the uncompressed address space, rounded up to 4 KiB. */
  blob_size: number;
  compressed_size: number;
  /** The view file the loop device reads (null until the image is in the kernel). */
  view_path: string | null;
  loop_device: string | null;
  direct_io: boolean;
  /** Bytes of the blob's chunks ready in the blobcache. */
  cached_bytes: number;
}
