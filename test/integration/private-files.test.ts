// Which files are private, whatever the umask: nydusd's blobcache work_dir and files, its
// state dir and log file are owner-only; an existing cache dir others can read is warned
// about and an old world-readable cache file is made private. `nydus-image create` writes
// as upstream does: 0600 inside --blob-dir, 0666 less the umask at a path the user names.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { programArgv, V6_FIXTURE } from '../helpers/env.js';
import { runCommand } from '../helpers/run.js';
import { configJson } from '../fs/helpers.js';
import { canMount, Nydusd, workspace } from './nydusd-proc.js';

const mode = (p: string): number => statSync(p).mode & 0o777;
const octal = (m: number): string => m.toString(8).padStart(4, '0');

/** Every path under `dir` (recursively) with its mode. */
function modesUnder(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true }) as string[]) out[e] = octal(mode(join(dir, e)));
  return out;
}

/** Runs nydus-image with `umask`, from a shell. */
function nydusImage(umask: string, args: string[]) {
  return runCommand('sh', ['-c', `umask ${umask}; exec "$@"`, 'sh', ...programArgv('nydus-image'), ...args]);
}

test('nydus-image create: 0600 inside --blob-dir, 0666 less the umask at named paths', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'private-create-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'secret'), 'only for root\n', { mode: 0o600 });
  for (const umask of ['000', '022']) {
    const blobs = join(dir, `blobs-${umask}`);
    mkdirSync(blobs);
    const inDir = await nydusImage(umask, ['create', '--blob-dir', blobs, src]);
    assert.equal(inDir.code, 0, inDir.stderr);
    const made = readdirSync(blobs);
    assert.equal(made.length, 2, 'a blob and a bootstrap');
    for (const name of made) assert.equal(octal(mode(join(blobs, name))), '0600', `${name} in --blob-dir, umask ${umask}`);

    const named = join(dir, `named-${umask}`);
    mkdirSync(named);
    const r = await nydusImage(umask, ['create', '--blob', join(named, 'blob'), '--bootstrap', join(named, 'boot'), src]);
    assert.equal(r.code, 0, r.stderr);
    const want = octal(0o666 & ~parseInt(umask, 8));
    assert.deepEqual(modesUnder(named), { blob: want, boot: want }, `umask ${umask}`);
  }
});

test('nydusd under umask 000: cache, state and log owner-only; an exposed cache dir is warned about', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'private');
  const cache = join(ws.dir, 'cache');
  const log = join(ws.dir, 'logs', 'nydusd.log');
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(join(V6_FIXTURE, 'blobs'), cache));
  const args = ['-M', ws.mnt, '-B', join(V6_FIXTURE, 'bootstrap'), '-C', config, '--state-dir', ws.state, '--log-file', log, '--apisock', join(ws.dir, 'api.sock')];
  const start = async (): Promise<Nydusd> => {
    const old = process.umask(0);
    try {
      return ws.track(new Nydusd(args, ws.mnt));
    } finally {
      process.umask(old);
    }
  };
  const readAll = (): void => {
    const r = spawnSync('sh', ['-c', 'tar -C "$1" -cf - . | cat >/dev/null', 'sh', ws.mnt], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
  };

  const d = await start();
  await d.waitRunning();
  readAll();
  assert.deepEqual((await d.stop()).code, 0);
  assert.equal(octal(mode(cache)), '0700', 'work_dir');
  const cached = modesUnder(cache);
  assert.ok(Object.keys(cached).some((n) => n.endsWith('.blob.data')), `cache files written: ${Object.keys(cached)}`);
  for (const [name, m] of Object.entries(cached)) assert.equal(m, '0600', `cache file ${name}`);
  assert.equal(octal(mode(ws.state)), '0700', 'state dir');
  for (const [name, m] of Object.entries(modesUnder(ws.state))) assert.equal(m, '0600', `state file ${name}`);
  assert.equal(octal(mode(log)), '0600', 'log file');
  assert.doesNotMatch(readFileSync(log, 'utf8'), /readable by other users/, 'a dir nydusd created is private, no warning');

  // A cache dir someone made readable, holding a file an older nydusd left 0644.
  chmodSync(cache, 0o755);
  const data = join(cache, Object.keys(cached).find((n) => n.endsWith('.blob.data'))!);
  chmodSync(data, 0o644);
  const again = await start();
  await again.waitRunning();
  readAll();
  assert.deepEqual((await again.stop()).code, 0);
  assert.match(readFileSync(log, 'utf8'), /WARN\] blobcache .*cache: work_dir is readable by other users \(mode 0755\)/);
  assert.equal(octal(mode(data)), '0600', 'the old cache file is made private');
  assert.ok(existsSync(data));
});
