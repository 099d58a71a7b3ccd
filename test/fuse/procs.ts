// Child processes for the session tests: a FUSE server (serve-child.ts)
// driven by stdin commands and JSON-line events, and a reader that loops
// stat + O_DIRECT read over a file of the mount and prints one line per round.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FROM_SOURCE } from '../helpers/env.js';

const here = fileURLToPath(new URL('.', import.meta.url));

export type ServerEvent = { event: string } & Record<string, unknown>;

/** serve-child.ts in its own process. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly events: ServerEvent[] = [];
  stderr = '';
  #waiters: { event: string; resolve: (e: ServerEvent) => void }[] = [];

  constructor(args: string[]) {
    const script = join(here, FROM_SOURCE ? 'serve-child.ts' : 'serve-child.js');
    const argv = FROM_SOURCE ? ['--import', 'tsx', script, ...args] : [script, ...args];
    this.child = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.#onLine(line));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  #onLine(line: string): void {
    let ev: ServerEvent;
    try {
      ev = JSON.parse(line) as ServerEvent;
    } catch {
      return;
    }
    const i = this.#waiters.findIndex((w) => w.event === ev.event || ev.event === 'fatal');
    if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(ev);
    else this.events.push(ev);
  }

  /** The next `event` line (already received or coming); rejects on 'fatal' or timeout. */
  next(event: string, timeoutMs = 20_000): Promise<ServerEvent> {
    const i = this.events.findIndex((e) => e.event === event || e.event === 'fatal');
    const got = i >= 0 ? Promise.resolve(this.events.splice(i, 1)[0]) : new Promise<ServerEvent>((resolve) => this.#waiters.push({ event, resolve }));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`server: no '${event}' within ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
    });
    return Promise.race([got, timeout]).then((e) => {
      clearTimeout(timer);
      if (e.event === 'fatal') throw new Error(`server failed: ${String(e.message)}; stderr: ${this.stderr}`);
      return e;
    });
  }

  send(cmd: string): void {
    this.child.stdin!.write(cmd + '\n');
  }

  /** Errors the server reported on its own (it reports unexpected handler failures). */
  reportedErrors(): ServerEvent[] {
    return this.events.filter((e) => e.event === 'error');
  }
}

// stat + O_DIRECT pread of the whole file, for ever; one "<round> <bytes> <sum>" line per round.
const READER = `
const fs = require('fs');
const file = process.argv[1];
const buf = Buffer.alloc(4 << 20);
for (let n = 1; ; n++) {
  fs.statSync(file);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  let k = 0;
  for (;;) { const r = fs.readSync(fd, buf, k, buf.length - k, k); if (r === 0) break; k += r; }
  fs.closeSync(fd);
  let sum = 0;
  for (let i = 0; i < k; i++) sum = (sum * 31 + buf[i]) >>> 0;
  process.stdout.write(n + ' ' + k + ' ' + sum + '\\n');
}`;

/** Same checksum as the reader child, for the expected content. */
export function readerSum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i++) sum = (sum * 31 + b[i]) >>> 0;
  return sum;
}

/** A child looping over one file of a mount; records rounds and any failure. */
export class LoopReader {
  readonly child: ChildProcess;
  rounds = 0;
  bad: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #expect: string;
  #waiters: { n: number; resolve: () => void }[] = [];

  constructor(file: string, expected: Buffer) {
    this.#expect = `${expected.length} ${readerSum(expected)}`;
    this.child = spawn(process.execPath, ['-e', READER, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const sp = line.indexOf(' ');
      this.rounds = Number(line.slice(0, sp));
      if (line.slice(sp + 1) !== this.#expect) this.bad.push(line);
      this.#waiters = this.#waiters.filter((w) => (this.rounds >= w.n ? (w.resolve(), false) : true));
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves once `n` rounds completed (rejects after the timeout or if the reader died). */
  until(n: number, timeoutMs = 20_000): Promise<void> {
    if (this.rounds >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reader: ${this.rounds}/${n} rounds after ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      this.#waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`reader exited after ${this.rounds} rounds: ${this.stderr}`));
      });
    });
  }

  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}
