// The daemon's event journal: append-only JSON lines in a state directory, each
// append fsync'd before it resolves (concurrent appends share one fsync), compacted
// into a snapshot record plus a new segment once it grows past a threshold. Replay
// folds the live segment with the same `reduce` the running journal uses. It must
// never block the event loop (async I/O only) nor hold more than one segment in memory.
import { EventEmitter } from 'node:events';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonError } from '../errors.js';
import { acquireLock, fsyncDir, journalIoError, readLatestSegment, removeStaleFiles, segmentName } from './journal-files.js';
import { emptyJournalState, parseRecord, reduce, serializeState } from './journal-records.js';
import type { JournalEntry, JournalRecord, JournalState } from './journal-records.js';

export * from './journal-records.js';

/** Options of Journal.open. */
export interface JournalOptions {
  /**
   * Compact once the live segment holds this many bytes beyond its snapshot record
   * (default 1 MiB). The journal's size on disk stays below about snapshot + this + one batch.
   */
  compactBytes?: number;
}

const DEFAULT_COMPACT_BYTES = 1 << 20;

interface Pending {
  entry: JournalEntry;
  resolve: (r: JournalRecord) => void;
  reject: (e: Error) => void;
}

/** The state a journal directory replays to. */
export async function replay(dir: string): Promise<JournalState> {
  const latest = await readLatestSegment(dir);
  return latest === null ? emptyJournalState() : latest.parsed.records.reduce(reduce, emptyJournalState());
}

/**
 * The stored records with seq greater than `sinceSeq`, oldest first (at most `limit`).
 * Records compacted away are summarised by the snapshot record that replaced them.
 */
export async function readRecords(dir: string, opts: { sinceSeq?: number; limit?: number } = {}): Promise<JournalRecord[]> {
  const since = opts.sinceSeq ?? 0;
  const latest = await readLatestSegment(dir);
  if (latest === null) return [];
  const out = latest.parsed.records.filter((r) => r.seq > since);
  return opts.limit === undefined ? out : out.slice(0, opts.limit);
}

/** An open journal: the only writer of its directory while it is open. */
export class Journal {
  readonly dir: string;
  readonly #compactBytes: number;
  #fh: FileHandle;
  #generation: number;
  #size: number;
  #baseBytes: number;
  #state: JournalState;
  #queue: Pending[] = [];
  #flushing = false;
  #drained: Promise<void> = Promise.resolve();
  #failed: DaemonError | null = null;
  #closed = false;
  #compactionError: Error | null = null;
  #compactRetryAt = 0;
  readonly #events = new EventEmitter();
  readonly #release: () => Promise<void>;

  private constructor(
    dir: string,
    fh: FileHandle,
    generation: number,
    size: number,
    baseBytes: number,
    state: JournalState,
    compactBytes: number,
    release: () => Promise<void>,
  ) {
    this.dir = dir;
    this.#fh = fh;
    this.#generation = generation;
    this.#size = size;
    this.#baseBytes = baseBytes;
    this.#state = state;
    this.#compactBytes = compactBytes;
    this.#release = release;
    this.#events.setMaxListeners(0);
  }

