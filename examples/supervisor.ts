// A small nydusd supervisor, the part of nydus-snapshotter that keeps a FUSE mount alive
// across daemon restarts (docs/contract.md §4): it starts nydusd with --supervisor/--id,
// keeps the state and /dev/fuse fd each daemon sends (sendfd), and on request replaces the
// daemon with a new process, of the same binary or another one, with no unmount (hot
// upgrade, the snapshotter's order), or kills it with -9 to show the recovery it also does
// by itself whenever the daemon dies (failover). Every step is printed.
//
//   node --import tsx examples/supervisor.ts run --dir D -- NYDUSD_ARGS...   (stays in the foreground)
//   node --import tsx examples/supervisor.ts upgrade --dir D [--nydusd 'CMD ARGS']
//   node --import tsx examples/supervisor.ts failover --dir D
//   node --import tsx examples/supervisor.ts stop --dir D
//
// `run` owns D: D/supervisor.sock (daemons connect here), D/control.sock (the other
// commands), D/api-N.sock (one admin socket per daemon) and D/state (the journal, unless
// NYDUSD_ARGS name --state-dir). --nydusd defaults to this checkout's nydusd.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ApiClient } from '../src/api/client.js';
import { closeFd, SupervisorListener } from '../src/native/index.js';

type Say = (line: string) => void;

/** This checkout's nydusd, run the way this file runs (from sources under tsx, or compiled). */
function defaultNydusd(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return [process.execPath, '--import', 'tsx', resolve(here, '..', '..', 'src', 'cli', 'nydusd.ts')];
  return [process.execPath, resolve(here, '..', '..', 'src', 'cli', 'nydusd.js')];
}

interface Daemon {
  proc: ChildProcess;
  /** The nydusd command it was started with (a failover starts the same one). */
  cmd: string[];
  apisock: string;
  client: ApiClient;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set before we end it on purpose (exit, stop, kill -9): its death is then not a crash. */
  expected: boolean;
}

class Supervisor {
  readonly #dir: string;
  readonly #args: string[];
  readonly #sock: string;
  #cmd: string[];
  #n = 0;
  #saved: { data: Buffer; fd: number } | undefined;
  #daemon: Daemon | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  readonly #log: Say;

  constructor(dir: string, nydusdArgs: string[], log: Say) {
    this.#dir = dir;
    this.#sock = join(dir, 'supervisor.sock');
    const stateDir = nydusdArgs.includes('--state-dir') ? [] : ['--state-dir', join(dir, 'state')];
    this.#args = [...nydusdArgs, ...stateDir, '--id', 'supervised', '--supervisor', this.#sock];
    this.#cmd = defaultNydusd();
    this.#log = log;
  }

