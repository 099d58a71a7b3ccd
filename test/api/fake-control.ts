// A DaemonControl double for the API tests: a mount table, config store, blob entries
// and upstream-shaped metrics in memory, lifecycle moves computed from the real machine
// definition (machines/daemon-table.ts), and a real Journal when given a directory.
// Writes can be held at a gate to prove reads never wait for them.
import type {
  BlobCacheEntry,
  BlobObject,
  DaemonControl,
  DaemonInfo,
  ErrorEvents,
  InflightEntry,
  MachineView,
  MetricsKind,
  MetricsQuery,
  MountCmd,
} from '../../src/daemon/control.js';
import { machineGraph } from '../../src/daemon/diagram.js';
import { Journal, readRecords } from '../../src/daemon/journal.js';
import type { JournalEntry, JournalRecord } from '../../src/daemon/journal.js';
import { ApiError, DaemonError } from '../../src/errors.js';
import { eventOutcome, triggerPath } from '../../machines/daemon-table.js';
import { initialContext, type DaemonEventType } from '../../machines/daemon.js';
import { buildInfo } from '../../src/util/build-info.js';

/** Options of the fake. */
export interface FakeOptions {
  /** Leaf state to start in (default `READY.idle`). */
  stateKey?: string;
  /** `singleton` answers inflight with 501, like a daemon without a FUSE service. */
  mode?: 'fusedev' | 'singleton';
  /** Journal directory: every write is appended there, as the real controller does. */
  journal?: Journal;
}

const zeros = (n: number) => new Array<number>(n).fill(0);

function fsMetrics(id: string, reads: number) {
  return {
    files_account_enabled: false,
    access_pattern_enabled: true,
    record_latest_read_files_enabled: false,
    measure_latency: true,
    id,
    nr_opens: 0,
    data_read: reads * 4096,
    block_count_read: [0, 0, reads, 0, 0, 0, 0, 0],
    fop_hits: zeros(15).map((_, i) => (i === 4 ? reads : 0)),
    fop_errors: zeros(15),
    fop_cumulative_latency_total: zeros(15),
    read_latency_dist: [reads, 0, 0, 0, 0, 0, 0, 0],
  };
}

function backendMetrics(reads: number) {
  return {
    backend_type: 'localfs',
    read_count: reads,
    read_errors: 0,
    read_amount_total: reads * 4096,
    read_cumulative_latency_millis_total: 0,
    read_cumulative_latency_millis_dist: zeros(8),
    read_count_block_size_dist: zeros(8),
    read_latency_sizes_dist: zeros(8).map(() => zeros(8)),
  };
}

function blobcacheMetrics(id: string) {
  return {
    underlying_files: [`/var/cache/${id.replace(/\//g, '_')}.blob.data`],
    store_path: '/var/cache',
    partial_hits: 0,
    whole_hits: 1,
    total: 1,
    entries_count: 1,
    prefetch_data_amount: 0,
    prefetch_requests_count: 0,
    prefetch_workers: 0,
    prefetch_unmerged_chunks: 0,
    prefetch_cumulative_time_millis: 0,
    prefetch_begin_time_secs: 0,
    prefetch_begin_time_millis: 0,
    prefetch_end_time_secs: 0,
    prefetch_end_time_millis: 0,
    buffered_backend_size: 0,
    data_all_ready: false,
  };
}

/** The fake daemon. Public fields are for tests to look at and set. */
export class FakeControl implements DaemonControl {
  stateKey: string;
  readonly mode: 'fusedev' | 'singleton';
  readonly mounts = new Map<string, { cmd: MountCmd; time: string }>();
  readonly configStore = new Map<string, string>();
  readonly blobs = new Map<string, BlobCacheEntry>();
  readonly transitions: MachineView['transitions'] = [];
  inflightList: InflightEntry[] = [];
  logLevel = 'info';
  reads = 0;
  /** Every call, in order (`mount /x`, `start`, ...). */
  readonly calls: string[] = [];
  /** While set, every write waits for it before doing anything. */
  gate: Promise<void> | null = null;
  /** Thrown by the next write instead of doing it. */
  failNext: Error | null = null;
  readonly #journal: Journal | undefined;
  #writes: Promise<unknown> = Promise.resolve();
  #seq = 0;

  constructor(opts: FakeOptions = {}) {
    this.stateKey = opts.stateKey ?? 'READY.idle';
    this.mode = opts.mode ?? 'fusedev';
    this.#journal = opts.journal;
  }

  get state(): string {
    return this.stateKey.split('.')[0];
  }

