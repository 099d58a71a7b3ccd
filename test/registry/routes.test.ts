// The ways a network backend reaches blob bytes: kept-alive connections to the registry,
// an nginx caching mirror (with its headers, skipped after failures, health-checked back),
// an nginx forward proxy standing in for a Dragonfly peer (with and without fallback,
// health-checked through ping_url), redirects to blob storage (cached until they fail,
// the registry's Authorization never sent along), and the http-proxy backend over TCP
// and a unix socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { encodeAuth } from '../../src/http/auth.js';
import { DistributionClient } from '../../src/registry/distribution.js';
import { HttpProxyBackend } from '../../src/storage/backend/http-proxy.js';
import { RegistryBackend } from '../../src/storage/backend/registry.js';
import { normalizeConfig } from '../../src/config/parse.js';
import { need } from '../helpers/env.js';
import { waitUntil } from '../helpers/wait.js';
import { startBlobStore } from '../helpers/registry-blobstore.js';
import { startFaultProxy } from '../helpers/registry-fault-proxy.js';
import { collectEvents, random, registryConfig } from '../helpers/registry-images.js';
import { haveNginx, startForwardProxy, startMirror, startStaticServer } from '../helpers/registry-nginx.js';
import { haveRegistry, startRegistry } from '../helpers/registry-server.js';

const REPO = 'routes/app';

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

function tmp(t: TestContext): string {
  const dir = mkdtempSync('/tmp/registry-routes-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function seed(host: string, data: Buffer): Promise<string> {
  const hex = createHash('sha256').update(data).digest('hex');
  const c = new DistributionClient({ host, repo: REPO, scheme: 'http', retryLimit: 0 });
  await c.pushBlob(`sha256:${hex}`, data.length, () => data);
  await c.close();
  return hex;
}

function registryBackend(t: TestContext, host: string, registry: Record<string, unknown> = {}): RegistryBackend {
  const c = registryConfig(host, REPO, registry);
  if (c.backend?.type !== 'registry') throw new Error('unreachable');
  const b = new RegistryBackend(c.backend.registry, { id: 'routes' });
  t.after(() => b.close());
  return b;
}

test('connections to the registry are kept alive and reused across reads', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const reg = await startRegistry(t);
  const data = random(1 << 20);
  const id = await seed(reg.host, data);
  const counter = await startFaultProxy(t, reg.port);
  const b = registryBackend(t, counter.host);
  const buf = Buffer.alloc(8192);
  for (let i = 0; i < 50; i++) {
    await b.read(id, buf, i * 8192);
    assert.deepEqual(buf, data.subarray(i * 8192, (i + 1) * 8192));
  }
  // undici may open a second connection while the first finishes its previous answer.
  assert.ok(counter.stats.connections <= 2, `50 sequential reads over ${counter.stats.connections} kept-alive connections`);
  await Promise.all(Array.from({ length: 8 }, (_, k) => (async () => {
    const own = Buffer.alloc(4096);
    for (let i = 0; i < 10; i++) await b.read(id, own, (k * 10 + i) * 4096);
  })()));
  assert.ok(counter.stats.connections <= 2 + 16, `${counter.stats.connections} connections for 80 reads by 8 concurrent readers`);
  assert.equal(b.metrics.readCount, 130);
});

