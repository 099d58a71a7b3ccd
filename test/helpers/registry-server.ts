// Real OCI registries for the tests: Debian's docker-registry (distribution v2) on a
// loopback port with its storage in a temp dir, anonymous, with htpasswd Basic auth, or
// with token auth against a token issuer the tests run (registry-token-issuer.ts), and
// optionally its access log (what was fetched, with which status and how many bytes).
// Each instance is stopped in t.after; stop() and start() in between simulate a
// registry that goes away and comes back on the same port with the same content.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, type TestContext } from 'node:test';
import type { TokenIssuer } from './registry-token-issuer.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** What owns a test server: a test, or a file-level owner whose hooks run after all its tests. */
export type Owner = Pick<TestContext, 'after'>;

/** An Owner for servers shared by the tests of one file: cleaned up after the last of them. */
export function fileOwner(): Owner {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  return { after: (fn: () => unknown) => void cleanups.push(fn) } as Owner;
}

/** A server process a test may stop and start again (same command, one child at a time). */
export interface Restartable {
  /** Spawns the child unless it runs, then waits until it is ready. */
  start(): Promise<void>;
  /** SIGTERM (SIGKILL after 3 s) and waits for the exit; nothing when it is not running. */
  stop(): Promise<void>;
}

export function restartable(spawnChild: () => ChildProcess, ready: () => Promise<void>): Restartable {
  let child: ChildProcess | undefined;
  return {
    async start() {
      if (child !== undefined) return;
      const c = spawnChild();
      child = c;
      c.once('exit', () => {
        if (child === c) child = undefined;
      });
      await ready();
    },
    async stop() {
      const c = child;
      if (c === undefined) return;
      child = undefined;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
        setTimeout(() => c.kill('SIGKILL'), 3000).unref();
      });
    },
  };
}

/** Whether docker-registry (and htpasswd for Basic auth) are installed. */
export function haveRegistry(): boolean {
  return existsSync(REGISTRY_BIN);
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function connectUnix(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

/** Polls `url` until it answers (any HTTP status; `unix:PATH` accepts a connection) or `ms` pass. */
export async function waitForHttp(url: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (url.startsWith('unix:')) return await connectUnix(url.slice(5));
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${url} did not come up: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export type RegistryAuth = { kind: 'none' } | { kind: 'basic'; users: Record<string, string> } | { kind: 'token'; issuer: TokenIssuer };

/** A running docker-registry. */
export interface RegistryServer {
  /** `127.0.0.1:<port>`. */
  host: string;
  port: number;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Its storage directory. */
  root: string;
  /** Stops the process (the port and storage stay reserved for start()). */
  stop(): Promise<void>;
  /** Starts it again on the same port and storage. */
  start(): Promise<void>;
  /** Access log lines so far (combined log format: method, path, status, bytes sent), when started with `accessLog`. */
  accessLog(): string[];
}

/** One access log line: the request and what was sent. */
export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  bytes: number;
}

/** Parses a combined-log-format line of docker-registry's access log; undefined for other lines. */
export function parseAccessLog(line: string): AccessLogEntry | undefined {
  const m = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-)/.exec(line);
  return m === null ? undefined : { method: m[1], path: m[2], status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]) };
}

function configYaml(port: number, root: string, auth: string, accessLog: boolean): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    `    disabled: ${!accessLog}`,
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${root}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: nydus-ts-test-secret',
    auth,
    '',
  ].join('\n');
}

function authYaml(dir: string, auth: RegistryAuth): string {
  if (auth.kind === 'none') return '';
  if (auth.kind === 'basic') {
    const file = join(dir, 'htpasswd');
    const lines = Object.entries(auth.users).map(([u, p]) => execFileSync('htpasswd', ['-Bbn', u, p], { encoding: 'utf8' }).trim());
    writeFileSync(file, lines.join('\n') + '\n');
    return ['auth:', '  htpasswd:', '    realm: basic-realm', `    path: ${file}`].join('\n');
  }
  const { issuer } = auth;
  return [
    'auth:',
    '  token:',
    `    realm: ${issuer.realm}`,
    `    service: ${issuer.service}`,
    `    issuer: ${issuer.issuerName}`,
    `    rootcertbundle: ${issuer.certPath}`,
  ].join('\n');
}

/** Starts a docker-registry on loopback, stopped and removed when the test ends; with `accessLog`, its requests are kept. */
export async function startRegistry(t: Owner, auth: RegistryAuth = { kind: 'none' }, opts: { accessLog?: boolean } = {}): Promise<RegistryServer> {
  const dir = mkdtempSync('/tmp/registry-srv-');
  const root = join(dir, 'storage');
  mkdirSync(root);
  const port = await freePort();
  const configPath = join(dir, 'config.yml');
  writeFileSync(configPath, configYaml(port, root, authYaml(dir, auth), opts.accessLog === true));
  let stderr = '';
  // A file, not a pipe: a test busy in synchronous reads must not stall the registry on a full pipe.
  const accessLog = join(dir, 'access.log');
  const url = `http://127.0.0.1:${port}`;
  const proc = restartable(
    () => {
      const out = opts.accessLog ? openSync(accessLog, 'a') : 'ignore';
      const c = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', out, 'pipe'] });
      if (typeof out === 'number') closeSync(out);
      c.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
      return c;
    },
    async () => {
      try {
        await waitForHttp(`${url}/v2/`);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${stderr}`);
      }
    },
  );
  const server: RegistryServer = { host: `127.0.0.1:${port}`, port, url, root, start: proc.start, stop: proc.stop, accessLog: () => (existsSync(accessLog) ? readFileSync(accessLog, 'utf8').split('\n').filter((l) => l !== '') : []) };
  t.after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await server.start();
  return server;
}