  /**
   * Opens (creating if needed, mode 0700/0600) the journal in `dir`, replays it and takes
   * the writer lock. A torn last line is cut off; corruption before it throws.
   */
  static async open(dir: string, options: JournalOptions = {}): Promise<Journal> {
    const compactBytes = options.compactBytes ?? DEFAULT_COMPACT_BYTES;
    if (!(Number.isSafeInteger(compactBytes) && compactBytes > 0)) {
      throw new DaemonError('ERR_DAEMON_JOURNAL', `failed to open journal ${dir}: bad compactBytes ${compactBytes}`);
    }
    await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err) => {
      throw journalIoError('create', dir, err);
    });
    const release = await acquireLock(dir);
    try {
      const latest = await readLatestSegment(dir);
      const generation = latest?.generation ?? 1;
      const path = join(dir, segmentName(generation));
      let fh: FileHandle | undefined;
      try {
        fh = await open(path, 'a', 0o600);
        await fh.chmod(0o600);
        if (latest === null) await fsyncDir(dir);
        else if (latest.parsed.torn) {
          // Appending after a torn line would glue the next record to it.
          await fh.truncate(latest.parsed.goodLength);
          await fh.datasync();
        }
      } catch (err) {
        await fh?.close().catch(() => {});
        throw journalIoError('open', path, err);
      }
      await removeStaleFiles(dir, generation);
      const records = latest?.parsed.records ?? [];
      const state = records.reduce(reduce, emptyJournalState());
      const first = records[0];
      const baseBytes = first?.type === 'snapshot' ? Buffer.byteLength(JSON.stringify(first)) + 1 : 0;
      const size = latest?.parsed.goodLength ?? 0;
      return new Journal(dir, fh, generation, size, baseBytes, state, compactBytes, release);
    } catch (err) {
      await release();
      throw err;
    }
  }

  /** The fold of every durable record: what a replay would give now. */
  get state(): JournalState {
    return this.#state;
  }

  /** The seq of the last durable record (0 for an empty journal). */
  get lastSeq(): number {
    return this.#state.lastSeq;
  }

  /** Bytes in the live segment. */
  get size(): number {
    return this.#size;
  }

  /** The last compaction failure that left the journal usable (appends continue in the old segment). */
  get compactionError(): Error | null {
    return this.#compactionError;
  }

  /**
   * Appends one record and resolves with it (seq and time filled in) once it is written
   * and fsync'd. Records are stored in call order. After a write or fsync failure the
   * journal refuses every further append: what reached the disk is no longer known.
   */
  append(entry: JournalEntry): Promise<JournalRecord> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.reject(new DaemonError('ERR_DAEMON_JOURNAL', `failed to append to journal ${this.dir}: closed`));
    return new Promise((resolve, reject) => {
      this.#queue.push({ entry, resolve, reject });
      if (!this.#flushing) this.#drained = this.#flushLoop();
    });
  }

  async #flushLoop(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0);
        const committed = await this.#commit(batch);
        if (committed === null) return;
        if (committed.length > 0) this.#events.emit('commit', committed);
        if (this.#size - this.#baseBytes > this.#compactBytes && this.#size >= this.#compactRetryAt) await this.#compact();
      }
    } finally {
      this.#flushing = false;
    }
  }

  /**
   * Writes one batch with a single write and a single fsync. Each record is checked with
   * the replay parser first, so nothing is stored that a replay would refuse; a bad
   * entry is rejected alone. Null when the journal failed.
   */
  async #commit(batch: Pending[]): Promise<JournalRecord[] | null> {
    const time = new Date().toISOString();
    let seq = this.#state.lastSeq;
    const records: JournalRecord[] = [];
    const accepted: Pending[] = [];
    let text = '';
    for (const p of batch) {
      try {
        if (p.entry.type === 'snapshot') throw new Error('snapshot records are written by compaction only');
        // seq and time lead the line and cannot be overridden by the entry.
        const line = JSON.stringify(Object.assign({ seq: seq + 1, time }, p.entry, { seq: seq + 1, time }));
        records.push(parseRecord(line));
        text += line + '\n';
        accepted.push(p);
        seq++;
      } catch (err) {
        p.reject(new DaemonError('ERR_DAEMON_JOURNAL', `failed to append journal record: ${(err as Error).message}`));
      }
    }
    if (records.length === 0) return records;
    const buf = Buffer.from(text);
    try {
      await writeAll(this.#fh, buf);
      await this.#fh.datasync();
    } catch (err) {
      this.#fail(journalIoError('append to', join(this.dir, segmentName(this.#generation)), err), accepted);
      return null;
    }
    this.#size += buf.length;
    let state = this.#state;
    for (const r of records) state = reduce(state, r);
    this.#state = state;
    accepted.forEach((p, i) => p.resolve(records[i]));
    return records;
  }

  #fail(err: DaemonError, batch: Pending[]): void {
    this.#failed = err;
    for (const p of [...batch, ...this.#queue.splice(0)]) p.reject(err);
    this.#events.emit('end');
  }

  /**
   * Writes the reduced state as a snapshot record into a new segment (temp file, fsync,
   * rename, fsync dir) and drops the old one. Before the rename a failure leaves the old
   * segment live; after it, the new segment is what replay reads, so a failure there
   * fails the journal.
   */
  async #compact(): Promise<void> {
    const generation = this.#generation + 1;
    const record: JournalRecord = {
      seq: this.#state.lastSeq + 1,
      time: new Date().toISOString(),
      type: 'snapshot',
      state: serializeState({ ...this.#state, lastSeq: this.#state.lastSeq + 1 }),
    };
    const buf = Buffer.from(JSON.stringify(record) + '\n');
    const path = join(this.dir, segmentName(generation));
    const tmp = path + '.tmp';
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        await writeAll(fh, buf);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      this.#compactionError = journalIoError('compact', tmp, err);
      this.#compactRetryAt = this.#size + this.#compactBytes;
      return;
    }
    const oldPath = join(this.dir, segmentName(this.#generation));
    try {
      await fsyncDir(this.dir);
      const fh = await open(path, 'a', 0o600);
      await this.#fh.close().catch(() => {});
      this.#fh = fh;
    } catch (err) {
      this.#fail(journalIoError('compact', path, err), []);
      return;
    }
    await unlink(oldPath).catch(() => {});
    this.#generation = generation;
    this.#size = buf.length;
    this.#baseBytes = buf.length;
    this.#compactRetryAt = 0;
    this.#compactionError = null;
    this.#state = reduce(this.#state, record);
    this.#events.emit('commit', [record]);
  }

  /** Compacts now (after pending appends), whatever the size. */
  async compact(): Promise<void> {
    // No await between the last check of #flushing and taking it: nothing may slip in.
    while (this.#flushing) await this.#drained;
    if (this.#failed) throw this.#failed;
    const run = (async () => {
      this.#flushing = true;
      try {
        await this.#compact();
      } finally {
        this.#flushing = false;
      }
    })();
    this.#drained = run;
    await run;
    if (this.#queue.length > 0 && !this.#flushing) this.#drained = this.#flushLoop();
    if (this.#failed) throw this.#failed;
    if (this.#compactionError) throw this.#compactionError;
  }

  /**
   * Yields stored records with seq > `sinceSeq`, then every record as it becomes durable,
   * until `signal` aborts or the journal closes. Seqs are strictly increasing; a gap means
   * compaction replaced records, and the snapshot record that did so is yielded.
   */
  async *follow(opts: { sinceSeq?: number; signal?: AbortSignal } = {}): AsyncGenerator<JournalRecord> {
    const { signal } = opts;
    let last = opts.sinceSeq ?? 0;
    const pending: JournalRecord[] = [];
    let wake: (() => void) | null = null;
    let ended = this.#closed || this.#failed !== null;
    const onCommit = (rs: JournalRecord[]) => {
      pending.push(...rs);
      wake?.();
    };
    const onEnd = () => {
      ended = true;
      wake?.();
    };
    this.#events.on('commit', onCommit);
    this.#events.on('end', onEnd);
    signal?.addEventListener('abort', onEnd, { once: true });
    try {
      for (const r of await readRecords(this.dir, { sinceSeq: last })) {
        if (signal?.aborted) return;
        yield r;
        last = r.seq;
      }
      for (;;) {
        while (pending.length > 0) {
          const r = pending.shift()!;
          if (r.seq <= last) continue;
          if (signal?.aborted) return;
          yield r;
          last = r.seq;
        }
        if (ended || signal?.aborted) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    } finally {
      this.#events.off('commit', onCommit);
      this.#events.off('end', onEnd);
      signal?.removeEventListener('abort', onEnd);
    }
  }

  /** Waits for pending appends, closes the segment and releases the lock. Followers end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#flushing) await this.#drained;
    await this.#fh.close().catch(() => {});
    await this.#release();
    this.#events.emit('end');
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}
