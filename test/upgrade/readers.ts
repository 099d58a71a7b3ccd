// Load on a mount while it changes hands: reader processes that loop over every file of
// the mount with O_DIRECT where the mount takes it (every read reaches the daemon; a
// file-backed erofs mount has no direct I/O, and its test drops the page cache instead)
// and check each file's digest, and a holder that keeps its cwd and one open file inside
// the mount and keeps using both. Each child reports failures and every pause between two completed reads of
// 20 ms or more, as JSON lines; a stop file ends them. Never touches the mount itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { readTreeJson } from '../rafs/helpers/fixtures.js';

/** A file the children read and the digest its bytes must have. */
export interface Expected {
  path: string;
  algo: 'md5' | 'sha256';
  digest: string;
}

/** Every file of the rig's mount (/v5: the v5 fixture's md5 list; /v6: the sha256s test/image/unpack.test.ts records). */
export function expectedFiles(mnt: string): Expected[] {
  const v5 = [...readTreeJson().md5].map(([p, digest]) => ({ path: `${mnt}/v5${p}`, algo: 'md5' as const, digest }));
  return [
    ...v5,
    { path: `${mnt}/v6/lib.rs`, algo: 'sha256', digest: '1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69' },
    { path: `${mnt}/v6/sync_io.rs`, algo: 'sha256', digest: 'e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96' },
  ];
}

/** What a holder keeps in the mount: its cwd, one open file there, and what the directory lists. */
export interface HolderSpec {
  dir: string;
  file: { name: string; algo: string; digest: string };
  names: string[];
}

/** Only the v6 fixture's files (the erofs rig serves nothing else). */
export function expectedV6Files(mnt: string): Expected[] {
  return expectedFiles(mnt).filter((e) => e.path.startsWith(`${mnt}/v6/`));
}

/** The erofs rig's holder: the v6 fixture's root. */
export function v6Holder(mnt: string): HolderSpec {
  return { dir: `${mnt}/v6`, file: { name: 'lib.rs', algo: 'sha256', digest: '1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69' }, names: ['lib.rs', 'sync_io.rs'] };
}

/** The holder every upgrade test and bench uses: the busybox layer's /etc in the v5 fixture. */
export function fixtureHolder(mnt: string): HolderSpec {
  return {
    dir: `${mnt}/v5/normal-file-test/busybox/1f777dbdd68d1c4d554bc0d20e027bfef9ed2dfe2d8d5f029e958552a0e12475/etc`,
    file: { name: 'passwd', algo: 'md5', digest: '7c04e662b37e09a98c46141cf08fb247' },
    names: ['group', 'localtime', 'network', 'passwd', 'shadow'],
  };
}

const COMMON = `
const fs = require('fs');
const crypto = require('crypto');
// O_DIRECT on a block-backed file (the erofs rig on loop devices) wants a buffer aligned
// to the device's block: the first read that fails with EINVAL moves the window (8 bytes at a time: the
// backing store is only that aligned) until one is accepted.
const raw = Buffer.alloc((1 << 20) + 4096);
let shift = 0;
let buf = raw.subarray(0, 1 << 20);
// File-backed erofs refuses O_DIRECT (EINVAL): read through the page cache there.
function openRead(path) {
  try { return fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECT); } catch (e) {
    if (e.code !== 'EINVAL') throw e;
    return fs.openSync(path, fs.constants.O_RDONLY);
  }
}
function readAligned(fd, pos) {
  for (;;) {
    try { return fs.readSync(fd, buf, 0, buf.length, pos); } catch (e) {
      if (e.code !== 'EINVAL' || shift >= 4096) throw e;
      shift += 8;
      buf = raw.subarray(shift, shift + (1 << 20));
    }
  }
}
const now = () => performance.timeOrigin + performance.now();
// Reports go to fd 1 with a blocking write, never through process.stdout: a child loops
// without returning to its event loop, so a stdout write that found the pipe full (the
// parent busy) would stay queued for ever and the child would look stalled.
const pause = new Int32Array(new SharedArrayBuffer(4));
// Time spent waiting for the pipe is not a read stall: it is taken out of the next gap.
function out(o) {
  const began = now();
  const line = Buffer.from(JSON.stringify(o) + '\\n');
  for (let off = 0; off < line.length; ) {
    try { off += fs.writeSync(1, line, off); } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
  last += now() - began;
}
let last = now();
let reads = 0;
const tick = () => { const t = now(); if (t - last >= 20) out({ gap: t - last, end: t }); last = t; if (reads++ === 0) out({ started: true }); };
// A round ends every few ms from the page cache: one report per 10 ms is enough to tell
// the parent the child goes on, and keeps nine children from flooding it.
let rounds = 0;
let reported = 0;
function roundDone() {
  rounds++;
  const t = now();
  if (t - reported >= 10) { out({ round: rounds, t }); reported = t; }
}
// A round served from the page cache (file-backed erofs) takes microseconds: without a
// pause, nine children would spin both cores.
function pace(since) { const left = 2 - (now() - since); if (left > 0) Atomics.wait(pause, 0, 0, left); }
function digestOf(fd, algo) {
  const h = crypto.createHash(algo);
  for (let pos = 0; ; ) {
    const n = readAligned(fd, pos);
    tick();
    if (n === 0) return h.digest('hex');
    h.update(buf.subarray(0, n));
    pos += n;
  }
}
`;