test('a caching mirror serves blob ranges with its headers; failing, it is skipped; healthy again, it is used again', async (t) => {
  if (!need(t, haveRegistry() && haveNginx(), 'docker-registry or nginx is not installed')) return;
  const events = collectEvents(t);
  const reg = await startRegistry(t);
  const data = random(3 << 20);
  const id = await seed(reg.host, data);
  const mirror = await startMirror(t, reg.port);
  const mirrors = [{ host: mirror.url, headers: { 'X-Nydus-Mirror': 'yes' }, health_check_interval: 1, failure_limit: 2 }];
  const first = registryBackend(t, reg.host, { mirrors });
  const buf = Buffer.alloc(100_000);
  for (const off of [0, 1_500_000, 2_900_000]) {
    await first.read(id, buf, off);
    assert.deepEqual(buf, data.subarray(off, off + 100_000));
  }
  assert.equal(first.connection.stats.viaMirror, 3);
  assert.equal(first.connection.stats.viaOrigin, 0);
  // nginx writes its access log after the answer is sent: wait for the lines.
  const blobHitsOf = () => mirror.hits().filter((h) => h.uri.includes('/blobs/'));
  await waitUntil(() => blobHitsOf().length >= 3, 'the mirror logged three blob requests');
  let blobHits = blobHitsOf();
  assert.equal(blobHits.length, 3);
  assert.ok(blobHits.every((h) => h.mirrorHeader === 'yes' && h.status === 206));
  // A second client reading the same ranges is served from the mirror's cache.
  const second = registryBackend(t, reg.host, { mirrors });
  for (const off of [0, 1_500_000]) await second.read(id, buf, off);
  await waitUntil(() => blobHitsOf().length >= 5, 'the mirror logged five blob requests');
  blobHits = blobHitsOf();
  assert.deepEqual(blobHits.slice(3).map((h) => h.cache), ['HIT', 'HIT']);

  await mirror.stop();
  for (const off of [10, 20, 30]) {
    await first.read(id, buf, off);
    assert.deepEqual(buf, data.subarray(off, off + 100_000), 'served by the origin while the mirror is down');
  }
  assert.equal(first.connection.mirrors[0].healthy, false, 'skipped after failure_limit failures');
  assert.ok(events.some((e) => /mirror http:\/\/127\.0\.0\.1:\d+ disabled after 2 failures/.test(e.message)));
  const viaOrigin = first.connection.stats.viaOrigin;
  assert.equal(viaOrigin, 3);
  await mirror.start();
  await waitUntil(() => first.connection.mirrors[0].healthy, 'the mirror is healthy again');
  assert.ok(events.some((e) => /recovered/.test(e.message)));
  await first.read(id, buf, 40);
  assert.equal(first.connection.stats.viaOrigin, viaOrigin, 'back on the mirror');
  assert.equal(first.connection.stats.viaMirror, 4);
});

test('a forward proxy (Dragonfly peer) carries reads; when it fails, fallback reaches the origin, and without fallback reads fail', async (t) => {
  if (!need(t, haveRegistry() && haveNginx(), 'docker-registry or nginx is not installed')) return;
  const reg = await startRegistry(t);
  const data = random(1 << 20);
  const id = await seed(reg.host, data);
  const peer = await startForwardProxy(t);
  const proxy = { url: peer.url, ping_url: `${peer.url}/ping`, check_interval: 1, fallback: true };
  const b = registryBackend(t, reg.host, { proxy });
  const buf = Buffer.alloc(50_000);
  await b.read(id, buf, 1000);
  assert.deepEqual(buf, data.subarray(1000, 51_000));
  assert.equal(b.connection.stats.viaProxy, 1);
  await waitUntil(() => peer.hits().some((h) => h.uri.includes(`/blobs/sha256:${id}`) && h.status === 206), 'the peer served a range of the blob');

  // Without ping_url a proxy is always tried: its failures show as fallbacks (or errors).
  const unpinged = registryBackend(t, reg.host, { proxy: { ...proxy, ping_url: '' } });
  const strict = registryBackend(t, reg.host, { proxy: { ...proxy, ping_url: '', fallback: false }, retry_limit: 1 });
  await strict.read(id, buf, 0);
  assert.equal(strict.connection.stats.viaProxy, 1);

  await peer.stop();
  await unpinged.read(id, buf, 2000);
  assert.deepEqual(buf, data.subarray(2000, 52_000));
  assert.equal(unpinged.connection.stats.proxyFallbacks, 1, 'the failed proxy request fell back to the origin');
  await assert.rejects(strict.read(id, buf, 0), (err) => codeOf(err) === 'ERR_STORAGE_BACKEND');
  // With ping_url the health check marks it unhealthy, and it is not tried at all.
  await waitUntil(() => b.connection.proxy?.healthy === false, 'the proxy is marked unhealthy');
  const fallbacks = b.connection.stats.proxyFallbacks;
  await b.read(id, buf, 3000);
  assert.deepEqual(buf, data.subarray(3000, 53_000));
  assert.equal(b.connection.stats.proxyFallbacks, fallbacks, 'an unhealthy proxy is not tried');
  assert.equal(b.connection.stats.viaOrigin, 1);

  await peer.start();
  await waitUntil(() => b.connection.proxy?.healthy === true, 'the proxy is healthy again');
  const before = b.connection.stats.viaProxy;
  await b.read(id, buf, 4000);
  assert.equal(b.connection.stats.viaProxy, before + 1);
  await strict.read(id, buf, 5000);
  assert.deepEqual(buf, data.subarray(5000, 55_000));
});

