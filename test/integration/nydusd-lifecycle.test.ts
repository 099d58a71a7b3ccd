// nydusd's process lifecycle: startup errors (one line, exit 1 or 2 for arguments, no
// mount left), kill -9 leaving an ENOTCONN mount that `umount -l` / `fusermount3 -u -z`
// clear, a lazy umount from outside ending the daemon, and the admin socket: it appears
// once RUNNING, SIGTERM removes it and unmounts, API exit removes it and keeps the mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findMount } from '../../src/fuse/mount-linux.js';
import { V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { run, runOk } from '../conformance/child.js';
import { configJson } from '../fs/helpers.js';
import { Nydusd, canMount, workspace } from './nydusd-proc.js';

const B5 = join(V5_FIXTURE, 'bootstrap');

test('startup errors: one line, exit 1 (2 for arguments), nothing mounted', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'errors');
  const good = join(ws.dir, 'good.json');
  writeFileSync(good, configJson(join(V5_FIXTURE, 'blobs'), join(ws.dir, 'cache')));
  const badJson = join(ws.dir, 'bad.json');
  writeFileSync(badJson, '{"version": 2, ');
  const badBackend = join(ws.dir, 'unknown-backend.json');
  writeFileSync(badBackend, JSON.stringify({ version: 2, backend: { type: 'nope', nope: {} } }));
  const base = ['--state-dir', ws.state];
  const cases: [string[], number, RegExp][] = [
    [['-M', ws.mnt, '-B', '/nonexistent/bootstrap', '-C', good], 1, /^nydusd: ERR_DAEMON_BOOTSTRAP: failed to open bootstrap \/nonexistent\/bootstrap/],
    [['-M', ws.mnt, '-B', B5, '-C', badJson], 1, /^nydusd: ERR_CONFIG_INVALID: failed to parse config: invalid JSON/],
    [['-M', ws.mnt, '-B', B5, '-C', badBackend], 1, /^nydusd: ERR_CONFIG_INVALID: .*backend\.type/],
    [['-M', ws.mnt, '-B', B5], 1, /^nydusd: ERR_CONFIG_INVALID: .*both --config and --localfs-dir are missing/],
    [['-M', join(ws.dir, 'missing'), '-B', B5, '-C', good], 1, /^nydusd: ERR_FUSE_MOUNT: failed to mount at .*missing/],
    [['-B', B5, '-C', good], 2, /^nydusd: ERR_CLI_USAGE: .*--mountpoint/],
    [['-M', ws.mnt, '--writable'], 2, /^nydusd: ERR_CLI_USAGE: --writable is not supported/],
    [['-M', ws.mnt, '--fuse-threads', '1025'], 2, /^nydusd: ERR_CLI_USAGE: invalid value "1025" for --fuse-threads/],
    [['-M', ws.mnt, '--id', 'x'], 2, /^nydusd: ERR_CLI_USAGE: --id and --supervisor must be given together/],
    [['-M', ws.mnt, '-C', good, '-D', ws.dir], 2, /^nydusd: ERR_CLI_USAGE: --config cannot be used with --localfs-dir/],
    [['-M', ws.mnt, '--log-level', 'loud'], 2, /^nydusd: ERR_CLI_USAGE: invalid value "loud" for --log-level/],
    [['--no-such-flag'], 2, /^nydusd: error: unknown option/],
  ];
  for (const [args, code, line] of cases) {
    const d = ws.track(new Nydusd([...args, ...base], ws.mnt));
    const exit = await d.exited;
    assert.equal(exit.code, code, `${args.join(' ')}: ${d.stderr}`);
    const lines = d.stderr.split('\n').filter((l) => l.startsWith('nydusd:'));
    assert.equal(lines.length, 1, d.stderr);
    assert.match(lines[0], line);
    assert.equal(await findMount(ws.mnt), undefined, 'nothing mounted');
  }
  // A mountpoint another daemon already serves.
  const first = ws.track(new Nydusd(['-M', ws.mnt, '-B', B5, '-C', good, '--state-dir', join(ws.dir, 's1')], ws.mnt));
  await first.waitRunning();
  const second = ws.track(new Nydusd(['-M', ws.mnt, '-B', B5, '-C', good, '--state-dir', join(ws.dir, 's2')], ws.mnt));
  assert.equal((await second.exited).code, 1);
  assert.match(second.stderr, /nydusd: ERR_FUSE_MOUNT: failed to mount at .*already a FUSE mount/);
  await runOk('stat', [join(ws.mnt, 'symlink-test')]);
  assert.deepEqual(await first.stop(), { code: 0, signal: null });
});

for (const cleanup of [['umount', '-l'], ['fusermount3', '-u', '-z']]) {
  test(`kill -9 leaves an ENOTCONN mount that ${cleanup.join(' ')} removes`, async (t) => {
    if (!canMount(t)) return;
    const ws = workspace(t, 'kill9');
    const d = ws.track(new Nydusd(['-M', ws.mnt, '-B', join(V6_FIXTURE, 'bootstrap'), '-D', join(ws.dir, 'blobs-unused'), '--state-dir', ws.state], ws.mnt));
    await d.waitRunning();
    assert.deepEqual(await d.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
    const r = await run('ls', [ws.mnt]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Transport endpoint is not connected/);
    await runOk(cleanup[0], [...cleanup.slice(1), ws.mnt]);
    assert.equal(await findMount(ws.mnt), undefined);
    assert.equal((await runOk('ls', ['-A', ws.mnt])).trim(), '', 'the mountpoint is an empty directory again');
  });
}

test('umount -l from outside: the daemon sees the connection end and exits 0', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'lazy');
  const d = ws.track(new Nydusd(['-M', ws.mnt, '-B', join(V6_FIXTURE, 'bootstrap'), '-D', join(ws.dir, 'blobs-unused'), '--state-dir', ws.state, '--fuse-threads', '2'], ws.mnt));
  await d.waitRunning();
  await runOk('umount', ['-l', ws.mnt]);
  const exit = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
  assert.deepEqual(exit, { code: 0, signal: null }, d.stderr);
  assert.match(d.stderr, /kernel ended the connection/);
});

test('--apisock: the socket appears once RUNNING; SIGTERM removes it and unmounts; API exit keeps the mount', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'api');
  const sock = join(ws.dir, 'api.sock');
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(join(V5_FIXTURE, 'blobs'), join(ws.dir, 'cache')));
  const args = ['-M', ws.mnt, '-B', B5, '-C', config, '--state-dir', ws.state, '--apisock', sock, '--id', 'daemon-1', '--supervisor', join(ws.dir, 'sup.sock')];
  const d = ws.track(new Nydusd(args, ws.mnt));
  await d.waitRunning();
  const api = d.api();
  const info = await api.info();
  assert.equal(info.state, 'RUNNING');
  assert.equal(info.id, 'daemon-1');
  assert.deepEqual(Object.keys(info.backend_collection ?? {}), ['/']);
  api.close();
  assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null });
  assert.equal(existsSync(sock), false, 'the socket file is removed');
  assert.equal(await findMount(ws.mnt), undefined);

  const d2 = ws.track(new Nydusd(args, ws.mnt));
  await d2.waitRunning();
  const api2 = d2.api();
  await api2.exit();
  api2.close();
  assert.deepEqual(await d2.exited, { code: 0, signal: null }, d2.stderr);
  assert.equal(existsSync(sock), false);
  assert.ok(await findMount(ws.mnt), 'exit leaves the FUSE mount for a successor');
  const r = await run('ls', [ws.mnt]);
  assert.match(r.stderr, /Transport endpoint is not connected/);
});