  /** Runs `job` after every earlier one (commands and crash recoveries never overlap). */
  serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(job, job);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #spawn(cmd: string[], extra: string[], apisock: string, say: Say): Daemon {
    const argv = [...cmd, ...this.#args, ...extra, '--apisock', apisock];
    const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
    const d: Daemon = { proc, cmd, apisock, client: new ApiClient(apisock), expected: false, exited: new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal }))) };
    say(`spawned nydusd pid ${proc.pid}${extra.length ? ` (${extra.join(' ')})` : ''}, API on ${apisock}`);
    void d.exited.then((how) => {
      if (d.expected || this.#daemon !== d) return;
      this.#log(`daemon pid ${proc.pid} died (${how.signal ?? `exit ${how.code}`}): failing over`);
      void this.serial(() => this.#failover(d, this.#log)).catch((err: Error) => this.#log(`failover failed: ${err.message}`));
    });
    return d;
  }

  async #waitState(d: Daemon, state: string, say: Say): Promise<void> {
    for (let i = 0; i < 600; i++) {
      if (d.proc.exitCode !== null || d.proc.signalCode !== null) throw new Error(`nydusd pid ${d.proc.pid} exited before ${state}`);
      const now = existsSync(d.apisock) ? await d.client.info().then((x) => x.state, () => undefined) : undefined;
      if (now === state) return say(`pid ${d.proc.pid} is ${state}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nydusd pid ${d.proc.pid} did not reach ${state}`);
  }

  /** sendfd: listen, ask the daemon, keep what arrives (closing the fd kept before). */
  async #fetch(d: Daemon, say: Say): Promise<void> {
    const listener = SupervisorListener.listen(this.#sock);
    try {
      const receiving = listener.receive({ timeoutMs: 10_000 });
      receiving.catch(() => undefined);
      await d.client.sendFd();
      const got = await receiving;
      if (this.#saved) closeFd(this.#saved.fd);
      this.#saved = got;
      say(`sendfd: kept the state (${got.data.length} bytes) and the /dev/fuse fd of pid ${d.proc.pid}`);
    } finally {
      listener.close();
    }
  }

  /** Listens and hands the kept state and fd to the next daemon that connects, then asks `d` to take over. */
  async #takeover(d: Daemon, say: Say): Promise<void> {
    if (!this.#saved) throw new Error('no saved state to hand over');
    const listener = SupervisorListener.listen(this.#sock);
    try {
      const sending = listener.send(this.#saved.data, this.#saved.fd, { timeoutMs: 10_000 });
      sending.catch(() => undefined);
      await d.client.takeover();
      await sending;
      say(`takeover: pid ${d.proc.pid} received the state and fd`);
    } finally {
      listener.close();
    }
  }

  async start(say: Say): Promise<void> {
    const d = this.#spawn(this.#cmd, [], join(this.#dir, `api-${this.#n++}.sock`), say);
    this.#daemon = d;
    await this.#waitState(d, 'RUNNING', say);
    await this.#fetch(d, say);
  }

  /** nydus-snapshotter's order: new --upgrade → INIT → takeover while the old one serves → READY → old exit → new start. */
  async upgrade(cmd: string[] | undefined, say: Say): Promise<void> {
    const old = this.#daemon;
    if (!old) throw new Error('no daemon');
    if (cmd) this.#cmd = cmd;
    const t0 = performance.now();
    const next = this.#spawn(this.#cmd, ['--upgrade'], join(this.#dir, `api-${this.#n++}.sock`), say);
    try {
      await this.#waitState(next, 'INIT', say);
      await this.#takeover(next, say);
      await this.#waitState(next, 'READY', say);
    } catch (err) {
      next.expected = true;
      next.proc.kill('SIGKILL');
      throw err;
    }
    const paused = performance.now();
    old.expected = true;
    await old.client.exit();
    const how = await old.exited;
    old.client.close();
    say(`exit: old pid ${old.proc.pid} stopped reading and left (${how.signal ?? `exit ${how.code}`}); the mount stays`);
    this.#daemon = next;
    await next.client.start();
    await this.#waitState(next, 'RUNNING', say);
    say(`upgrade done in ${Math.round(performance.now() - t0)} ms; nobody read the mount for ${Math.round(performance.now() - paused)} ms`);
    await this.#fetch(next, say);
  }

  /** The same command line again (no --upgrade): it finds the crash, waits in INIT, takes over. */
  async #failover(dead: Daemon, say: Say): Promise<void> {
    const t0 = performance.now();
    dead.client.close();
    const next = this.#spawn(dead.cmd, [], dead.apisock, say);
    this.#daemon = next;
    await this.#waitState(next, 'INIT', say);
    await this.#takeover(next, say);
    await this.#waitState(next, 'READY', say);
    await next.client.start();
    await this.#waitState(next, 'RUNNING', say);
    say(`failover done in ${Math.round(performance.now() - t0)} ms`);
    await this.#fetch(next, say);
  }

  /** kill -9, then the recovery the supervisor does for any crash. */
  async crash(say: Say): Promise<void> {
    const d = this.#daemon;
    if (!d) throw new Error('no daemon');
    d.expected = true;
    d.proc.kill('SIGKILL');
    await d.exited;
    say(`killed pid ${d.proc.pid} with SIGKILL`);
    await this.#failover(d, say);
  }

  /** SIGTERM: the daemon unmounts and exits. */
  async stop(say: Say): Promise<void> {
    const d = this.#daemon;
    this.#daemon = undefined;
    if (d) {
      d.expected = true;
      d.proc.kill('SIGTERM');
      const how = await d.exited;
      d.client.close();
      say(`stopped pid ${d.proc.pid} (${how.signal ?? `exit ${how.code}`}); the mount is gone`);
    }
    if (this.#saved) closeFd(this.#saved.fd);
    this.#saved = undefined;
  }
}

async function runCommand(dir: string, nydusdArgs: string[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const log: Say = (line) => console.log(`supervisor: ${line}`);
  const sup = new Supervisor(dir, nydusdArgs, log);
  await sup.serial(() => sup.start(log));
  const control = join(dir, 'control.sock');
  rmSync(control, { force: true });
  const server = createServer((conn: Socket) => {
    createInterface({ input: conn }).once('line', (line) => {
      const req = JSON.parse(line) as { op: string; nydusd?: string[] };
      const say: Say = (l) => {
        log(l);
        conn.write(`${l}\n`);
      };
      const job =
        req.op === 'upgrade' ? () => sup.upgrade(req.nydusd, say)
        : req.op === 'failover' ? () => sup.crash(say)
        : req.op === 'stop' ? () => sup.stop(say)
        : async () => { throw new Error(`unknown command ${req.op}`); };
      void sup.serial(job).then(
        () => conn.end('ok\n'),
        (err: Error) => conn.end(`error: ${err.message}\n`),
      ).then(() => {
        if (req.op === 'stop') server.close();
      });
    });
  });
  await new Promise<void>((r) => server.listen(control, r));
  log(`ready; commands on ${control}`);
  const quit = () => void sup.serial(() => sup.stop(log)).finally(() => server.close());
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
  await new Promise((r) => server.once('close', r));
  rmSync(control, { force: true });
  rmSync(join(dir, 'supervisor.sock'), { force: true });
}

/** Sends one command to a running supervisor and prints its steps; exit 1 if it failed. */
async function sendCommand(dir: string, req: { op: string; nydusd?: string[] }): Promise<number> {
  const conn = createConnection(join(dir, 'control.sock'));
  conn.write(`${JSON.stringify(req)}\n`);
  let last = '';
  for await (const line of createInterface({ input: conn })) {
    console.log(line);
    last = line;
  }
  return last === 'ok' ? 0 : 1;
}

const [op, ...rest] = process.argv.slice(2);
const dash = rest.indexOf('--');
const { values } = parseArgs({ args: dash < 0 ? rest : rest.slice(0, dash), options: { dir: { type: 'string' }, nydusd: { type: 'string' } } });
if (!values.dir || !['run', 'upgrade', 'failover', 'stop'].includes(op ?? '')) {
  console.error('usage: supervisor.ts run --dir D -- NYDUSD_ARGS... | upgrade --dir D [--nydusd CMD] | failover --dir D | stop --dir D');
  process.exit(2);
}
const dir = resolve(values.dir);
if (op === 'run') await runCommand(dir, dash < 0 ? [] : rest.slice(dash + 1));
else process.exitCode = await sendCommand(dir, { op, nydusd: values.nydusd?.split(' ').filter(Boolean) });
