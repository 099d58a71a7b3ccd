// End to end through the real programs against the real S3 server: a Debian minbase root
// filesystem built with `nydus-image create`, its blobs pushed with `nydus-image push
// --target s3://...`, mounted by nydusd from a documented s3 config, read lazily through
// the kernel mount (bytes equal, little of the blob fetched); keys rotated through
// `PUT /api/v1/config`; `nydus-image check` / `unpack` with `--backend-type s3`; and no
// secret in the log, the journal, API answers or error messages.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isRoot, need } from '../helpers/env.js';
import { haveNydusd, prefetchEnded, startDaemon } from '../helpers/registry-nydusd.js';
import { fileOwner } from '../helpers/registry-server.js';
import { runCommand, runProgram } from '../helpers/run.js';
import { startFaultProxy } from '../helpers/registry-fault-proxy.js';
import { startS3, type S3Server } from '../helpers/s3-server.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { planPrefetch } from '../../src/storage/prefetch-list.js';
import { ensureRootfs } from '../builder/rootfs.js';

const KEY = { id: 'NYDUSPUSHER', secret: 'push+secret/do-not-leak-1' };
const ROTATED = { id: 'NYDUSREADER2', secret: 'rotated+secret/do-not-leak-2' };
const PREFIX = 'images/bookworm/';
const b64 = (k: { id: string; secret: string }): string => Buffer.from(`${k.id}:${k.secret}`).toString('base64');

interface Shared {
  rootfs: string;
  s3: S3Server;
  bootstrap: string;
  blobBytes: number;
  work: string;
}

const owner = fileOwner();
let shared: Promise<Shared | string> | undefined;

function canMount(): boolean {
  return isRoot() && existsSync('/dev/fuse') && haveNydusd();
}

/** The rootfs image, built once for this file and pushed to s3rver with the CLI. */
function image(): Promise<Shared | string> {
  shared ??= (async () => {
    const { dir: rootfs, reason } = await ensureRootfs();
    if (rootfs === undefined) return reason ?? 'no rootfs';
    const work = mkdtempSync('/tmp/s3-daemon-');
    owner.after(() => rmSync(work, { recursive: true, force: true }));
    const blobDir = join(work, 'blobs');
    mkdirSync(blobDir);
    const bootstrap = join(work, 'image.boot');
    const made = await runProgram('nydus-image', ['create', '--bootstrap', bootstrap, '--blob-dir', blobDir, rootfs], { timeoutMs: 600_000 });
    if (made.code !== 0) throw new Error(`nydus-image create: ${made.stderr}`);
    const s3 = await startS3(owner);
    s3.addKey(KEY.id, KEY.secret);
    const backendConfig = join(work, 'push-backend.json');
    writeFileSync(backendConfig, JSON.stringify({ endpoint: s3.endpoint, scheme: 'http', region: 'us-east-1', access_key_id: KEY.id, access_key_secret: KEY.secret }));
    const target = `s3://${s3.bucket}/${PREFIX}`;
    const push = await runProgram('nydus-image', ['push', bootstrap, '--blob-dir', blobDir, '--target', target, '--backend-config', backendConfig]);
    if (push.code !== 0) throw new Error(`nydus-image push: ${push.stderr}`);
    assert.match(push.stdout, /\(1 uploaded, 0 already present\)/);
    const again = await runProgram('nydus-image', ['push', bootstrap, '--blob-dir', blobDir, '--target', target, '--backend-config', backendConfig]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /\(0 uploaded, 1 already present\)/, 'a blob already in the bucket is not uploaded again');
    assert.ok(!push.stderr.includes(KEY.secret) && !push.stdout.includes(KEY.secret));
    const blobBytes = readdirSync(blobDir).reduce((n, f) => n + statSync(join(blobDir, f)).size, 0);
    return { rootfs, s3, bootstrap, blobBytes, work };
  })();
  return shared;
}

