// The registry backend through the real nydusd and a kernel FUSE mount: a directory
// becomes a registry image with `nydus-image create` + `nydus-image push`, `nydusd
// --image` mounts it by reference and a program runs from the mount; registry faults
// reach the reader as EIO while the daemon keeps serving and reports them (metrics,
// events, log), and it reads again once the registry recovers; prefetch configured in
// the config fills the cache in the background (blobcache metrics); credentials sent
// with PUT /api/v1/config reach the running mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openBootstrap } from '../../src/rafs/index.js';
import { encodeAuth } from '../../src/http/auth.js';
import { planPrefetch } from '../../src/storage/prefetch-list.js';
import { haveFixtures, isRoot, need } from '../helpers/env.js';
import { startFaultProxy } from '../helpers/registry-fault-proxy.js';
import { buildImage, random, textLike } from '../helpers/registry-images.js';
import { haveNydusd, prefetchEnded, startDaemon } from '../helpers/registry-nydusd.js';
import { haveRegistry, startRegistry } from '../helpers/registry-server.js';
import { runCommand, runProgram } from '../helpers/run.js';

const LS = '/usr/bin/ls';

function canMount(): boolean {
  return isRoot() && existsSync('/dev/fuse') && haveNydusd() && haveRegistry();
}

function workDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync('/tmp/registry-daemon-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function cacheConfig(dir: string, extra: Record<string, unknown> = {}): string {
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify({ version: 2, cache: { type: 'blobcache', filecache: { work_dir: join(dir, 'cache') } }, ...extra }));
  return path;
}

test('a directory becomes a registry image with two commands; nydusd --image mounts it and a program runs from it', async (t) => {
  if (!need(t, canMount() && existsSync(LS) && haveFixtures(), 'needs root, /dev/fuse, nydusd, docker-registry and /usr/bin/ls')) return;
  const image = await buildImage(t, { 'bin/ls': { data: readFileSync(LS), mode: 0o755 }, 'etc/motd': 'served lazily from a registry\n', 'srv/big.bin': random(3 << 20) });
  const reg = await startRegistry(t);
  const ref = `${reg.host}/demo/app:nydus`;
  const push = await runProgram('nydus-image', ['push', image.bootstrap, '--blob-dir', image.blobDir, '--target', ref]);
  assert.equal(push.code, 0, push.stderr);
  const dir = workDir(t);
  const d = await startDaemon(t, ['--image', ref, '--config', cacheConfig(dir)]);
  const ls = await runCommand(join(d.mnt, 'bin/ls'), [join(d.mnt, 'etc'), join(d.mnt, 'srv')]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(ls.stdout.split('\n').filter((l) => l !== '' && !l.endsWith(':')), ['motd', 'big.bin']);
  assert.equal(readFileSync(join(d.mnt, 'etc/motd'), 'utf8'), 'served lazily from a registry\n');
  const m = (await d.get('/api/v1/metrics/backend')).body as { backend_type: string; read_count: number; read_amount_total: number };
  assert.equal(m.backend_type, 'registry');
  assert.ok(m.read_count > 0);
  assert.ok(m.read_amount_total < image.blobBytes / 2, `read ${m.read_amount_total} of ${image.blobBytes} blob bytes to run ls`);
  const info = (await d.get('/api/v1/daemon')).body as { backend_collection: Record<string, { config: { backend: { registry: Record<string, unknown> } } }> };
  const registry = info.backend_collection['/'].config.backend.registry;
  assert.deepEqual([registry.host, registry.repo, registry.scheme], [reg.host, 'demo/app', 'http']);
  t.diagnostic(`ls from the mount: ${m.read_count} backend requests, ${m.read_amount_total} of ${image.blobBytes} blob bytes`);
  // The fetched bootstrap lands in the cache work_dir, which the fetch creates owner-only.
  assert.equal(statSync(join(dir, 'cache')).mode & 0o777, 0o700);
  assert.doesNotMatch(d.stderr(), /readable by other users/);
});

test('through the mount: a failing registry is EIO for the read that needs it, the daemon keeps serving and reports it, and recovers', async (t) => {
  if (!need(t, canMount(), 'needs root, /dev/fuse, nydusd and docker-registry')) return;
  const image = await buildImage(t, { 'a.txt': textLike(300_000, 1), 'b.txt': textLike(300_000, 2), 'c.bin': random(200_000) });
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(t, reg.port);
  const push = await runProgram('nydus-image', ['push', image.bootstrap, '-D', image.blobDir, '-t', `${reg.host}/faults/app:1`]);
  assert.equal(push.code, 0, push.stderr);
  const dir = workDir(t);
  const config = cacheConfig(dir, {
    backend: { type: 'registry', registry: { scheme: 'http', host: 'ignored', repo: 'ignored', retry_limit: 2, timeout: 2 } },
    rafs: { batch_size: 0 },
  });
  const d = await startDaemon(t, ['--image', `${proxy.host}/faults/app:1`, '--config', config]);
  // The mount is read by child processes only: this process runs the fault proxy the daemon waits on.
  assert.equal((await runCommand('cat', [join(d.mnt, 'a.txt')])).stdout.length, 300_000, 'cached before the fault');

  proxy.setPlan((req) => (req.path.includes('/blobs/') ? { kind: 'status', status: 503 } : { kind: 'pass' }));
  const cat = await runCommand('cat', [join(d.mnt, 'b.txt')]);
  assert.notEqual(cat.code, 0);
  assert.match(cat.stderr, /Input\/output error/);
  assert.equal(((await d.get('/api/v1/daemon')).body as { state: string }).state, 'RUNNING', 'the daemon is alive');
  assert.equal((await runCommand('cat', [join(d.mnt, 'a.txt')])).stdout.length, 300_000, 'cached data keeps serving');
  const events = (await d.get('/api/v1/daemon/events')).body as { total_errors: number; errors: string[] };
  assert.ok(events.total_errors >= 1);
  assert.match(events.errors.at(-1)!, /ERR_STORAGE_BACKEND.*HTTP status 503/);
  const m = (await d.get('/api/v1/metrics/backend')).body as { read_errors: number };
  assert.ok(m.read_errors >= 1);
  assert.match(d.stderr(), /retrying in \d+ ms/);
  assert.match(d.stderr(), /gave up after 3 attempts/);

  proxy.setPlan(() => ({ kind: 'pass' }));
  const again = await runCommand('cat', [join(d.mnt, 'b.txt')]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, textLike(300_000, 2).toString());
});

test('prefetch from the config and --prefetch-files fills the cache in the background; the blobcache metrics show it', async (t) => {
  if (!need(t, canMount(), 'needs root, /dev/fuse, nydusd and docker-registry')) return;
  const files: Record<string, Buffer | string> = { 'etc/hostname': 'pf\n' };
  for (let i = 0; i < 4; i++) files[`lib/l${i}.so`] = random(400_000);
  files['data/huge.txt'] = textLike(3 << 20, 9);
  const image = await buildImage(t, files);
  const reg = await startRegistry(t);
  const push = await runProgram('nydus-image', ['push', image.bootstrap, '-D', image.blobDir, '-t', `${reg.host}/pf/app:1`]);
  assert.equal(push.code, 0, push.stderr);
  const dir = workDir(t);
  const list = join(dir, 'prefetch.txt');
  writeFileSync(list, '/lib\n/etc/hostname\n');
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      device: {
        backend: { type: 'registry', config: { scheme: 'http', host: 'x', repo: 'x' } },
        cache: { type: 'blobcache', config: { work_dir: join(dir, 'cache') } },
      },
      mode: 'direct',
      fs_prefetch: { enable: true, threads_count: 2, merging_size: 131072, bandwidth_rate: 0, prefetch_all: false },
    }),
  );
  const d = await startDaemon(t, ['--image', `${reg.host}/pf/app:1`, '--config', config, '--prefetch-files', list]);
  const cache = await prefetchEnded(d);
  const sb = await openBootstrap(image.bootstrap);
  const listed = planPrefetch(sb, { files: ['/lib', '/etc/hostname'], all: false });
  assert.equal(cache.prefetch_data_amount, listed.reduce((n, c) => n + c.compressedSize, 0), 'exactly the listed files (not data/huge.txt)');
  assert.equal(cache.prefetch_unmerged_chunks, listed.length);
  assert.equal(cache.prefetch_workers, 2);
  const before = ((await d.get('/api/v1/metrics/backend')).body as { read_count: number }).read_count;
  const cat = await runCommand('cat', [join(d.mnt, 'lib/l2.so'), join(d.mnt, 'etc/hostname')]);
  assert.equal(cat.code, 0);
  const after = ((await d.get('/api/v1/metrics/backend')).body as { read_count: number }).read_count;
  assert.equal(after, before, 'prefetched files are read from the cache');
  t.diagnostic(`prefetch: ${cache.prefetch_data_amount} bytes in ${cache.prefetch_requests_count} requests, ${cache.prefetch_cumulative_time_millis} ms`);
});

