// Runs examples/supervisor.ts as its README does, against the v5 fixture, while readers
// and a holder use the mount: `upgrade` to the same nydusd, `upgrade --nydusd` to another
// executable, `failover` on request, a recovery it does by itself after an outside
// kill -9, and `stop`. Every command succeeds, no read fails, the mount stays until stop.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { linkBlobs } from '../../test/api/nydusd-process.js';
import { FROM_SOURCE, haveFixtures, isMounted, isRoot, need, programArgv, REPO_ROOT, V5_FIXTURE } from '../../test/helpers/env.js';
import { runCommand } from '../../test/helpers/run.js';
import { readTreeJson } from '../../test/rafs/helpers/fixtures.js';
import { Load } from '../../test/upgrade/readers.js';

const MAIN = FROM_SOURCE ? ['--import', 'tsx', join(REPO_ROOT, 'examples', 'supervisor.ts')] : [join(REPO_ROOT, 'dist', 'examples', 'supervisor.js')];

function command(dir: string, ...args: string[]) {
  return runCommand(process.execPath, [...MAIN, args[0], '--dir', dir, ...args.slice(1)], { timeoutMs: 60_000 });
}

test('examples/supervisor.ts: upgrade (same and another nydusd), failover, recovery after kill -9, stop', async (t) => {
  if (!need(t, isRoot() && existsSync('/dev/fuse') && haveFixtures(), 'needs root, /dev/fuse and the fixtures')) return;
  const dir = mkdtempSync('/tmp/upgrade-example-');
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const blobs = linkBlobs(V5_FIXTURE, join(dir, 'blobs'));
  const run = spawn(process.execPath, [...MAIN, 'run', '--dir', dir, '--', '--mountpoint', mnt, '--bootstrap', join(V5_FIXTURE, 'bootstrap'), '--localfs-dir', blobs, '--log-file', join(dir, 'nydusd.log')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const runExit = new Promise<number | null>((r) => run.once('exit', (code) => r(code)));
  const lines: string[] = [];
  let waiter: { re: RegExp; resolve: () => void } | undefined;
  createInterface({ input: run.stdout! }).on('line', (l) => {
    lines.push(l);
    if (waiter?.re.test(l)) waiter.resolve();
  });
  /** The supervisor's own output: resolves once a line from index `from` on matches. */
  let stderr = '';
  run.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const line = (re: RegExp, from = 0) =>
    lines.slice(from).some((l) => re.test(l))
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no line ${re} in:\n${lines.join('\n')}\n${stderr}`)), 60_000);
          waiter = { re, resolve: () => (clearTimeout(timer), resolve()) };
        });
  let load: Load | undefined;
  t.after(async () => {
    load?.kill();
    if (run.exitCode === null) {
      run.kill('SIGTERM');
      await runExit;
    }
    if (isMounted(mnt)) await runCommand('umount', ['-l', mnt]);
    rmSync(dir, { recursive: true, force: true });
  });

  await line(/^supervisor: ready; commands on /);
  const files = [...readTreeJson().md5].map(([p, digest]) => ({ path: mnt + p, algo: 'md5' as const, digest }));
  load = Load.start(join(dir, 'stop-readers'), 4, files, {
    dir: join(mnt, 'hardlink-test'),
    file: { name: 'foo', algo: 'md5', digest: readTreeJson().md5.get('/hardlink-test/foo')! },
    names: ['foo', 'test.sh'],
  });
  await load.warm();

  const up = await command(dir, 'upgrade');
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const steps = up.stdout.trim().split('\n');
  assert.match(steps[0], /^spawned nydusd pid \d+ \(--upgrade\), API on .*api-1\.sock$/);
  for (const re of [/^pid \d+ is INIT$/, /^takeover: pid \d+ received the state and fd$/, /^pid \d+ is READY$/, /^exit: old pid \d+ stopped reading and left \(exit 0\); the mount stays$/, /^upgrade done in \d+ ms; nobody read the mount for \d+ ms$/]) {
    assert.ok(steps.some((s) => re.test(s)), `${re} in ${up.stdout}`);
  }
  assert.equal(steps.at(-1), 'ok');

  // Another executable: a wrapper that marks its process, then runs this checkout's nydusd.
  const wrapper = join(dir, 'nydusd-next');
  writeFileSync(wrapper, `#!/bin/sh\nexport NYDUSD_WRAPPER=next\nexec ${programArgv('nydusd').join(' ')} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const other = await command(dir, 'upgrade', '--nydusd', wrapper);
  assert.equal(other.code, 0, other.stdout + other.stderr);
  const pid = Number(/^spawned nydusd pid (\d+)/m.exec(other.stdout)![1]);
  assert.match(readFileSync(`/proc/${pid}/environ`, 'latin1'), /(^|\0)NYDUSD_WRAPPER=next\0/, 'the new daemon came from the other executable');

  const fo = await command(dir, 'failover');
  assert.equal(fo.code, 0, fo.stdout + fo.stderr);
  assert.match(fo.stdout, /^killed pid \d+ with SIGKILL$/m);
  assert.match(fo.stdout, /^failover done in \d+ ms$/m);
  const current = Number([...fo.stdout.matchAll(/^spawned nydusd pid (\d+)/gm)].at(-1)![1]);
  assert.match(readFileSync(`/proc/${current}/environ`, 'latin1'), /NYDUSD_WRAPPER=next/, 'a failover restarts the same executable');

  // Nobody asks: the supervisor sees the death and recovers by itself.
  const from = lines.length;
  process.kill(current, 'SIGKILL');
  await line(new RegExp(`^supervisor: daemon pid ${current} died \\(SIGKILL\\): failing over$`), from);
  await line(/^supervisor: failover done in \d+ ms$/, from);

  const report = await load.stop();
  load = undefined;
  assert.deepEqual(report.bad, []);
  assert.deepEqual(report.early, []);
  assert.ok(isMounted(mnt), 'the mount stayed through all of it');

  const stop = await command(dir, 'stop');
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  assert.match(stop.stdout, /^stopped pid \d+ \(exit 0\); the mount is gone$/m);
  assert.equal(await runExit, 0, stderr);
  assert.equal(isMounted(mnt), false);
});