// argv: stopFile, JSON [{path, algo, digest}]
const READER = `${COMMON}
const [stop, list] = process.argv.slice(1);
const files = JSON.parse(list);
while (!fs.existsSync(stop)) {
  const began = now();
  for (const f of files) {
    try {
      const fd = openRead(f.path);
      let d;
      try { d = digestOf(fd, f.algo); } finally { fs.closeSync(fd); }
      if (d !== f.digest) out({ bad: f.path, why: 'digest ' + d + ', expected ' + f.digest });
    } catch (e) { out({ bad: f.path, why: String((e && e.message) || e) }); }
  }
  roundDone();
  pace(began);
}
out({ done: true, rounds, reads });
`;

// argv: stopFile, dir, JSON {name, algo, digest}, JSON [names in dir]
const HOLDER = `${COMMON}
const [stop, dir, fileJson, namesJson] = process.argv.slice(1);
const file = JSON.parse(fileJson);
const names = JSON.stringify(JSON.parse(namesJson).sort());
process.chdir(dir);
const held = openRead(file.name);
while (!fs.existsSync(stop)) {
  const began = now();
  try {
    const d = digestOf(held, file.algo);
    if (d !== file.digest) out({ bad: 'open file ' + file.name, why: 'digest ' + d });
    const listed = JSON.stringify(fs.readdirSync('.').sort());
    if (listed !== names) out({ bad: 'cwd ' + dir, why: 'lists ' + listed });
    if (!fs.statSync('.').isDirectory()) out({ bad: 'cwd ' + dir, why: 'not a directory' });
    const fd = openRead(file.name);
    try { if (digestOf(fd, file.algo) !== file.digest) out({ bad: 'relative open ' + file.name, why: 'digest' }); } finally { fs.closeSync(fd); }
  } catch (e) { out({ bad: 'holder in ' + dir, why: String((e && e.message) || e) }); }
  roundDone();
  pace(began);
}
fs.closeSync(held);
out({ done: true, rounds, reads });
`;

/** A pause between two completed reads of one child. */
export interface Gap {
  who: string;
  gap: number;
  end: number;
}

/** What the children reported, once stopped. */
export interface LoadReport {
  bad: { who: string; bad: string; why: string }[];
  gaps: Gap[];
  /** Rounds and reads per child; a child that died has none. */
  done: { who: string; rounds: number; reads: number }[];
  /** Children that ended before they were told to stop. */
  early: string[];
}

interface Child {
  who: string;
  proc: ChildProcess;
  exited: Promise<void>;
  stopping: boolean;
}

/** Readers and a holder running against a mount. */
export class Load {
  readonly #stopFile: string;
  readonly #children: Child[] = [];
  readonly #report: LoadReport = { bad: [], gaps: [], done: [], early: [] };

  private constructor(stopFile: string) {
    this.#stopFile = stopFile;
  }

  /**
   * `readers` processes over `files`, and one holder with its cwd in `holder.dir` and
   * `holder.file` open there (`names`: what the directory lists).
   */
  static start(stopFile: string, readers: number, files: Expected[], holder: HolderSpec): Load {
    const load = new Load(stopFile);
    for (let i = 0; i < readers; i++) load.#startChild(`reader ${i}`, READER, [stopFile, JSON.stringify(files)]);
    load.#startChild('holder', HOLDER, [stopFile, holder.dir, JSON.stringify(holder.file), JSON.stringify(holder.names)]);
    return load;
  }

