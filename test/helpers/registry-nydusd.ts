// The real nydusd for the registry tests, as a user runs it: `nydusd --image <reference>`
// (or any other arguments) with an admin socket, waited on until RUNNING, queried over the
// socket, and stopped with SIGTERM when the test ends (lazily unmounting leftovers).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { cleanStale, viewsDirOf } from '../../src/daemon/erofs-driver.js';
import type { TestContext } from 'node:test';
import { isMounted, isRoot, need, programArgv } from './env.js';
import { haveRegistry, startRegistry, type Owner, type RegistryServer } from './registry-server.js';
import { waitUntil } from './wait.js';

/** Whether nydusd exists in the form the tests run it (sources under tsx, else dist/). */
export function haveNydusd(): boolean {
  return existsSync(programArgv('nydusd').at(-1)!);
}

/** A running nydusd. */
export interface Daemon {
  mnt: string;
  sock: string;
  dir: string;
  stderr(): string;
  /** GET an admin API path; resolves with status and parsed JSON (undefined for no body). */
  get(path: string): Promise<{ status: number; body: unknown }>;
  /** PUT `body` as JSON to an admin API path. */
  put(path: string, body: unknown): Promise<{ status: number; body: unknown }>;
  stop(): Promise<void>;
}

/** `method path` on the admin socket, with `body` as JSON when given. */
function apiCall(sock: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path, method, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Starts `nydusd --mountpoint <dir>/mnt --apisock <dir>/api.sock --state-dir <dir>/state ...args` and waits for RUNNING. */
export async function startDaemon(t: Owner, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Daemon> {
  const dir = mkdtempSync('/tmp/registry-nydusd-');
  const mnt = join(dir, 'mnt');
  const sock = join(dir, 'api.sock');
  mkdirSync(mnt);
  const [cmd, ...pre] = programArgv('nydusd');
  const child = spawn(cmd, [...pre, '--mountpoint', mnt, '--apisock', sock, '--state-dir', join(dir, 'state'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  let ended = false;
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  void exited.then(() => (ended = true));
  let stopped = false;
  const daemon: Daemon = {
    mnt,
    sock,
    dir,
    stderr: () => err,
    get: (path) => apiCall(sock, 'GET', path),
    put: (path, body) => apiCall(sock, 'PUT', path, body),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!ended) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      await cleanStale(mnt, viewsDirOf(join(dir, 'state'))); // what an erofs daemon may have left
      if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  t.after(() => daemon.stop());
  for (let i = 0; ; i++) {
    if (ended) throw new Error(`nydusd exited during startup:\n${err}`);
    if (existsSync(sock)) {
      const info = await daemon.get('/api/v1/daemon').catch(() => undefined);
      if ((info?.body as { state?: string } | undefined)?.state === 'RUNNING') return daemon;
    }
    if (i > 300) throw new Error(`nydusd did not reach RUNNING:\n${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The daemon's blobcache metrics once its prefetch has ended. */
export async function prefetchEnded(d: Daemon): Promise<Record<string, number>> {
  let cache: Record<string, number> = {};
  await waitUntil(async () => {
    cache = (await d.get('/api/v1/metrics/blobcache')).body as Record<string, number>;
    return cache.prefetch_end_time_secs > 0;
  }, 'the prefetch ends', { everyMs: 100 });
  return cache;
}

/**
 * The start of a test that serves an image from a real registry through nydusd: needs
 * root, /dev/fuse, nydusd and docker-registry (a failure under CI=true, a skip
 * otherwise), builds the image (`build` answers a string when it cannot), starts the
 * registry (or takes the one `registry` gives, e.g. one shared by a file's tests).
 * Undefined when the test was skipped.
 */
export async function registryAndImage<T>(
  t: TestContext,
  build: () => Promise<T | string>,
  registry: () => Promise<RegistryServer> = () => startRegistry(t),
): Promise<{ img: T; reg: RegistryServer } | undefined> {
  if (!need(t, isRoot() && existsSync('/dev/fuse') && haveNydusd() && haveRegistry(), 'needs root, /dev/fuse, nydusd and docker-registry')) return undefined;
  const img = await build();
  if (typeof img === 'string') {
    need(t, false, img);
    return undefined;
  }
  return { img, reg: await registry() };
}

/** A v2 nydusd config file in `dir` with only a blobcache in `dir`/cache (`--image` supplies the backend). */
export function blobcacheConfig(dir: string): string {
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify({ version: 2, cache: { type: 'blobcache', filecache: { work_dir: join(dir, 'cache') } } }));
  return path;
}
