// Small parts of the daemon without a kernel: nydusd's argument rules (fuse flags at the
// top or after `fuse`, clap's conflicts), the state-dir escaping, upstream's time
// formats, the bounded error ring, metrics instance lookup, and the deferred journal
// of a daemon started next to the one it replaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { addFuseFlags, addGlobalFlags, toDaemonArgs, type DaemonArgs } from '../../src/cli/daemon/options.js';
import { escapeStatePath } from '../../src/daemon/state-dir.js';
import { ErrorRing, MAX_ERRORS, MAX_ERROR_BYTES } from '../../src/daemon/error-ring.js';
import { Journal } from '../../src/daemon/journal.js';
import { JournalSink } from '../../src/daemon/journal-sink.js';
import { httpDate, mountedTimeText } from '../../src/daemon/upstream-format.js';
import { NydusError, StorageError } from '../../src/errors.js';

function parse(argv: string[]): DaemonArgs {
  let out: DaemonArgs | undefined;
  const program = addFuseFlags(addGlobalFlags(new Command('nydusd'))).enablePositionalOptions().exitOverride();
  const view = (c: Command) => ({ values: c.opts(), source: (k: string) => c.getOptionValueSource(k) });
  program.action(() => void (out = toDaemonArgs(view(program))));
  addFuseFlags(addGlobalFlags(program.command('fuse'))).exitOverride().action((_o, c: Command) => void (out = toDaemonArgs(view(program), view(c))));
  program.parse(argv, { from: 'user' });
  return out!;
}

function usageError(argv: string[]): string {
  try {
    parse(argv);
  } catch (e) {
    assert.ok(e instanceof NydusError && e.code === 'ERR_CLI_USAGE', String(e));
    return e.message;
  }
  assert.fail(`accepted ${argv.join(' ')}`);
}

test('nydusd arguments: upstream names, defaults, the fuse subcommand and clap-like refusals', () => {
  const a = parse(['-M', '/m', '-B', '/b', '-C', '/c', '--thread-num', '10', '-l', 'DEBUG', '--apisock', '/s']);
  assert.deepEqual([a.mountpoint, a.bootstrap, a.config, a.threads, a.logLevel, a.apisock, a.virtualMountpoint, a.failoverPolicy, a.fuseImpl], ['/m', '/b', '/c', 10, 'debug', '/s', '/', 'resend', 'fusedev']);
  const b = parse(['--log-level', 'warn', 'fuse', '--mountpoint', '/m', '--fuse-threads', '2', '--apisock', '/s2', '--failover-policy', 'none', '--upgrade']);
  assert.deepEqual([b.mountpoint, b.threads, b.logLevel, b.apisock, b.failoverPolicy, b.upgrade], ['/m', 2, 'warn', '/s2', 'none', true]);
  assert.equal(parse(['fuse', '-M', '/m', '-l', 'error']).logLevel, 'error', 'a global flag after the subcommand');
  assert.match(usageError(['-M', '/m', 'fuse']), /cannot be given before the fuse subcommand/);
  assert.match(usageError(['-M', '/m', '--supervisor', '/sup']), /--id and --supervisor/);
  assert.match(usageError(['-M', '/m', '--prefetch-files', '/p']), /requires --bootstrap/);
  assert.match(usageError(['-M', '/m', '--shared-dir', '/d']), /passthroughfs/);
  assert.match(usageError(['-M', '/m', '--failover-policy', 'always']), /--failover-policy/);
  assert.match(usageError(['-M', '/m', '--fuse-threads', 'many']), /--fuse-threads/);
  assert.match(usageError(['-M', '/m', '--log-rotation-size', '-1']), /--log-rotation-size/);
});

test('the default state dir name escapes the mountpoint like systemd-escape', () => {
  assert.equal(escapeStatePath('/var/lib/containerd/snapshots/12/mnt'), 'var-lib-containerd-snapshots-12-mnt');
  assert.equal(escapeStatePath('/a-b/c d'), 'a\\x2db-c\\x20d');
  assert.notEqual(escapeStatePath('/a/b'), escapeStatePath('/a-b'));
  assert.equal(escapeStatePath('/'), '-');
});

test('upstream time formats', () => {
  assert.equal(mountedTimeText(Date.UTC(2023, 2, 2, 7, 43, 45, 123), 456_789), '2023-03-02 07:43:45.123456789 +00:00:00');
  assert.equal(httpDate(Date.UTC(1994, 10, 6, 8, 49, 37)), 'Sun, 06 Nov 1994 08:49:37 GMT');
});

test('the error ring keeps at most 500 entries and 51200 bytes, oldest dropped first', () => {
  const ring = new ErrorRing();
  for (let i = 0; i < 600; i++) ring.push(new StorageError('ERR_STORAGE_BACKEND', `failed to read blob ${i}`));
  let j = ring.toJSON();
  assert.equal(j.total_errors, MAX_ERRORS);
  assert.match(j.errors[0], /blob 100$/);
  assert.match(j.errors.at(-1)!, / GMT - ERR_STORAGE_BACKEND: failed to read blob 599$/);
  for (let i = 0; i < 100; i++) ring.push(new Error('x'.repeat(1000)));
  j = ring.toJSON();
  assert.ok(j.total_size <= MAX_ERROR_BYTES && j.total_size > MAX_ERROR_BYTES - 1100);
  assert.equal(j.total_size, j.errors.reduce((n, e) => n + Buffer.byteLength(e), 0));
});

test('a journal held by a live process is deferred in memory and written once attached', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'daemon-sink-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const holder = await Journal.open(dir);
  await holder.append({ type: 'log-level', level: 'info' });
  await assert.rejects(JournalSink.open(dir), (e: unknown) => (e as NydusError).code === 'ERR_DAEMON_JOURNAL');
  const sink = await JournalSink.open(dir, { deferIfHeld: true });
  assert.equal(sink.deferred, true);
  await sink.append({ type: 'transition', from: 'INIT.idle', to: 'STOPPED', event: 'STOP' });
  assert.equal(sink.state.lastState, 'STOPPED');
  assert.deepEqual((await sink.records({ sinceSeq: 0, limit: 10 })).map((r) => r.type), ['transition']);
  await holder.close();
  await sink.attach();
  assert.equal(sink.deferred, false);
  assert.deepEqual((await sink.records({ sinceSeq: 0, limit: 10 })).map((r) => r.type), ['log-level', 'transition']);
  assert.equal(sink.state.lastState, 'STOPPED');
  await sink.close();
});
