// The journal's record schema, its line parser, and the one pure `reduce` that turns
// records into the daemon's remembered state (mount table, log level, lifecycle
// state, recent transitions). Replay and the live journal both fold with it, so what
// a restarted daemon rebuilds is exactly what the running one had. No I/O here.
import { DaemonError } from '../errors.js';

/** How many transitions the reduced state keeps (oldest dropped first). */
export const RECENT_TRANSITIONS = 64;

/** What an image mount is rebuilt from: the API's MountCmd plus where it sits in the pseudo-fs. */
export interface MountSpec {
  /** VFS mountpoint inside the FUSE mount, e.g. `/` or `/<snapshotID>`. */
  mountpoint: string;
  /** Bootstrap path. */
  source: string;
  /** The config exactly as the API received it (a JSON string, secrets included: the file is 0600). */
  config: string;
  /** `rafs`, `passthrough_fs`, ... as given. */
  fsType: string;
  prefetchFiles: string[] | null;
  /** The mount's index in the pseudo-fs (high bits of its node ids), so node ids survive a restart. */
  index: number | null;
}

/**
 * What an event record carries besides its type and reason: the image's mountpoint for
 * image events, the config id and values (secrets included) for SET_CONFIG.
 */
export interface EventData {
  mountpoint?: string;
  id?: string;
  values?: Record<string, string>;
}

/**
 * What a SET_CONFIG record holds instead of object storage keys (decision 0012: they stay
 * off the disk); a takeover takes the value from the supervisor's state.
 */
export const KEPT_IN_MEMORY = '<kept in memory>';

/** One journal record without its header: what callers append. */
export type JournalEntry =
  /** A daemon process started its lifecycle machine with this input: replays of its records start here. */
  | { type: 'start'; pid: number; input: { awaitingTakeover: boolean; journalDeferred: boolean } }
  /** An event the lifecycle machine accepted; `state` is the state key it was accepted in. */
  | { type: 'event'; event: string; reason: string; state: string; data?: EventData }
  /** An actor of the machine finished: its output (e.g. `{connId}`) or its error, as the machine received it. */
  | { type: 'actor'; actor: string; ok: true; output?: unknown }
  | { type: 'actor'; actor: string; ok: false; error: { code: string; message: string } }
  /** How the event with seq `of` ended. */
  | { type: 'outcome'; of: number; event: string; ok: true }
  | { type: 'outcome'; of: number; event: string; ok: false; error: { code: string; message: string } }
  /** A change of state key, e.g. `READY.starting` → `RUNNING.idle`. */
  | { type: 'transition'; from: string; to: string; event: string }
  | ({ type: 'mount' } & MountSpec)
  | ({ type: 'remount' } & MountSpec)
  | { type: 'umount'; mountpoint: string }
  | { type: 'log-level'; level: string }
  /** The reduced state up to this record: the first record of a compacted segment. */
  | { type: 'snapshot'; state: SerializedJournalState };

/** A record as stored: one JSON line. `seq` grows by one per record, across segments. */
export type JournalRecord = { seq: number; time: string } & JournalEntry;

/** A mounted image as the journal remembers it. */
export interface MountEntry {
  source: string;
  config: string;
  fsType: string;
  prefetchFiles: string[] | null;
  index: number | null;
  /** ISO time of the mount record (remounts keep it). */
  mountedAt: string;
}

/** A transition as kept in the recent list. */
export interface TransitionEntry {
  seq: number;
  time: string;
  from: string;
  to: string;
  event: string;
}

/** What the journal remembers: the fold of every record so far. Treat as immutable. */
export interface JournalState {
  mounts: ReadonlyMap<string, MountEntry>;
  logLevel: string | null;
  /** The reported (top-level) state of the last transition, null before any. */
  lastState: string | null;
  lastSeq: number;
  /** The most recent transitions, oldest first, at most RECENT_TRANSITIONS. */
  transitions: readonly TransitionEntry[];
  /** One above the highest mount index ever recorded: where a successor resumes allocating. */
  nextIndex: number;
  /** The PUT /api/v1/config store (`"<id>:<key>"` → value, secrets included) of the daemon that wrote last. */
  config: Readonly<Record<string, string>>;
}

/** JournalState as it is written in a snapshot record. */
export interface SerializedJournalState {
  mounts: Array<{ mountpoint: string } & MountEntry>;
  logLevel: string | null;
  lastState: string | null;
  lastSeq: number;
  transitions: TransitionEntry[];
  /** Absent in snapshots written before it existed (then derived from `mounts`). */
  nextIndex?: number;
  /** Absent in snapshots written before config changes were journaled. */
  config?: Record<string, string>;
}

/** The state before any record. */
export function emptyJournalState(): JournalState {
  return { mounts: new Map(), logLevel: null, lastState: null, lastSeq: 0, transitions: [], nextIndex: 1, config: {} };
}

/**
 * Folds one record into the state, returning a new state (the input is not changed).
 * Lenient on meaning, so one odd record never blocks a restart: a mount over an existing
 * mountpoint replaces it, a remount or umount of an unknown one is a no-op.
 */
