// Where the controller journals: the state directory's Journal, or, while another live
// process holds that journal (a daemon started with --upgrade next to the one it will
// replace), an in-memory list that is written out once the journal can be opened.
// Either way `state` is the fold of everything appended, so reads never wait on disk.
import { DaemonError } from '../errors.js';
import { Journal, emptyJournalState, readRecords, reduce } from './journal.js';
import type { JournalEntry, JournalOptions, JournalRecord, JournalState } from './journal.js';

/** The controller's journal. */
export class JournalSink {
  readonly dir: string;
  #journal: Journal | null;
  readonly #options: JournalOptions;
  /** Records appended while the journal was held elsewhere (local seqs). */
  #held: JournalRecord[] = [];
  /** Local seq → the seq a held record got in the journal: outcomes name their event by seq. */
  readonly #renumbered = new Map<number, number>();
  #state: JournalState;

  private constructor(dir: string, journal: Journal | null, options: JournalOptions) {
    this.dir = dir;
    this.#journal = journal;
    this.#options = options;
    this.#state = journal?.state ?? emptyJournalState();
  }

  /**
   * Opens the journal in `dir`. With `deferIfHeld`, a journal locked by a live process is
   * not an error: records are kept in memory until attach() succeeds.
   */
  static async open(dir: string, opts: { deferIfHeld?: boolean; journal?: JournalOptions } = {}): Promise<JournalSink> {
    try {
      return new JournalSink(dir, await Journal.open(dir, opts.journal), opts.journal ?? {});
    } catch (err) {
      if (opts.deferIfHeld && err instanceof DaemonError && typeof err.detail?.holder === 'number') {
        return new JournalSink(dir, null, opts.journal ?? {});
      }
      throw err;
    }
  }

  /** True while records are only kept in memory. */
  get deferred(): boolean {
    return this.#journal === null;
  }

  /** What the records appended so far fold to. */
  get state(): JournalState {
    return this.#journal?.state ?? this.#state;
  }

  /** Appends one record; resolves once it is durable (or held, while deferred). */
  async append(entry: JournalEntry): Promise<JournalRecord> {
    if (this.#journal !== null) return this.#journal.append(this.#renumber(entry));
    const rec = { seq: this.#state.lastSeq + 1, time: new Date().toISOString(), ...entry } as JournalRecord;
    this.#held.push(rec);
    this.#state = reduce(this.#state, rec);
    return rec;
  }

  /** Stored records with seq > `sinceSeq`, oldest first, at most `limit` (the held ones while deferred). */
  async records(query: { sinceSeq: number; limit: number }): Promise<JournalRecord[]> {
    if (this.#journal === null) return this.#held.filter((r) => r.seq > query.sinceSeq).slice(0, query.limit);
    return readRecords(this.dir, query);
  }

  /** Opens the journal now (its previous holder has gone) and writes the held records to it. */
  async attach(): Promise<void> {
    if (this.#journal !== null) return;
    const journal = await Journal.open(this.dir, this.#options);
    for (const rec of this.#held) {
      const { seq, time: _time, ...entry } = rec;
      const stored = await journal.append(this.#renumber(entry as JournalEntry));
      this.#renumbered.set(seq, stored.seq);
    }
    this.#held = [];
    this.#journal = journal;
  }

  /** An outcome appended after attach() may name its event by the seq it had while held. */
  #renumber(entry: JournalEntry): JournalEntry {
    if (entry.type !== 'outcome') return entry;
    const of = this.#renumbered.get(entry.of);
    return of === undefined ? entry : { ...entry, of };
  }

  async close(): Promise<void> {
    await this.#journal?.close();
  }
}