test('PUT /api/v1/config registry_auth replaces the credentials of the running mount: reads refused before work after', async (t) => {
  if (!need(t, canMount(), 'needs root, /dev/fuse, nydusd and docker-registry')) return;
  const password = 'rotated secret';
  const image = await buildImage(t, { 'a.txt': textLike(200_000, 3) });
  const reg = await startRegistry(t, { kind: 'basic', users: { alice: password } });
  const push = await runProgram('nydus-image', ['push', image.bootstrap, '-D', image.blobDir, '-t', `${reg.host}/auth/app:1`], {
    env: { ...process.env, IMAGE_PUSH_AUTH: encodeAuth('alice', password) },
  });
  assert.equal(push.code, 0, push.stderr);
  const dir = workDir(t);
  const stale = encodeAuth('alice', 'expired');
  const config = cacheConfig(dir, { backend: { type: 'registry', registry: { scheme: 'http', host: reg.host, repo: 'auth/app', auth: stale, retry_limit: 0 } } });
  const d = await startDaemon(t, ['--bootstrap', image.bootstrap, '--config', config]);
  const refused = await runCommand('cat', [join(d.mnt, 'a.txt')]);
  assert.notEqual(refused.code, 0, 'stale credentials are refused by the registry');
  assert.match(refused.stderr, /Input\/output error/);

  const bad = await d.put('/api/v1/config?id=/', { registry_auth: 'not base64 of a user' });
  assert.equal(bad.status, 500);
  assert.match((bad.body as { message: string }).message, /registry_auth/);
  assert.deepEqual((await d.get('/api/v1/config?id=/')).body, {}, 'a refused value is not stored');

  const fresh = encodeAuth('alice', password);
  assert.equal((await d.put('/api/v1/config?id=/', { registry_auth: fresh })).status, 204);
  assert.deepEqual((await d.get('/api/v1/config?id=/')).body, { registry_auth: '<redacted>' }, 'stored, and never echoed');
  const cat = await runCommand('cat', [join(d.mnt, 'a.txt')]);
  assert.equal(cat.code, 0, cat.stderr);
  assert.equal(cat.stdout, textLike(200_000, 3).toString());
  assert.doesNotMatch(d.stderr(), /rotated secret|expired/, 'no secret reaches the log');
});