export function reduce(state: JournalState, record: JournalRecord): JournalState {
  const next = { ...state, lastSeq: record.seq };
  switch (record.type) {
    case 'mount': {
      const mounts = new Map(state.mounts);
      mounts.set(record.mountpoint, toEntry(record, record.time));
      return { ...next, mounts, nextIndex: nextIndexAfter(state, record.index) };
    }
    case 'remount': {
      const old = state.mounts.get(record.mountpoint);
      if (old === undefined) return next;
      const mounts = new Map(state.mounts);
      mounts.set(record.mountpoint, toEntry(record, old.mountedAt));
      return { ...next, mounts, nextIndex: nextIndexAfter(state, record.index) };
    }
    case 'umount': {
      if (!state.mounts.has(record.mountpoint)) return next;
      const mounts = new Map(state.mounts);
      mounts.delete(record.mountpoint);
      return { ...next, mounts };
    }
    case 'log-level':
      return { ...next, logLevel: record.level };
    case 'transition': {
      const entry = { seq: record.seq, time: record.time, from: record.from, to: record.to, event: record.event };
      const kept = state.transitions.length >= RECENT_TRANSITIONS ? state.transitions.slice(1 - RECENT_TRANSITIONS) : state.transitions;
      return { ...next, lastState: record.to.split('.')[0], transitions: [...kept, entry] };
    }
    case 'snapshot':
      return { ...deserializeState(record.state), lastSeq: record.seq };
    case 'start':
      // A fresh daemon starts with an empty config store; an upgrade or failover inherits it.
      return record.input.awaitingTakeover ? next : { ...next, config: {} };
    case 'event':
      return record.event === 'SET_CONFIG' && record.data?.values !== undefined ? { ...next, config: withConfig(state.config, record.data.id ?? '', record.data.values) } : next;
    case 'actor':
      // A takeover's store: whichever of state and journal the successor restored from.
      return record.actor === 'restoreState' && record.ok && isStringMap((record.output as { config?: unknown } | undefined)?.config)
        ? { ...next, config: { ...(record.output as { config: Record<string, string> }).config } }
        : next;
    case 'outcome':
      return next;
  }
}

/** The config store after PUT /api/v1/config?id=`id` with `values`. */
export function withConfig(config: Readonly<Record<string, string>>, id: string, values: Readonly<Record<string, string>>): Record<string, string> {
  const out = { ...config };
  for (const [k, v] of Object.entries(values)) out[`${id}:${k}`] = v;
  return out;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

function nextIndexAfter(state: JournalState, index: number | null): number {
  return index === null ? state.nextIndex : Math.max(state.nextIndex, index + 1);
}

function toEntry(spec: MountSpec, mountedAt: string): MountEntry {
  return {
    source: spec.source,
    config: spec.config,
    fsType: spec.fsType,
    prefetchFiles: spec.prefetchFiles === null ? null : [...spec.prefetchFiles],
    index: spec.index,
    mountedAt,
  };
}

/** The state as plain JSON, for a snapshot record. */
export function serializeState(state: JournalState): SerializedJournalState {
  return {
    mounts: [...state.mounts].map(([mountpoint, m]) => ({ mountpoint, ...m })),
    logLevel: state.logLevel,
    lastState: state.lastState,
    lastSeq: state.lastSeq,
    transitions: [...state.transitions],
    nextIndex: state.nextIndex,
    config: { ...state.config },
  };
}

/** The inverse of serializeState. */
export function deserializeState(s: SerializedJournalState): JournalState {
  const mounts = new Map<string, MountEntry>();
  let derived = 1;
  for (const { mountpoint, ...m } of s.mounts) {
    mounts.set(mountpoint, m);
    if (m.index !== null) derived = Math.max(derived, m.index + 1);
  }
  const nextIndex = s.nextIndex ?? derived;
  return { mounts, logLevel: s.logLevel, lastState: s.lastState, lastSeq: s.lastSeq, transitions: [...s.transitions], nextIndex, config: { ...s.config } };
}

// ---- parsing --------------------------------------------------------------

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string';
const int: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const strOrNull: Check = (v) => v === null || typeof v === 'string';
const intOrNull: Check = (v) => v === null || int(v);
const strList: Check = (v) => Array.isArray(v) && v.every(str);
const strListOrNull: Check = (v) => v === null || strList(v);
const errBody: Check = (v) => typeof v === 'object' && v !== null && str((v as { code?: unknown }).code) && str((v as { message?: unknown }).message);

function eventDataOk(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const d = v as Record<string, unknown>;
  return (d.mountpoint === undefined || str(d.mountpoint)) && (d.id === undefined || str(d.id)) && (d.values === undefined || isStringMap(d.values));
}

const mountFields = { mountpoint: str, source: str, config: str, fsType: str, prefetchFiles: strListOrNull, index: intOrNull };
const transitionFields = { seq: int, time: str, from: str, to: str, event: str };

function fieldsOk(o: Record<string, unknown>, fields: Record<string, Check>): boolean {
  return Object.entries(fields).every(([k, check]) => check(o[k]));
}

function serializedStateOk(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    Array.isArray(s.mounts) &&
    s.mounts.every((m) => typeof m === 'object' && m !== null && fieldsOk(m, { ...mountFields, mountedAt: str })) &&
    strOrNull(s.logLevel) &&
    strOrNull(s.lastState) &&
    int(s.lastSeq) &&
    (s.nextIndex === undefined || int(s.nextIndex)) &&
    (s.config === undefined || isStringMap(s.config)) &&
    Array.isArray(s.transitions) &&
    s.transitions.every((t) => typeof t === 'object' && t !== null && fieldsOk(t, transitionFields))
  );
}