  /** Resolves once every child has completed a read. */
  async warm(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#started.size < this.#children.length) {
      if (Date.now() > deadline || this.#report.early.length > 0) {
        throw new Error(`load did not start: ${this.#started.size}/${this.#children.length} children reading; ${this.#report.early.join('; ')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Bad reads and children that died, so far. */
  get failures(): number {
    return this.#report.bad.length + this.#report.early.length;
  }

  readonly #started = new Set<string>();
  /** When each child last completed a round, and last resumed after a pause. */
  readonly #lastRound = new Map<string, number>();
  readonly #lastResume = new Map<string, number>();

  /**
   * Resolves once every child completed a read after `time` (a pause that ended then, or a
   * round: a child reports one or the other soon after any read); with `round`, once every
   * child completed a whole round after `time`.
   */
  async readAfter(time: number, opts: { round?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    const last = (who: string) => Math.max(this.#lastRound.get(who) ?? 0, opts.round ? 0 : (this.#lastResume.get(who) ?? 0));
    const behind = () => this.#children.filter((c) => last(c.who) <= time).map((c) => c.who);
    while (behind().length > 0) {
      if (Date.now() > deadline || this.#report.early.length > 0) {
        throw new Error(`no ${opts.round ? 'round' : 'read'} completed after ${time} by ${behind().join(', ')}; ${this.#report.early.join('; ')}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * One line per child for a failure report: when it last completed a round and resumed
   * after a pause (ms before `time`), and where its process is (state and kernel wait).
   */
  describe(time: number): string[] {
    const ago = (t: number | undefined) => (t === undefined ? 'never' : `${Math.round(time - t)} ms before`);
    return this.#children.map((c) => {
      const proc = (f: string) => {
        try {
          return readFileSync(`/proc/${c.proc.pid}/${f}`, 'utf8').trim();
        } catch {
          return '-';
        }
      };
      const state = proc('stat').replace(/^.*\) /, '').split(' ')[0];
      return `${c.who} pid ${c.proc.pid}: round ${ago(this.#lastRound.get(c.who))}, resumed ${ago(this.#lastResume.get(c.who))}; state ${state} wchan ${proc('wchan')}; stack ${proc('stack').split('\n').slice(0, 4).join(' < ')}`;
    });
  }

  #startChild(who: string, script: string, args: string[]): void {
    // The child never runs inside the mount from this process: its cwd is set by itself.
    const proc = spawn(process.execPath, ['-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    const child: Child = { who, proc, stopping: false, exited: new Promise((resolve) => proc.once('exit', () => resolve())) };
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.started === true) this.#started.add(who);
      else if (typeof o.bad === 'string') this.#report.bad.push({ who, bad: o.bad, why: String(o.why) });
      else if (typeof o.gap === 'number') {
        this.#report.gaps.push({ who, gap: o.gap, end: o.end as number });
        this.#lastResume.set(who, o.end as number);
      }
      else if (typeof o.round === 'number') this.#lastRound.set(who, o.t as number);
      else if (o.done === true) this.#report.done.push({ who, rounds: o.rounds as number, reads: o.reads as number });
    });
    void child.exited.then(() => {
      if (!child.stopping) this.#report.early.push(`${who} (exit ${proc.exitCode}, ${proc.signalCode}): ${stderr.slice(0, 500)}`);
    });
    this.#children.push(child);
  }

  /** Tells every child to stop after its round, waits for them, and returns what they reported. */
  async stop(): Promise<LoadReport> {
    for (const c of this.#children) c.stopping = true;
    writeFileSync(this.#stopFile, '');
    const kill = setTimeout(() => this.#children.forEach((c) => c.proc.kill('SIGKILL')), 60_000);
    await Promise.all(this.#children.map((c) => c.exited));
    clearTimeout(kill);
    return this.#report;
  }

  /** Kills every child (cleanup after a failed test). */
  kill(): void {
    for (const c of this.#children) {
      c.stopping = true;
      c.proc.kill('SIGKILL');
    }
  }
}

/**
 * The longest pause of any child caused by each handover: handover i owns the pauses that
 * ended from its start (`starts[i]`) until the next one started (or `end`). A stall ends
 * only once the successor answers, so it is attributed by its end. 0: none reached 20 ms.
 */
export function stallsPerHandover(gaps: readonly Gap[], starts: readonly number[], end: number): number[] {
  return starts.map((from, i) => {
    const to = starts[i + 1] ?? end;
    let worst = 0;
    for (const g of gaps) if (g.end >= from && g.end < to) worst = Math.max(worst, g.gap);
    return worst;
  });
}