/** The documented legacy (v1) nydusd config reading the pushed blobs. */
function nydusdConfig(t: TestContext, s: Shared, keys: { id: string; secret: string }, s3: Record<string, unknown> = {}, rest: Record<string, unknown> = {}): string {
  const dir = mkdtempSync('/tmp/s3-nydusd-cfg-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'nydusd.json');
  const config = {
    device: {
      backend: {
        type: 's3',
        config: {
          endpoint: s.s3.endpoint,
          scheme: 'http',
          bucket_name: s.s3.bucket,
          region: 'us-east-1',
          object_prefix: PREFIX,
          access_key_id: keys.id,
          access_key_secret: keys.secret,
          timeout: 5,
          connect_timeout: 5,
          retry_limit: 2,
          ...s3,
        },
      },
      cache: { type: 'blobcache', config: { work_dir: join(dir, 'cache') } },
    },
    mode: 'direct',
    digest_validate: false,
    amplify_io: 131072,
    ...rest,
  };
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

test('nydusd mounts the image from the s3 bucket: bytes equal, one small file fetches little of the blob; keys rotate through PUT /api/v1/config; no secret leaks', async (t) => {
  if (!need(t, canMount(), 'needs root, /dev/fuse and nydusd')) return;
  const s = await image();
  if (!need(t, typeof s !== 'string', `rootfs: ${String(s)}`)) return;
  const img = s as Shared;
  const d = await startDaemon(t, ['--bootstrap', img.bootstrap, '--config', nydusdConfig(t, img, KEY), '--log-level', 'debug']);

  const cat = await runCommand('sh', ['-c', `cat ${join(d.mnt, 'etc/os-release')} | md5sum; md5sum < ${join(img.rootfs, 'etc/os-release')}`]);
  const [a, b] = cat.stdout.trim().split('\n');
  assert.equal(a, b, 'etc/os-release is byte-equal');
  const small = (await d.get('/api/v1/metrics/backend')).body as { backend_type: string; read_amount_total: number; read_count: number };
  assert.equal(small.backend_type, 's3');
  assert.ok(small.read_amount_total > 0 && small.read_amount_total < img.blobBytes * 0.01, `one small file fetched ${small.read_amount_total} of ${img.blobBytes} bytes`);
  t.diagnostic(`etc/os-release: ${small.read_amount_total} bytes in ${small.read_count} requests, ${((small.read_amount_total / img.blobBytes) * 100).toFixed(3)}% of the ${img.blobBytes}-byte blob`);

  const ls = await runCommand('cmp', [join(d.mnt, 'usr/bin/ls'), join(img.rootfs, 'usr/bin/ls')]);
  assert.equal(ls.code, 0, `usr/bin/ls differs: ${ls.stdout}${ls.stderr}`);

  // Rotation: the key the mount uses is revoked; reads of uncached data fail with EIO...
  img.s3.revokeKey(KEY.id);
  img.s3.addKey(ROTATED.id, ROTATED.secret);
  const refused = await runCommand('cat', [join(d.mnt, 'usr/bin/dpkg')]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /Input\/output error/);
  // ...until the new key arrives through the API, without a restart.
  assert.equal((await d.put('/api/v1/config?id=/', { registry_auth: b64(ROTATED) })).status, 204);
  const dpkg = await runCommand('cmp', [join(d.mnt, 'usr/bin/dpkg'), join(img.rootfs, 'usr/bin/dpkg')]);
  assert.equal(dpkg.code, 0, dpkg.stderr);
  img.s3.addKey(KEY.id, KEY.secret);

  // No secret in API answers, the events, the log or the journal.
  const answers = await Promise.all(['/api/v1/daemon', '/api/v1/config', '/api/v1/config?id=/', '/api/v1/daemon/events', '/api/v1/metrics/backend'].map((p) => d.get(p)));
  const stateDir = join(d.dir, 'state');
  const journal = readdirSync(stateDir, { recursive: true })
    .map((f) => join(stateDir, String(f)))
    .filter((f) => statSync(f).isFile())
    .map((f) => readFileSync(f, 'latin1'))
    .join('\n');
  assert.ok(journal.length > 0, 'the journal was written');
  const places = { api: JSON.stringify(answers), log: d.stderr(), journal };
  assert.match(places.api, /access denied: HTTP status 403, InvalidAccessKeyId/, 'the refused read is an event naming the cause');
  for (const [where, text] of Object.entries(places)) {
    for (const secret of [KEY.secret, ROTATED.secret, b64(KEY), b64(ROTATED)]) assert.ok(!text.includes(secret), `a secret is in the ${where}`);
  }
});

test('nydus-image check and unpack read the blobs from the bucket with --backend-type s3; a wrong key is a one-line error', async (t) => {
  const s = await image();
  if (!need(t, typeof s !== 'string', `rootfs: ${String(s)}`)) return;
  const img = s as Shared;
  const backend = (keys: { id: string; secret: string }) =>
    JSON.stringify({ endpoint: img.s3.endpoint, scheme: 'http', bucket_name: img.s3.bucket, object_prefix: PREFIX, access_key_id: keys.id, access_key_secret: keys.secret });
  const check = await runProgram('nydus-image', ['check', img.bootstrap, '--backend-type', 's3', '--backend-config', backend(KEY)], { timeoutMs: 300_000 });
  assert.equal(check.code, 0, check.stderr);
  const out = join(img.work, 'unpacked.tar');
  const cfgFile = join(img.work, 'unpack-backend.json');
  writeFileSync(cfgFile, backend(KEY));
  const unpack = await runProgram('nydus-image', ['unpack', img.bootstrap, '--backend-type', 's3', '--backend-config', cfgFile, '--output', out], { timeoutMs: 300_000 });
  assert.equal(unpack.code, 0, unpack.stderr);
  const list = await runCommand('tar', ['-xOf', out, './usr/lib/os-release']);
  const tarred = list.code === 0 ? list.stdout : (await runCommand('tar', ['-xOf', out, 'usr/lib/os-release'])).stdout;
  assert.equal(tarred, readFileSync(join(img.rootfs, 'usr/lib/os-release'), 'utf8'));

  const wrong = { id: KEY.id, secret: 'not-the-secret-xyz' };
  const refused = await runProgram('nydus-image', ['check', img.bootstrap, '--backend-type', 's3', '--backend-config', backend(wrong)], { timeoutMs: 120_000 });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /object images\/bookworm\/[0-9a-f]{64} in bucket nydus-blobs: access denied: HTTP status 403/);
  assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
  assert.match(refused.stderr, /^nydus-image: ERR_STORAGE_AUTH: /);
  assert.ok(!refused.stderr.includes(wrong.secret));
  const badType = await runProgram('nydus-image', ['check', img.bootstrap, '--backend-type', 's3']);
  assert.notEqual(badType.code, 0);
  assert.match(badType.stderr, /--backend-type needs --backend-config/);
});

test('through nydusd: a stalled server fails the file read with EIO within the timeout and retries, and serves again once it answers', async (t) => {
  if (!need(t, canMount(), 'needs root, /dev/fuse and nydusd')) return;
  const s = await image();
  if (!need(t, typeof s !== 'string', `rootfs: ${String(s)}`)) return;
  const img = s as Shared;
  const proxy = await startFaultProxy(t, Number(img.s3.endpoint.split(':')[1]));
  const config = nydusdConfig(t, img, KEY, { endpoint: proxy.host, timeout: 1, retry_limit: 1 });
  const d = await startDaemon(t, ['--bootstrap', img.bootstrap, '--config', config]);
  proxy.setPlan((req) => (req.method === 'GET' ? { kind: 'stall' } : { kind: 'pass' }));
  const start = performance.now();
  const stalled = await runCommand('cat', [join(d.mnt, 'usr/bin/tar')]);
  const ms = Math.round(performance.now() - start);
  assert.notEqual(stalled.code, 0);
  assert.match(stalled.stderr, /Input\/output error/);
  t.diagnostic(`stalled server: EIO after ${ms} ms`);
  assert.equal(((await d.get('/api/v1/daemon')).body as { state: string }).state, 'RUNNING');
  proxy.setPlan(() => ({ kind: 'pass' }));
  const ok = await runCommand('cmp', [join(d.mnt, 'usr/bin/tar'), join(img.rootfs, 'usr/bin/tar')]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('through nydusd: prefetch of listed files comes from the bucket, and reading them then costs no request', async (t) => {
  if (!need(t, canMount(), 'needs root, /dev/fuse and nydusd')) return;
  const s = await image();
  if (!need(t, typeof s !== 'string', `rootfs: ${String(s)}`)) return;
  const img = s as Shared;
  const list = join(img.work, `prefetch-${process.pid}.txt`);
  writeFileSync(list, '/usr/bin/dpkg\n/etc/passwd\n');
  const config = nydusdConfig(t, img, KEY, {}, { fs_prefetch: { enable: true, threads_count: 2, merging_size: 131072, bandwidth_rate: 0, prefetch_all: false } });
  const d = await startDaemon(t, ['--bootstrap', img.bootstrap, '--config', config, '--prefetch-files', list]);
  const cache = await prefetchEnded(d);
  const sb = await openBootstrap(img.bootstrap);
  const listed = planPrefetch(sb, { files: ['/usr/bin/dpkg', '/etc/passwd'], all: false });
  assert.equal(cache.prefetch_data_amount, listed.reduce((n, c) => n + c.compressedSize, 0), 'exactly the listed files');
  const before = ((await d.get('/api/v1/metrics/backend')).body as { read_count: number; backend_type: string });
  assert.equal(before.backend_type, 's3');
  const cmp = await runCommand('cmp', [join(d.mnt, 'usr/bin/dpkg'), join(img.rootfs, 'usr/bin/dpkg')]);
  assert.equal(cmp.code, 0, cmp.stderr);
  const after = ((await d.get('/api/v1/metrics/backend')).body as { read_count: number }).read_count;
  assert.equal(after, before.read_count, 'prefetched data is read from the cache');
  t.diagnostic(`prefetch: ${cache.prefetch_data_amount} bytes in ${cache.prefetch_requests_count} requests`);
});