const RECORD_FIELDS: Record<JournalEntry['type'], (o: Record<string, unknown>) => boolean> = {
  start: (o) =>
    int(o.pid) &&
    typeof o.input === 'object' &&
    o.input !== null &&
    typeof (o.input as Record<string, unknown>).awaitingTakeover === 'boolean' &&
    typeof (o.input as Record<string, unknown>).journalDeferred === 'boolean',
  event: (o) => fieldsOk(o, { event: str, reason: str, state: str }) && (o.data === undefined || eventDataOk(o.data)),
  actor: (o) => str(o.actor) && (o.ok === true || (o.ok === false && errBody(o.error))),
  outcome: (o) => fieldsOk(o, { of: int, event: str }) && (o.ok === true || (o.ok === false && errBody(o.error))),
  transition: (o) => fieldsOk(o, { from: str, to: str, event: str }),
  mount: (o) => fieldsOk(o, mountFields),
  remount: (o) => fieldsOk(o, mountFields),
  umount: (o) => fieldsOk(o, { mountpoint: str }),
  'log-level': (o) => fieldsOk(o, { level: str }),
  snapshot: (o) => serializedStateOk(o.state),
};

/**
 * Parses one journal line (without its newline) into a record. Throws DaemonError
 * ERR_DAEMON_JOURNAL for anything that is not a well-formed record of a known type.
 */
export function parseRecord(line: string): JournalRecord {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch (err) {
    throw new DaemonError('ERR_DAEMON_JOURNAL', `failed to parse journal record: ${(err as Error).message}`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new DaemonError('ERR_DAEMON_JOURNAL', 'failed to parse journal record: not an object');
  }
  const r = o as Record<string, unknown>;
  if (!(Number.isSafeInteger(r.seq) && (r.seq as number) > 0) || !str(r.time)) {
    throw new DaemonError('ERR_DAEMON_JOURNAL', 'failed to parse journal record: missing seq or time');
  }
  if (typeof r.type !== 'string' || !Object.hasOwn(RECORD_FIELDS, r.type)) {
    throw new DaemonError('ERR_DAEMON_JOURNAL', `failed to parse journal record ${r.seq}: unknown type ${JSON.stringify(r.type)}`);
  }
  if (!RECORD_FIELDS[r.type as JournalEntry['type']](r)) {
    throw new DaemonError('ERR_DAEMON_JOURNAL', `failed to parse journal record ${r.seq}: bad fields for type ${r.type}`);
  }
  return r as unknown as JournalRecord;
}

/** What parsing a whole segment yields. */
export interface ParsedSegment {
  records: JournalRecord[];
  /** Bytes up to the end of the last good line: where appending may resume. */
  goodLength: number;
  /** True when a torn last line (a crash mid-write) was dropped. */
  torn: boolean;
}

/**
 * Parses a segment's bytes. The last line, ended by a newline or not, may be torn by
 * a crash: it is dropped. Any bad line before a good one, or a seq that does not grow,
 * is corruption and throws DaemonError ERR_DAEMON_JOURNAL naming the line.
 */
export function parseSegment(buf: Buffer, name: string): ParsedSegment {
  const records: JournalRecord[] = [];
  let pos = 0;
  let line = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(0x0a, pos);
    const end = nl === -1 ? buf.length : nl;
    line++;
    let rec: JournalRecord | undefined;
    let bad: Error | undefined;
    if (nl === -1) {
      bad = new Error('no newline');
    } else {
      try {
        rec = parseRecord(buf.toString('utf8', pos, end));
      } catch (err) {
        bad = err as Error;
      }
    }
    if (bad !== undefined) {
      // Only the last line may be torn: a crash leaves a prefix of what was written.
      if (nl === -1 || nl + 1 === buf.length) return { records, goodLength: pos, torn: true };
      throw new DaemonError('ERR_DAEMON_JOURNAL', `failed to read journal ${name}: line ${line} is corrupt: ${bad.message}`);
    }
    const prev = records.at(-1);
    if (prev !== undefined && rec!.seq <= prev.seq) {
      throw new DaemonError('ERR_DAEMON_JOURNAL', `failed to read journal ${name}: line ${line} has seq ${rec!.seq} after ${prev.seq}`);
    }
    records.push(rec!);
    pos = end + 1;
  }
  return { records, goodLength: pos, torn: false };
}
