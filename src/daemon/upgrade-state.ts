// The bytes a daemon hands its supervisor on `sendfd` and a successor reads on `takeover`:
// versioned JSON naming every image mount (pseudo-fs path, bootstrap, config, fs type,
// prefetch list, index), the FUSE session (host mountpoint, connection id, negotiated
// INIT parameters), the daemon id and the journal position. Supervisors never look
// inside (docs/contract.md §4.1). Pure encode/decode; decode trusts nothing it reads.
import { DaemonError, NydusError } from '../errors.js';
import type { SessionState } from '../fuse/session.js';
import { validateInitParams } from '../fuse/init.js';
import { MAX_INDEX } from '../fs/node-id.js';
import type { MountSpec } from './journal-records.js';

/** What the `format` field of every state says. */
export const STATE_FORMAT = 'nydus-ts/daemon-state';
/** The format version this daemon writes and reads. */
export const STATE_VERSION = 1;
/**
 * The oldest reader version that can read what this daemon writes. Additions that an
 * older reader may ignore keep it; a change an older reader would misread raises it.
 */
export const STATE_COMPAT = 1;
/** Larger states are refused before parsing (the addon caps a transfer at 64 MiB too). */
const MAX_STATE_BYTES = 64 * 1024 * 1024;

/** An image mount as the state carries it (the journal's MountSpec with an index always set). */
export interface SavedMount extends MountSpec {
  index: number;
}

/** A daemon's saved state (format version 1). */
export interface DaemonState {
  format: typeof STATE_FORMAT;
  /** Format version of the writer. */
  version: number;
  /** Oldest reader version that can read this state. */
  compat: number;
  daemon: {
    /** `--id`, or null. */
    id: string | null;
    /** The writer's pid and build, for the logs of whoever reads it. */
    pid: number;
    build: string;
    savedAt: string;
  };
  /** What FuseSession.fromFd needs besides the fd. */
  fuse: SessionState;
  /** Image mounts in mountpoint order. */
  mounts: SavedMount[];
  /** Where the writer's index allocator stood: a successor never reuses an index early. */
  nextIndex: number;
  /**
   * The writer's journal directory and its last seq when the state was saved; seq is null
   * when the writer's journal was not open yet (a successor before its predecessor left).
   */
  journal: { dir: string; seq: number | null };
  /**
   * The PUT /api/v1/config store (`"<id>:<key>"` → value, registry auth included), so a
   * successor keeps credentials set through the API. Absent from older writers: empty.
   */
  config?: Record<string, string>;
}

const bad = (what: string): DaemonError => new DaemonError('ERR_DAEMON_UPGRADE', `failed to read the daemon state: ${what}`);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function uint(v: unknown, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw bad(`${name} is ${JSON.stringify(v)}, expected an integer in ${min}..${max}`);
  return v;
}

function str(v: unknown, name: string): string {
  if (typeof v !== 'string') throw bad(`${name} is not a string`);
  return v;
}

function absPath(v: unknown, name: string): string {
  const s = str(v, name);
  if (!s.startsWith('/') || s.includes('\0')) throw bad(`${name} ${JSON.stringify(s)} is not an absolute path`);
  return s;
}

/** Encodes a state (the caller fills every field; version and compat are ours). */
export function encodeDaemonState(state: Omit<DaemonState, 'format' | 'version' | 'compat'>): Buffer {
  const full: DaemonState = { format: STATE_FORMAT, version: STATE_VERSION, compat: STATE_COMPAT, ...state };
  return Buffer.from(JSON.stringify(full));
}

function preview(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.subarray(0, 16)).toString('hex');
  return `${bytes.length} bytes, starting ${head}${bytes.length > 16 ? '…' : ''}`;
}

