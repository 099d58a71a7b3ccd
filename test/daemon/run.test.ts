// The daemon's start sequence as a library call (src/daemon/run.ts), the way an embedder
// uses it from the package entry: a --bootstrap/--config mount served on a real FUSE
// mount with the real admin API, stopped through the abort signal; and a start that fails
// before serving leaves nothing mounted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, ConfigError, runDaemon, startApiServer, type DaemonControl } from '../../src/index.js';
import { findMount } from '../../src/fuse/mount-linux.js';
import { V5_FIXTURE } from '../helpers/env.js';
import { run, runOk } from '../conformance/child.js';
import { configJson } from '../fs/helpers.js';
import { canMount } from './helpers.js';

function tempDir(t: { after(fn: () => Promise<void>): void }): { dir: string; mnt: string } {
  const dir = mkdtempSync(join(tmpdir(), 'daemon-run-'));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  t.after(async () => {
    if (await findMount(mnt)) await run('umount', ['-l', mnt]);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, mnt };
}

test('runDaemon serves --bootstrap with --config through FUSE and the admin API, and stops when its signal aborts', async (t) => {
  if (!canMount(t)) return;
  const { dir, mnt } = tempDir(t);
  const config = join(dir, 'config.json');
  writeFileSync(config, configJson(join(V5_FIXTURE, 'blobs'), join(dir, 'cache')));
  const sock = join(dir, 'api.sock');
  const stop = new AbortController();
  let served!: (control: DaemonControl) => void;
  const running = new Promise<DaemonControl>((r) => (served = r));
  const ended = runDaemon({
    mountpoint: mnt,
    bootstrap: join(V5_FIXTURE, 'bootstrap'),
    config,
    stateDir: join(dir, 'state'),
    stop: stop.signal,
    serveApi: async (control) => {
      const api = await startApiServer(control, sock);
      served(control);
      return api;
    },
  });
  t.after(() => {
    stop.abort();
    return ended.then(() => undefined, () => undefined);
  });
  // The API starts once the daemon is RUNNING: a race with the start would fail here.
  await Promise.race([running, ended.then(() => assert.fail('runDaemon ended before serving'))]);
  const info = await new ApiClient(sock).info();
  assert.equal(info.state, 'RUNNING');
  assert.equal((await runOk('ls', [mnt])).trim().split('\n').join(' '), 'hardlink-test normal-file-test symlink-test');
  stop.abort();
  assert.equal(await ended, 'signal');
  assert.equal(await findMount(mnt), undefined, 'a stop unmounts');
});

test('runDaemon: an unreadable --prefetch-files fails the start with a ConfigError before anything is mounted', async (t) => {
  const { dir, mnt } = tempDir(t);
  const err = await runDaemon({
    mountpoint: mnt,
    bootstrap: join(V5_FIXTURE, 'bootstrap'),
    localfsDir: join(V5_FIXTURE, 'blobs'),
    prefetchFiles: join(dir, 'no-such-list'),
    stateDir: join(dir, 'state'),
  }).then(
    () => assert.fail('the start succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError, String(err));
  assert.match(err.message, /failed to read prefetch list .*no-such-list/);
  assert.equal(await findMount(mnt), undefined);
});
