// nydusd's answers to the signals besides SIGTERM/SIGINT, on the real daemon: SIGUSR1
// reopens the log file and never opens Node's inspector, SIGHUP and SIGUSR2 are logged
// and ignored, SIGPIPE stays ignored; after each, the daemon still serves its mount. A
// foreground daemon survives its terminal closing (SIGHUP, then log writes that fail).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApiClient } from '../../src/api/client.js';
import { V1 } from '../../src/api/paths.js';
import { haveFixtures, isMounted, isRoot, need, programArgv, V5_FIXTURE } from '../helpers/env.js';
import { haveNydusd, startNydusd } from '../api/nydusd-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The inodes of the TCP sockets listening on this machine (IPv4 and IPv6). */
function listeningInodes(): Set<string> {
  const out = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A') out.add(f[9]);
    }
  }
  return out;
}

/** The listening TCP sockets `pid` holds, as their inode numbers. */
function listeningSocketsOf(pid: number): string[] {
  const listening = listeningInodes();
  const held: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const target = (() => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })();
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && listening.has(m[1])) held.push(m[1]);
  }
  return held;
}

/** Whether signal `n` is in the hex mask of /proc/<pid>/status line `field` (SigIgn, SigCgt). */
function inSignalMask(pid: number, field: string, n: number): boolean {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `${field} in /proc/${pid}/status`);
  return ((BigInt(`0x${m[1]}`) >> BigInt(n - 1)) & 1n) === 1n;
}

/** A digest of the whole tree under `mnt`, read by a child process (never by the daemon's parent). */
function treeDigest(mnt: string): string {
  const r = spawnSync('sh', ['-c', 'tar -C "$1" -cf - . | sha256sum', 'sh', mnt], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split(' ')[0];
}

/** Waits until `file` holds `count` lines matching `re` (the daemon logs asynchronously). */
async function waitForLine(file: string, re: RegExp, count = 1): Promise<void> {
  const lines = (): number => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => re.test(l)).length : 0);
  for (let i = 0; i < 100; i++) {
    if (lines() >= count) return;
    await sleep(50);
  }
  assert.fail(`not ${count} lines matching ${re} in ${file}:\n${existsSync(file) ? readFileSync(file, 'utf8') : '(missing)'}`);
}

test('signals: SIGUSR1 reopens the log and opens no inspector; SIGHUP, SIGUSR2 logged and ignored; SIGPIPE ignored', async (t) => {
  if (!(need(t, haveNydusd(), 'no nydusd') && need(t, isRoot() && existsSync('/dev/fuse'), 'needs root and /dev/fuse') && need(t, haveFixtures(), 'needs ../shared/fixtures'))) return;
  const dir = mkdtempSync('/tmp/nydusd-signals-');
  const log = join(dir, 'nydusd.log');
  const n = await startNydusd(V5_FIXTURE, ['--log-file', log], dir);
  t.after(() => n.stop());
  const pid = n.child.pid!;
  const before = treeDigest(n.mnt);
  assert.ok(inSignalMask(pid, 'SigIgn', 13), 'SIGPIPE ignored');
  for (const sig of [10, 12, 1]) assert.ok(inSignalMask(pid, 'SigCgt', sig), `signal ${sig} caught`);

  // Log rotation: the file is moved away, SIGUSR1 makes the daemon write a new one.
  renameSync(log, `${log}.1`);
  n.child.kill('SIGUSR1');
  const reopened = /INFO\] daemon: SIGUSR1 received; log file reopened/;
  await waitForLine(log, reopened);
  assert.equal(statSync(log).mode & 0o777, 0o600, 'the new log file is owner-only');
  // The daemon's own handler ran, so the signal never reached Node's inspector trigger.
  assert.deepEqual(listeningSocketsOf(pid), [], 'no listening socket (inspector) after SIGUSR1');
  assert.doesNotMatch(n.stderr(), /Debugger listening/);
  assert.equal(treeDigest(n.mnt), before);

  for (const sig of ['SIGHUP', 'SIGUSR2'] as const) {
    n.child.kill(sig);
    await waitForLine(log, new RegExp(`WARN\\] daemon: ${sig} received; ignored`));
    assert.equal((await n.client.info()).state, 'RUNNING');
    assert.equal(treeDigest(n.mnt), before);
  }
  // A second SIGUSR1 too: still no inspector, still serving.
  n.child.kill('SIGUSR1');
  await waitForLine(log, reopened, 2);
  assert.deepEqual(listeningSocketsOf(pid), []);
  assert.equal(treeDigest(n.mnt), before);
  assert.equal(await n.stop(), 0, 'SIGTERM still ends it cleanly');
});

/** The pid of the process whose command line holds `needle`. */
function pidWith(needle: string): number | undefined {
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (cmd.includes(needle) && cmd.some((a) => a.endsWith('nydusd.js') || a.endsWith('nydusd.ts'))) return Number(p);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

test('a foreground nydusd whose terminal closes keeps serving (SIGHUP, then writes to a dead terminal)', async (t) => {
  if (!(need(t, haveNydusd(), 'no nydusd') && need(t, isRoot() && existsSync('/dev/fuse'), 'needs root and /dev/fuse') && need(t, haveFixtures(), 'needs ../shared/fixtures'))) return;
  const dir = mkdtempSync('/tmp/nydusd-hangup-');
  const mnt = join(dir, 'mnt');
  const sock = join(dir, 'api.sock');
  mkdirSync(mnt);
  const argv = [...programArgv('nydusd'), '--mountpoint', mnt, '--bootstrap', join(V5_FIXTURE, 'bootstrap'), '--localfs-dir', join(V5_FIXTURE, 'blobs'), '--apisock', sock, '--state-dir', join(dir, 'state')];
  // script(1) gives nydusd a terminal of its own; killing script hangs that terminal up.
  const term = spawn('script', ['-qfec', argv.map((a) => `'${a}'`).join(' '), '/dev/null'], { stdio: 'ignore' });
  let pid: number | undefined;
  t.after(() => {
    term.kill('SIGKILL');
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    spawnSync('umount', ['-l', mnt]);
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 100 && !(existsSync(sock) && statSync(sock).isSocket()); i++) await sleep(100);
  pid = pidWith(mnt);
  assert.ok(pid !== undefined, 'nydusd runs');
  const client = new ApiClient(sock, { timeoutMs: 10_000 });
  t.after(() => client.close());
  for (let i = 0; i < 50 && (await client.info().then((d) => d.state, () => '')) !== 'RUNNING'; i++) await sleep(100);
  const before = treeDigest(mnt);
  // script(1) has exited once its pty master is closed, which hangs the terminal up and
  // sends nydusd its SIGHUP (logged to that terminal, now gone).
  const termGone = new Promise((r) => term.once('exit', r));
  term.kill('SIGKILL');
  await termGone;
  // Make it log again, to the terminal that is gone.
  await client.request('PUT', V1.daemon, { body: { log_level: 'debug' } });
  assert.equal((await client.info()).state, 'RUNNING');
  assert.equal(treeDigest(mnt), before);
  assert.ok(existsSync(`/proc/${pid}`), 'still running');
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(100);
  assert.ok(!existsSync(`/proc/${pid}`), 'SIGTERM still ends it');
  assert.equal(isMounted(mnt), false, 'and unmounts');
});
