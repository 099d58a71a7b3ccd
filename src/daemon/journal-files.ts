// The journal's files in its state directory: numbered segments
// (`journal.000001.jsonl`, the highest one is live), the temp file a compaction
// writes before its rename, and the writer's lock file. Async I/O only: this runs
// inside the daemon. Knows nothing of what records mean.
import { open, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonError } from '../errors.js';
import { parseSegment } from './journal-records.js';
import type { ParsedSegment } from './journal-records.js';

const SEGMENT_RE = /^journal\.(\d{6,})\.jsonl$/;
const LOCK_NAME = 'journal.lock';

/** The file name of segment `generation`. */
export function segmentName(generation: number): string {
  return `journal.${String(generation).padStart(6, '0')}.jsonl`;
}

/** Segment generations present in `dir`, ascending; [] when the directory does not exist. */
export async function listSegments(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw journalIoError('list', dir, err);
  }
  const gens: number[] = [];
  for (const n of names) {
    const m = SEGMENT_RE.exec(n);
    if (m) gens.push(Number(m[1]));
  }
  return gens.sort((a, b) => a - b);
}

/** The live segment, parsed. */
export interface LatestSegment {
  generation: number;
  path: string;
  parsed: ParsedSegment;
}

/**
 * Reads and parses the highest segment, or null when there is none. A compaction may
 * rename and unlink between the listing and the read; the read then starts over.
 */
export async function readLatestSegment(dir: string): Promise<LatestSegment | null> {
  for (let attempt = 0; ; attempt++) {
    const gens = await listSegments(dir);
    const generation = gens.at(-1);
    if (generation === undefined) return null;
    const path = join(dir, segmentName(generation));
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 8) continue;
      throw journalIoError('read', path, err);
    }
    return { generation, path, parsed: parseSegment(buf, path) };
  }
}

/** Removes segments older than `keep` and leftover compaction temp files. */
export async function removeStaleFiles(dir: string, keep: number): Promise<void> {
  for (const n of await readdir(dir)) {
    const m = SEGMENT_RE.exec(n);
    if ((m && Number(m[1]) < keep) || (n.startsWith('journal.') && n.endsWith('.tmp'))) {
      await unlink(join(dir, n)).catch(() => {});
    }
  }
}

/** fsync a directory, so a create, rename or unlink in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Whether `pid` is a live process. A zombie (killed, not yet reaped by its parent: a
 * supervisor restarting a daemon after `kill -9`) still answers signal 0 but holds nothing.
 */
async function pidAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return false; // gone since the signal
  // Field 3, after the parenthesised command name (which may itself hold ") ").
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X';
}

/** The live process holding the writer lock of `dir`, or null when none does. */
export async function lockHolder(dir: string): Promise<number | null> {
  const holder = Number.parseInt(await readFile(join(dir, LOCK_NAME), 'utf8').catch(() => ''), 10);
  return Number.isSafeInteger(holder) && holder > 0 && (await pidAlive(holder)) ? holder : null;
}

/**
 * Takes the writer lock of `dir`: a file holding this process's pid. A lock left by a
 * dead process (a crash) is taken over; one held by a live process, this one included,
 * is an error, because two writers would interleave sequence numbers.
 */
export async function acquireLock(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_NAME);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return async () => {
        await unlink(path).catch(() => {});
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw journalIoError('lock', path, err);
    }
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isSafeInteger(holder) && holder > 0 && (await pidAlive(holder))) {
      throw new DaemonError('ERR_DAEMON_JOURNAL', `failed to open journal ${dir}: in use by pid ${holder}`, { detail: { holder } });
    }
    await unlink(path).catch(() => {});
  }
  throw new DaemonError('ERR_DAEMON_JOURNAL', `failed to open journal ${dir}: cannot take ${path}`);
}

/** Wraps an fs failure as the journal's error. */
export function journalIoError(verb: string, path: string, err: unknown): DaemonError {
  const e = err as NodeJS.ErrnoException;
  return new DaemonError('ERR_DAEMON_JOURNAL', `failed to ${verb} journal ${path}: ${e?.code ?? ''} ${e?.message ?? String(err)}`.replace(/  +/g, ' '), {
    cause: err,
  });
}
