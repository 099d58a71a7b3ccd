// Faults between the storage stack and a real registry, injected by the tests' TCP
// proxy: 500/503 answers, connection resets, stalls past the timeout (before the answer
// and mid-body), bodies cut short, bytes that fail the chunk digest, and the registry
// going away and coming back. Each is retried with backoff up to `retry_limit`, then
// fails with an EIO error for the chunk that needs the data while cached chunks keep
// serving; each shows in the backend metrics and the events; and the same stack works
// again once the fault is gone, with no restart. Timings are printed, never asserted.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { toErrno } from '../../src/errors.js';
import { DistributionClient } from '../../src/registry/distribution.js';
import { createStorage, type Storage } from '../../src/storage/factory.js';
import type { BackendEvent } from '../../src/storage/backend/events.js';
import type { RegistryBackend } from '../../src/storage/backend/registry.js';
import { need } from '../helpers/env.js';
import { timed } from '../helpers/timed.js';
import { clientConnectionsClosed, startFaultProxy, type Fault, type FaultProxy } from '../helpers/registry-fault-proxy.js';
import { collectEvents, registryConfig } from '../helpers/registry-images.js';
import { haveRegistry, startRegistry, type RegistryServer } from '../helpers/registry-server.js';
import { buildBlob, compressible, tmpDir, type TestBlob } from '../storage/helpers.js';

const REPO = 'faults/app';
const EIO = 5;

interface Rig {
  reg: RegistryServer;
  proxy: FaultProxy;
  tb: TestBlob;
  storage: Storage;
  events: BackendEvent[];
  /** Blob GET requests the proxy saw. */
  blobRequests(): number;
}

/** A registry holding one 8-chunk blob, a fault proxy in front, and a storage stack reading through it. */
async function rig(t: TestContext, registry: Record<string, unknown>): Promise<Rig> {
  const events = collectEvents(t);
  const reg = await startRegistry(t);
  const dir = tmpDir(t, 'registry-faults');
  const tb = buildBlob(dir, Array.from({ length: 8 }, (_, i) => compressible(60_000, i + 1)), { compressor: 'zstd', digester: 'sha256' });
  const client = new DistributionClient({ host: reg.host, repo: REPO, scheme: 'http', retryLimit: 0 });
  await client.pushBlob(`sha256:${tb.blob.blobId}`, tb.bytes.length, () => tb.bytes);
  await client.close();
  let blobGets = 0;
  const proxy = await startFaultProxy(t, reg.port, (req) => {
    if (req.path.includes('/blobs/')) blobGets++;
    return { kind: 'pass' };
  });
  const config = registryConfig(proxy.host, REPO, registry, {
    cache: { type: 'blobcache', filecache: { work_dir: `${dir}/cache` } },
    rafs: { validate: true, batch_size: 0 },
  });
  const storage = await createStorage(config, { blobs: [tb.blob], blobChunks: () => tb.chunks });
  t.after(() => storage.close());
  return { reg, proxy, tb, storage, events, blobRequests: () => blobGets };
}

/** Faults blob GETs with `fault` for the first `times` of them (Infinity: always), passes the rest. */
async function faultBlobs(r: Rig, fault: Fault, times: number): Promise<() => number> {
  let n = 0;
  r.proxy.setPlan((req) => {
    if (!req.path.includes('/blobs/')) return { kind: 'pass' };
    n++;
    return n <= times ? fault : { kind: 'pass' };
  });
  await clientConnectionsClosed((r.storage.backend as RegistryBackend).connection);
  return () => n;
}

function report(t: TestContext, line: string): void {
  t.diagnostic(line);
}

for (const status of [500, 503]) {
  test(`HTTP ${status}: retried with backoff, then served; past retry_limit EIO while cached chunks keep serving`, async (t) => {
    if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
    const r = await rig(t, { retry_limit: 3 });
    const { reader, backend } = r.storage;
    assert.deepEqual(await reader.readChunk(r.tb.chunks[0]), r.tb.data[0], 'cached before the faults');
    await r.storage.cache!.flush();

    let seen = await faultBlobs(r, { kind: 'status', status }, 2);
    const ok = await timed(reader.readChunk(r.tb.chunks[1]));
    assert.deepEqual(ok.value, r.tb.data[1]);
    assert.equal(seen(), 3, 'two failures, then the third attempt succeeds');
    const retries = r.events.filter((e) => e.level === 'warn' && e.message.includes(`HTTP status ${status}`));
    assert.equal(retries.length, 2);
    assert.match(retries[0].message, /retrying in \d+ ms/);
    report(t, `${status} x2 then ok: ${ok.ms} ms (backoff ~100 + ~200 ms)`);

    seen = await faultBlobs(r, { kind: 'status', status }, Infinity);
    const failed = await timed(reader.readChunk(r.tb.chunks[2]));
    assert.equal((failed.err as { code?: string }).code, 'ERR_STORAGE_BACKEND');
    assert.equal(toErrno(failed.err), EIO);
    assert.equal(seen(), 4, 'retry_limit 3: four attempts');
    const errors = r.events.filter((e) => e.level === 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /gave up after 4 attempts/);
    report(t, `${status} always: EIO after ${failed.ms} ms and 4 attempts`);
    const m = backend.metrics.toJSON();
    assert.equal(m.read_errors, 1);
    assert.equal(m.read_count, 3);
    // The chunk cached before the faults is still served, without the backend.
    const reads = m.read_count;
    assert.deepEqual(await reader.readChunk(r.tb.chunks[0]), r.tb.data[0]);
    assert.equal(backend.metrics.readCount, reads);

    await faultBlobs(r, { kind: 'pass' }, 0);
    assert.deepEqual(await reader.readChunk(r.tb.chunks[2]), r.tb.data[2], 'the registry answers again: served without a restart');
  });
}