function decodeMount(v: unknown, i: number): SavedMount {
  const name = `mounts[${i}]`;
  if (!isObject(v)) throw bad(`${name} is not an object`);
  const prefetch = v.prefetchFiles;
  if (prefetch !== null && !(Array.isArray(prefetch) && prefetch.every((p) => typeof p === 'string'))) {
    throw bad(`${name}.prefetchFiles is neither null nor a list of strings`);
  }
  return {
    mountpoint: absPath(v.mountpoint, `${name}.mountpoint`),
    source: str(v.source, `${name}.source`),
    config: str(v.config, `${name}.config`),
    fsType: str(v.fsType, `${name}.fsType`),
    prefetchFiles: prefetch === null ? null : [...(prefetch as string[])],
    index: uint(v.index, `${name}.index`, 1, MAX_INDEX),
  };
}

function decodeConfig(v: unknown): Record<string, string> {
  if (!isObject(v)) throw bad('config is not an object');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) out[k] = str(x, `config[${JSON.stringify(k)}]`);
  return out;
}

function decodeSession(v: unknown): SessionState {
  if (!isObject(v)) throw bad('fuse is not an object');
  if (v.version !== 1) throw new DaemonError('ERR_DAEMON_STATE_VERSION', `failed to read the daemon state: FUSE session state version ${JSON.stringify(v.version)} is not 1`);
  let init;
  try {
    init = validateInitParams(v.init);
  } catch (err) {
    throw bad(`fuse.init: ${(err as NydusError).message}`);
  }
  return { version: 1, mountpoint: absPath(v.mountpoint, 'fuse.mountpoint'), connId: uint(v.connId, 'fuse.connId'), init: { ...init } };
}

/**
 * Reads a state. Throws ERR_DAEMON_UPGRADE for bytes that are not a state of ours (with
 * their first bytes in the message) or a malformed field, ERR_DAEMON_STATE_VERSION for a
 * state that needs a newer reader. Fields this version does not know are ignored.
 */
export function decodeDaemonState(bytes: Uint8Array): DaemonState {
  if (bytes.length > MAX_STATE_BYTES) throw bad(`${bytes.length} bytes is more than the ${MAX_STATE_BYTES} a state may have`);
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw bad(`not a nydus-ts daemon state (${preview(bytes)})`);
  }
  if (!isObject(v) || v.format !== STATE_FORMAT) throw bad(`not a nydus-ts daemon state (${preview(bytes)})`);
  const version = uint(v.version, 'version', 1);
  const compat = uint(v.compat, 'compat', 1, version);
  if (compat > STATE_VERSION) {
    throw new DaemonError(
      'ERR_DAEMON_STATE_VERSION',
      `failed to read the daemon state: it was written in format version ${version} and needs a reader of version ${compat} or newer; this nydusd reads version ${STATE_VERSION}`,
    );
  }
  const d = v.daemon;
  if (!isObject(d)) throw bad('daemon is not an object');
  if (d.id !== null && typeof d.id !== 'string') throw bad('daemon.id is neither null nor a string');
  if (!Array.isArray(v.mounts)) throw bad('mounts is not a list');
  if (v.mounts.length > MAX_INDEX) throw bad(`${v.mounts.length} mounts is more than ${MAX_INDEX}`);
  const mounts = v.mounts.map(decodeMount);
  const paths = new Set<string>();
  const indexes = new Set<number>();
  for (const m of mounts) {
    if (paths.has(m.mountpoint)) throw bad(`mountpoint ${m.mountpoint} appears twice`);
    if (indexes.has(m.index)) throw bad(`index ${m.index} appears twice`);
    paths.add(m.mountpoint);
    indexes.add(m.index);
  }
  const j = v.journal;
  if (!isObject(j)) throw bad('journal is not an object');
  return {
    format: STATE_FORMAT,
    version,
    compat,
    daemon: { id: d.id as string | null, pid: uint(d.pid, 'daemon.pid'), build: str(d.build, 'daemon.build'), savedAt: str(d.savedAt, 'daemon.savedAt') },
    fuse: decodeSession(v.fuse),
    mounts,
    nextIndex: uint(v.nextIndex, 'nextIndex', 1, MAX_INDEX + 1),
    journal: { dir: str(j.dir, 'journal.dir'), seq: j.seq === null ? null : uint(j.seq, 'journal.seq') },
    ...(v.config === undefined ? {} : { config: decodeConfig(v.config) }),
  };
}
