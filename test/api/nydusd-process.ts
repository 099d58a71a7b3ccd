// Runs the real nydusd as a supervisor does: spawn it on a fixture image with --apisock,
// wait for the socket to appear and for RUNNING by polling GET /api/v1/daemon
// (nydus-snapshotter's WaitUntilSocketExisted and WaitUntilState, docs/contract.md §3.3), and
// stop it with SIGTERM, lazily unmounting whatever a failure left behind.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import { isMounted, programArgv, REPO_ROOT } from '../helpers/env.js';

/** Whether this checkout has a nydusd entry point. */
export function haveNydusd(): boolean {
  return existsSync(join(REPO_ROOT, 'src', 'cli', 'nydusd.ts'));
}

/** A running nydusd. */
export interface NydusdProcess {
  child: ChildProcess;
  /** Temp dir holding mnt/, api.sock, blobs/ and state/. */
  dir: string;
  mnt: string;
  sock: string;
  client: ApiClient;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  exited: Promise<number | string>;
  /** Polls GET /api/v1/daemon until `state` (20 × 100–200 ms, like the snapshotter, unless `attempts` says). */
  waitState(state: string, attempts?: number): Promise<void>;
  /** SIGTERM (or `signal`), wait for exit, lazily unmount leftovers, remove the temp dir. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A directory of symlinks to the fixture's blobs, created at `into`: the blobcache writes
 * its files next to the blobs it caches, and the shared fixtures must stay untouched.
 */
export function linkBlobs(fixture: string, into: string): string {
  mkdirSync(into, { recursive: true });
  for (const name of readdirSync(join(fixture, 'blobs'))) symlinkSync(join(fixture, 'blobs', name), join(into, name));
  return into;
}

/**
 * Starts nydusd serving the fixture image at `fixture` (bootstrap + blobs/) and waits
 * until it is RUNNING. `dir` (default: a new /tmp/api-nydusd-*) receives mnt/, api.sock,
 * blobs/ and state/; it is removed by stop().
 */
export async function startNydusd(fixture: string, extraArgs: string[] = [], dir = mkdtempSync('/tmp/api-nydusd-')): Promise<NydusdProcess> {
  const mnt = join(dir, 'mnt');
  const sock = join(dir, 'api.sock');
  mkdirSync(mnt);
  const blobDir = linkBlobs(fixture, join(dir, 'blobs'));
  const [cmd, ...pre] = programArgv('nydusd');
  const args = [...pre, '--mountpoint', mnt, '--bootstrap', join(fixture, 'bootstrap'), '--localfs-dir', blobDir, '--apisock', sock, '--state-dir', join(dir, 'state'), ...extraArgs];
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? -1)));
  let ended = false;
  void exited.then(() => (ended = true));
  const client = new ApiClient(sock, { timeoutMs: 10_000 });

  const p: NydusdProcess = {
    child,
    dir,
    mnt,
    sock,
    client,
    stderr: () => err,
    exited,
    async waitState(state, attempts = 20) {
      let last = '';
      for (let i = 0; i < attempts; i++) {
        try {
          last = (await client.info()).state;
          if (last === state) return;
        } catch (e) {
          last = (e as Error).message;
        }
        if (ended) break;
        await sleep(100 + Math.random() * 100);
      }
      throw new Error(`nydusd did not reach ${state} (last: ${last}); stderr:\n${err}`);
    },
    async stop(signal = 'SIGTERM') {
      client.close();
      if (!ended) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };

  try {
    // WaitUntilSocketExisted: 100 attempts, stops early when the process is gone.
    for (let i = 0; i < 100 && !ended; i++) {
      if (existsSync(sock) && statSync(sock).isSocket()) break;
      await sleep(100 + Math.random() * 100);
    }
    if (!existsSync(sock)) throw new Error(`nydusd never created ${sock}; stderr:\n${err}`);
    await p.waitState('RUNNING', 50);
  } catch (e) {
    await p.stop('SIGKILL');
    throw e;
  }
  return p;
}
