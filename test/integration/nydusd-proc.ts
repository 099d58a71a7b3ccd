// nydusd as a child process for the integration tests: start it with a temp state dir,
// wait until it reports RUNNING (through its admin API when it has one, else its log),
// signal it, and always remove what it may leave mounted. Also the expected trees: a
// fixture unpacked with `nydus-image unpack` and extracted with GNU tar.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ApiClient } from '../../src/api/client.js';
import { cleanStale, viewsDirOf } from '../../src/daemon/erofs-driver.js';
import { findMount } from '../../src/fuse/mount-linux.js';
import { haveFixtures, isRoot, need, programArgv } from '../helpers/env.js';
import { run } from '../conformance/child.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One nydusd process. */
export class Nydusd {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  readonly mnt: string;
  readonly apisock: string | undefined;
  stderr = '';
  #exit: Exit | undefined;

  /** `env`: added to this process's environment for the daemon. */
  constructor(args: string[], mnt: string, env: NodeJS.ProcessEnv = {}) {
    this.mnt = mnt;
    const i = args.findIndex((a) => a === '--apisock' || a === '-A');
    this.apisock = i >= 0 ? args[i + 1] : undefined;
    const [cmd, ...pre] = programArgv('nydusd');
    this.child = spawn(cmd, [...pre, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve((this.#exit = { code, signal }))));
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  api(): ApiClient {
    if (this.apisock === undefined) throw new Error('started without --apisock');
    return new ApiClient(this.apisock, { timeoutMs: 10_000 });
  }

  /** Resolves once the daemon is RUNNING; rejects if it exits first or takes over `ms`. */
  async waitRunning(ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`nydusd exited ${JSON.stringify(this.#exit)}: ${this.stderr}`);
      if (this.apisock !== undefined) {
        if (existsSync(this.apisock)) {
          const client = this.api();
          const state = await client.info().then((i) => i.state, () => undefined);
          client.close();
          if (state === 'RUNNING') return;
        }
      } else if (/daemon: RUNNING/.test(this.stderr)) {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nydusd not RUNNING within ${ms} ms: ${this.stderr}`);
  }

  /** Sends `sig` and waits for the exit (SIGKILL after `ms`). */
  async stop(sig: NodeJS.Signals = 'SIGTERM', ms = 20_000): Promise<Exit> {
    if (this.running) this.child.kill(sig);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Prerequisites of tests that mount: root, /dev/fuse, the fixtures. */
export function canMount(t: TestContext): boolean {
  return need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse') && need(t, haveFixtures(), 'fixtures missing');
}

/** A temp dir with `mnt/` and `state/`; after the test, every daemon is stopped and the mount removed. */
export function workspace(t: TestContext, prefix: string): { dir: string; mnt: string; state: string; track(d: Nydusd): Nydusd } {
  const dir = mkdtempSync(join(tmpdir(), `nydusd-${prefix}-`));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const daemons: Nydusd[] = [];
  t.after(async () => {
    for (const d of daemons) if (d.running) await d.stop('SIGKILL');
    await cleanStale(mnt, viewsDirOf(join(dir, 'state'))); // what an erofs daemon left
    if (await findMount(mnt)) await run('umount', ['-l', mnt]);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, mnt, state: join(dir, 'state'), track: (d) => (daemons.push(d), d) };
}

const extracted = new Map<string, string>();

/** `nydus-image unpack` of a fixture, extracted with GNU tar (once per process). */
export function expectedTree(fixture: string): string {
  const hit = extracted.get(fixture);
  if (hit !== undefined) return hit;
  const dir = mkdtempSync(join(tmpdir(), 'nydusd-expected-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const tar = join(dir, 'image.tar');
  const [cmd, ...pre] = programArgv('nydus-image');
  const u = spawnSync(cmd, [...pre, 'unpack', '--bootstrap', join(fixture, 'bootstrap'), '--blob-dir', join(fixture, 'blobs'), '--output', tar], { encoding: 'utf8' });
  if (u.status !== 0) throw new Error(`nydus-image unpack failed: ${u.stderr}`);
  const root = join(dir, 'root');
  mkdirSync(root);
  const x = spawnSync('tar', ['-xpf', tar, '-C', root, '--numeric-owner', '--xattrs', '--xattrs-include=*'], { encoding: 'utf8' });
  if (x.status !== 0) throw new Error(`tar failed: ${x.stderr}`);
  extracted.set(fixture, root);
  return root;
}