  // ---- reads ----
  info(): DaemonInfo {
    const backend_collection: DaemonInfo['backend_collection'] = {};
    for (const [mp, m] of this.mounts) {
      backend_collection[mp] = { backend_type: 'Rafs', mountpoint: mp, mounted_time: m.time, config: { id: mp, backend: { type: 'localfs' } } };
    }
    return { version: buildInfo(), id: 'fake', supervisor: null, state: this.state, backend_collection: this.mode === 'singleton' ? null : backend_collection };
  }
  errorEvents(): ErrorEvents {
    return { max_errors: 500, total_errors: 0, max_size: 51200, total_size: 0, errors: [] };
  }
  backendInfo(mountpoint: string): Record<string, unknown> {
    if (!this.mounts.has(mountpoint)) throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to read superblock of ${mountpoint}: not mounted`);
    return fakeSuperblock();
  }
  machine(): MachineView {
    return { definition: machineGraph(), state: this.state, stateKey: this.stateKey, context: { ...initialContext(), config: Object.fromEntries(this.configStore) }, transitions: [...this.transitions] };
  }
  #instance(id: string | undefined): string {
    const ids = [...this.mounts.keys()];
    if (id === undefined && ids.length === 1) return ids[0];
    if (id !== undefined && this.mounts.has(id)) return id;
    throw new ApiError('ERR_API_NO_COUNTER', `failed to read metrics${id === undefined ? '' : ` of ${id}`}: no such counter`);
  }
  metrics(kind: MetricsKind, query: MetricsQuery): unknown {
    const id = this.#instance(query.id);
    switch (kind) {
      case 'fs':
        return fsMetrics(id, this.reads);
      case 'files':
        return query.latest ? [[1, 3], [7]] : { '2': { total_fops: 1, data_read: 4096, block_count_read: zeros(8), fop_hits: zeros(15), fop_errors: zeros(15) } };
      case 'pattern':
        return [{ ino: 2, nr_read: 1, first_access_time_secs: 1700000000, first_access_time_nanos: 5 }];
      case 'backend':
        return backendMetrics(this.reads);
      case 'blobcache':
        return blobcacheMetrics(id);
    }
  }
  metricIds(): Record<MetricsKind, string[]> {
    const ids = [...this.mounts.keys()];
    return { fs: ids, files: ids, pattern: ids, backend: ids, blobcache: ids };
  }
  inflight(): InflightEntry[] {
    if (this.mode === 'singleton') throw new DaemonError('ERR_DAEMON_UNSUPPORTED', 'failed to list in-flight requests: no FUSE service');
    return this.inflightList;
  }
  getConfig(id: string | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of this.configStore) {
      if (id === undefined) out[k] = v;
      else if (k.startsWith(`${id}:`)) out[k.slice(id.length + 1)] = v;
    }
    return out;
  }
  async journal(query: { sinceSeq: number; limit: number }): Promise<JournalRecord[]> {
    if (this.#journal === undefined) return [];
    return readRecords(this.#journal.dir, query);
  }

  // ---- writes: one at a time, like the controller ----
  #write(name: string, work: () => Promise<void> | void): Promise<void> {
    const run = this.#writes.then(async () => {
      this.calls.push(name);
      if (this.gate) await this.gate;
      const fail = this.failNext;
      this.failNext = null;
      if (fail) throw fail;
      await work();
    });
    this.#writes = run.catch(() => {});
    return run;
  }
  async #append(entry: JournalEntry): Promise<void> {
    await this.#journal?.append(entry);
  }
  async #send(type: DaemonEventType): Promise<void> {
    const out = eventOutcome(this.stateKey, type);
    if (!out.accepted) {
      throw new DaemonError('ERR_DAEMON_UNEXPECTED_EVENT', `failed to handle ${type} in ${this.stateKey}: event refused`, { detail: { event: type } });
    }
    await this.#append({ type: 'event', event: type, reason: 'api', state: this.stateKey });
    await this.#move(out.next, type);
    // The actor of the busy state succeeds at once.
    if (out.actor !== undefined && out.onDone !== undefined) await this.#move(out.onDone, `xstate.done.actor.${out.actor}`);
  }
  async #move(to: string, event: string): Promise<void> {
    const step = { seq: ++this.#seq, time: new Date().toISOString(), from: this.stateKey, to, event };
    await this.#append({ type: 'transition', from: step.from, to, event });
    this.transitions.push(step);
    this.stateKey = to;
  }
  setLogLevel(level: string): Promise<void> {
    return this.#write(`log-level ${level}`, async () => {
      this.logLevel = level;
      await this.#append({ type: 'log-level', level });
    });
  }
  start(): Promise<void> {
    return this.#write('start', () => this.#send('START'));
  }
  exit(): Promise<void> {
    return this.#write('exit', async () => {
      // The machine carries the trigger through its actors; nothing to do once STOPPED.
      if ((triggerPath('TRIGGER_EXIT', this.stateKey) ?? []).length > 0) await this.#send('TRIGGER_EXIT');
    });
  }
  sendFd(): Promise<void> {
    return this.#write('sendfd', () => {
      if (this.state !== 'RUNNING' && this.state !== 'READY') throw new DaemonError('ERR_DAEMON_NOT_READY', 'failed to send the FUSE fd: no FUSE connection yet');
    });
  }
  takeover(): Promise<void> {
    return this.#write('takeover', () => this.#send('TAKEOVER'));
  }
  mount(mountpoint: string, cmd: MountCmd): Promise<void> {
    return this.#write(`mount ${mountpoint}`, async () => {
      if (this.mounts.has(mountpoint)) throw new DaemonError('ERR_DAEMON_MOUNT_EXISTS', `failed to mount ${mountpoint}: already mounted`);
      this.mounts.set(mountpoint, { cmd, time: '2024-01-02 03:04:05.000000006 +00:00:00' });
      await this.#append({ type: 'mount', mountpoint, source: cmd.source, config: cmd.config, fsType: cmd.fs_type, prefetchFiles: cmd.prefetch_files, index: null });
    });
  }
  remount(mountpoint: string, cmd: MountCmd): Promise<void> {
    return this.#write(`remount ${mountpoint}`, () => {
      const m = this.mounts.get(mountpoint);
      if (m === undefined) throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to remount ${mountpoint}: not mounted`);
      m.cmd = cmd;
    });
  }
  umount(mountpoint: string): Promise<void> {
    return this.#write(`umount ${mountpoint}`, async () => {
      if (!this.mounts.delete(mountpoint)) throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to umount ${mountpoint}: not mounted`);
      await this.#append({ type: 'umount', mountpoint });
    });
  }
  putConfig(id: string, values: Record<string, string>): Promise<void> {
    return this.#write(`config ${id}`, () => {
      for (const [k, v] of Object.entries(values)) this.configStore.set(`${id}:${k}`, v);
    });
  }
  /** As a fusedev daemon: no blob views. */
  async blobObjects(): Promise<BlobObject[]> {
    throw new DaemonError('ERR_DAEMON_UNSUPPORTED', 'failed to list blob objects: a fusedev daemon has no blob views');
  }
  addBlob(entry: BlobCacheEntry): Promise<void> {
    return this.#write(`add-blob ${entry.id}`, () => {
      const key = `${entry.domain_id ?? ''}/${entry.id}`;
      if (this.blobs.has(key)) throw new DaemonError('ERR_DAEMON_MOUNT_EXISTS', `failed to add blob ${entry.id}: exists`, { detail: { upstream: 'blob_cache: bootstrap blob already exists' } });
      this.blobs.set(key, entry);
    });
  }
  deleteBlobs(query: { domain_id?: string; blob_id?: string }): Promise<void> {
    return this.#write(`delete-blobs ${query.domain_id ?? '-'} ${query.blob_id ?? '-'}`, () => {
      if (query.domain_id === undefined) return;
      const keys = [...this.blobs.keys()].filter((k) => k.startsWith(`${query.domain_id}/`) && (query.blob_id === undefined || k.endsWith(`/${query.blob_id}`)));
      if (keys.length === 0) {
        throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to delete blob cache entry: not found`, { detail: { upstream: 'blob_cache: cache entry not found' } });
      }
      for (const k of keys) this.blobs.delete(k);
    });
  }
}

/** A RafsSuperMeta-shaped object (docs/contract.md §7.1). */
export function fakeSuperblock(): Record<string, unknown> {
  return {
    magic: 0x5241_4653,
    version: 0x500,
    sb_size: 8192,
    root_inode: 1,
    chunk_size: 1048576,
    inodes_count: 10,
    flags: { bits: 0x52 },
    inode_table_entries: 10,
    inode_table_offset: 8192,
    blob_table_size: 100,
    blob_table_offset: 9000,
    extended_blob_table_offset: 0,
    extended_blob_table_entries: 0,
    prefetch_table_offset: 0,
    prefetch_table_entries: 0,
    attr_timeout: { secs: 1, nanos: 0 },
    entry_timeout: { secs: 1, nanos: 0 },
    is_chunk_dict: false,
    meta_blkaddr: 0,
    root_nid: 0,
    chunk_table_offset: 0,
    chunk_table_size: 0,
  };
}
