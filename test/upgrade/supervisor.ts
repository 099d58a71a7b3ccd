// The test suite's own supervisor, written from the contract (docs/contract.md §4), not
// from examples/supervisor.ts: it keeps the last state and /dev/fuse fd a daemon sent,
// offers them to the next daemon's takeover, and spawns nydusd processes the way
// nydus-snapshotter does (same arguments; --upgrade and a new API socket for an upgrade;
// the very same command line after a crash).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiClient } from '../../src/api/client.js';
import { closeFd, dupFd, SupervisorListener } from '../../src/native/index.js';
import { programArgv } from '../helpers/env.js';

/** One nydusd process. */
export class Daemon {
  readonly child: ChildProcess;
  readonly args: readonly string[];
  readonly apisock: string;
  readonly client: ApiClient;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  #done = false;

  constructor(args: string[], apisock: string) {
    this.args = args;
    this.apisock = apisock;
    const [cmd, ...pre] = programArgv('nydusd');
    this.child = spawn(cmd, [...pre, ...args, '--apisock', apisock], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => (this.#done = true));
    this.client = new ApiClient(apisock, { timeoutMs: 30_000 });
  }

  get running(): boolean {
    return !this.#done;
  }

  /** Polls GET /api/v1/daemon (no delay, as the smoke tests' WaitStatus) until `state`. */
  async waitState(state: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`nydusd exited before ${state} (last: ${last}); stderr:\n${this.stderr}`);
      if (existsSync(this.apisock)) {
        try {
          last = (await this.client.info()).state;
          if (last === state) return;
        } catch (err) {
          last = (err as Error).message;
        }
      }
      await sleep(20);
    }
    throw new Error(`nydusd did not reach ${state} within ${timeoutMs} ms (last: ${last}); stderr:\n${this.stderr}`);
  }

  async kill9(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  close(): void {
    this.client.close();
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** What the supervisor keeps of the last sendfd. */
export interface Saved {
  data: Buffer;
  fd: number;
}

/** A supervisor socket with the last state and fd in memory. */
export class TestSupervisor {
  readonly sock: string;
  #saved: Saved | undefined;

  constructor(sock: string) {
    this.sock = sock;
  }

  get saved(): Saved | undefined {
    return this.#saved;
  }

  /**
   * FetchDaemonStates: listen first, then ask `client` for sendfd, and keep what arrives
   * (closing the fd kept before). Rejects with the API's error when sendfd fails.
   */
  async fetch(client: ApiClient): Promise<void> {
    const listener = SupervisorListener.listen(this.sock);
    try {
      const receiving = listener.receive({ timeoutMs: 10_000 });
      receiving.catch(() => undefined);
      await client.sendFd();
      const got = await receiving;
      if (this.#saved !== undefined) closeFd(this.#saved.fd);
      this.#saved = got;
    } finally {
      listener.close();
    }
  }

  /**
   * SendStatesTimeout: listen now and hand the kept state (or `override`: other bytes, and
   * an fd or -1 for none) to the first daemon that connects. Resolves once sent.
   */
  offer(override?: { data: Buffer; fd: number }, timeoutMs = 10_000): Promise<void> {
    const what = override ?? this.#saved;
    if (what === undefined) throw new Error('nothing saved to offer');
    const listener = SupervisorListener.listen(this.sock);
    return listener.send(what.data, what.fd, { timeoutMs }).finally(() => listener.close());
  }

  /** A dup of the kept fd (for tests that offer other bytes with a real /dev/fuse fd). */
  dupSavedFd(): number {
    if (this.#saved === undefined) throw new Error('nothing saved');
    return dupFd(this.#saved.fd);
  }

  close(): void {
    if (this.#saved !== undefined) closeFd(this.#saved.fd);
    this.#saved = undefined;
  }
}