test('redirects to blob storage are followed without the registry credentials and cached until they fail', async (t) => {
  const dir = tmp(t);
  const data = random(500_000);
  const id = createHash('sha256').update(data).digest('hex');
  writeFileSync(join(dir, id), data);
  const auth = encodeAuth('bob', 'hunter2');
  const store = await startBlobStore(t, dir, auth);
  const b = registryBackend(t, store.host, { auth, retry_limit: 2 });
  const buf = Buffer.alloc(10_000);
  for (let i = 0; i < 3; i++) {
    await b.read(id, buf, i * 10_000);
    assert.deepEqual(buf, data.subarray(i * 10_000, (i + 1) * 10_000));
  }
  assert.equal(store.stats.registryHits, 2, 'a 401, then one redirect');
  assert.equal(store.stats.storeHits, 3);
  assert.equal(b.stats.redirects, 1);
  assert.equal(b.stats.redirectCacheHits, 2);
  assert.equal(store.stats.storeSawAuthorization, false);
  assert.equal(await b.blobSize(id), data.length);

  store.expire();
  await b.read(id, buf, 400_000);
  assert.deepEqual(buf, data.subarray(400_000, 410_000));
  assert.equal(store.stats.forbidden, 1);
  assert.equal(b.stats.redirectFailures, 1);
  assert.equal(b.stats.redirects, 2, 'asked the registry again and cached the new URL');

  // blob_redirected_host sends the redirected request elsewhere (here: a second store).
  const other = await startBlobStore(t, dir, auth);
  other.expire(); // the same signing generation as the first store
  const moved = registryBackend(t, store.host, { auth, blob_redirected_host: other.host });
  await moved.read(id, buf, 0);
  assert.deepEqual(buf, data.subarray(0, 10_000));
  assert.equal(other.stats.storeHits, 1);
});

test('http-proxy backend: blobs from an HTTP server over TCP or a unix socket, sizes by HEAD, ranges by GET', async (t) => {
  if (!need(t, haveNginx(), 'nginx is not installed')) return;
  const dir = tmp(t);
  const data = random(300_000);
  const id = createHash('sha256').update(data).digest('hex');
  writeFileSync(join(dir, id), data);
  const tcp = await startStaticServer(t, dir);
  const socket = join(dir, 'blobs.sock');
  await startStaticServer(t, dir, socket);
  for (const addr of [tcp.url, socket]) {
    const cfg = normalizeConfig({ version: 2, backend: { type: 'http-proxy', 'http-proxy': { addr, path: '/blobs', retry_limit: 1 } } });
    if (cfg.backend?.type !== 'http-proxy') throw new Error('unreachable');
    const b = new HttpProxyBackend(cfg.backend['http-proxy'], { id: 'hp' });
    t.after(() => b.close());
    assert.equal(await b.blobSize(id), data.length);
    const buf = Buffer.alloc(70_000);
    await b.read(id, buf, 200_000);
    assert.deepEqual(buf, data.subarray(200_000, 270_000));
    await assert.rejects(b.read('f'.repeat(64), buf, 0), (err) => codeOf(err) === 'ERR_STORAGE_BLOB_NOT_FOUND');
    await assert.rejects(b.read('../etc', buf, 0), (err) => codeOf(err) === 'ERR_STORAGE_BLOB_NOT_FOUND');
    await assert.rejects(b.read(id, buf, data.length - 10), (err) => codeOf(err) === 'ERR_STORAGE_SHORT_READ');
    assert.equal(b.metrics.toJSON().backend_type, 'http-proxy');
    assert.equal(b.metrics.readCount, 4);
    assert.equal(b.metrics.readAmountTotal, 70_000);
  }
});

test('mirror and proxy addresses must be http(s) URLs, and proxy and mirrors exclude each other', () => {
  for (const registry of [
    { mirrors: [{ host: 'mirror.local:5000' }] },
    { mirrors: [{ host: 'http://m', ping_url: 'ftp://m/ping' }] },
    { proxy: { url: 'not a url' } },
    { proxy: { url: 'http://p:65001' }, mirrors: [{ host: 'http://m' }] },
  ]) {
    const c = registryConfig('r.example', REPO, registry);
    if (c.backend?.type !== 'registry') throw new Error('unreachable');
    const reg = c.backend.registry;
    assert.throws(() => new RegistryBackend(reg), (err) => codeOf(err) === 'ERR_STORAGE_BACKEND', JSON.stringify(registry));
  }
});