test('connection resets are retried; resets on every attempt are EIO', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const r = await rig(t, { retry_limit: 2 });
  let seen = await faultBlobs(r, { kind: 'reset' }, 2);
  const ok = await timed(r.storage.reader.readChunk(r.tb.chunks[3]));
  assert.deepEqual(ok.value, r.tb.data[3]);
  assert.equal(seen(), 3);
  report(t, `reset x2 then ok: ${ok.ms} ms`);
  seen = await faultBlobs(r, { kind: 'reset' }, Infinity);
  const failed = await timed(r.storage.reader.readChunk(r.tb.chunks[4]));
  assert.equal(toErrno(failed.err), EIO);
  assert.equal(seen(), 3);
  assert.match(r.events.find((e) => e.level === 'error')!.message, /ECONNRESET|other side closed|socket/i);
  report(t, `reset always: EIO after ${failed.ms} ms`);
});

test('a registry that stalls past the timeout (before answering or mid-body) fails the attempt; then EIO', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const r = await rig(t, { retry_limit: 1, timeout: 1 });
  let seen = await faultBlobs(r, { kind: 'stall' }, 1);
  const ok = await timed(r.storage.reader.readChunk(r.tb.chunks[5]));
  assert.deepEqual(ok.value, r.tb.data[5]);
  assert.equal(seen(), 2);
  assert.match(r.events.find((e) => e.level === 'warn')!.message, /timeout/i);
  report(t, `stall once (timeout 1 s): served after ${ok.ms} ms`);

  seen = await faultBlobs(r, { kind: 'stall-body', after: 1000 }, Infinity);
  const failed = await timed(r.storage.reader.readChunk(r.tb.chunks[6]));
  assert.equal(toErrno(failed.err), EIO);
  assert.equal(seen(), 2);
  assert.match((failed.err as Error).message, /timeout/i);
  report(t, `stall mid-body on every attempt: EIO after ${failed.ms} ms (2 attempts x timeout 1 s, undici timers tick ~0.5 s, + backoff)`);
  await faultBlobs(r, { kind: 'pass' }, 0);
  assert.deepEqual(await r.storage.reader.readChunk(r.tb.chunks[6]), r.tb.data[6]);
});

test('a body cut short is retried', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const r = await rig(t, { retry_limit: 2 });
  const seen = await faultBlobs(r, { kind: 'truncate', after: 5000 }, 1);
  assert.deepEqual(await r.storage.reader.readChunk(r.tb.chunks[7]), r.tb.data[7]);
  assert.equal(seen(), 2);
  assert.match(r.events.find((e) => e.level === 'warn')!.message, /after 5000 of|closed|terminated/i);
});

test('bytes that fail the chunk digest are fetched again; corrupt every time is EIO and nothing bad is cached', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const r = await rig(t, { retry_limit: 2 });
  const { reader, cache } = r.storage;
  let seen = await faultBlobs(r, { kind: 'corrupt', at: 1234 }, 1);
  assert.deepEqual(await reader.readChunk(r.tb.chunks[1]), r.tb.data[1]);
  assert.equal(seen(), 2);
  assert.equal(reader.stats.refetches, 1);
  assert.match(r.events.find((e) => e.level === 'warn')!.message, /failed to verify chunk \d+ of blob \w+ as fetched \(attempt 1 of \d+\)/);

  seen = await faultBlobs(r, { kind: 'corrupt', at: 99 }, Infinity);
  const failed = await timed(reader.readChunk(r.tb.chunks[2]));
  assert.ok(['ERR_STORAGE_DIGEST_MISMATCH', 'ERR_STORAGE_DECOMPRESS'].includes((failed.err as { code: string }).code));
  assert.equal(toErrno(failed.err), EIO);
  assert.equal(seen(), 3, 'retry_limit 2: three fetches');
  report(t, `corrupt always: EIO after ${failed.ms} ms and 3 fetches`);
  await cache!.flush();
  const entry = await cache!.openBlob(r.tb.blob);
  assert.equal(entry?.isReady(r.tb.chunks[2]), false, 'the corrupt chunk is not cached');
  assert.equal(entry?.isReady(r.tb.chunks[1]), true);
  await faultBlobs(r, { kind: 'pass' }, 0);
  assert.deepEqual(await reader.readChunk(r.tb.chunks[2]), r.tb.data[2]);
});

test('a registry that goes away fails reads with EIO; when it comes back the same stack reads again', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const r = await rig(t, { retry_limit: 1 });
  const { reader } = r.storage;
  assert.deepEqual(await reader.readChunk(r.tb.chunks[0]), r.tb.data[0]);
  await r.reg.stop();
  const down = await timed(reader.readChunk(r.tb.chunks[3]));
  assert.equal(toErrno(down.err), EIO);
  report(t, `registry down: EIO after ${down.ms} ms`);
  assert.deepEqual(await reader.readChunk(r.tb.chunks[0]), r.tb.data[0], 'cached data keeps serving while it is down');
  await r.reg.start();
  const up = await timed(reader.readChunk(r.tb.chunks[3]));
  assert.deepEqual(up.value, r.tb.data[3]);
  report(t, `registry back: served in ${up.ms} ms`);
  assert.ok(r.blobRequests() >= 3);
});
