// Prefetch through the registry backend: the prefetch list from the bootstrap's table or
// from prefetch files, prefetch_all, background fetching into the cache (a second stack
// then reads with no backend request), the blobcache prefetch metrics, the bandwidth
// limit (checked against a clock the test moves: bytes <= rate x elapsed + burst), stop()
// ending the work, and user reads that never wait behind the prefetch queue.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { openBootstrap } from '../../src/rafs/index.js';
import type { RafsSuper } from '../../src/rafs/types.js';
import { fetchImageBootstrap, imageConfig } from '../../src/registry/pull.js';
import { chunkKey } from '../../src/storage/amplify.js';
import { createStorage, type Storage } from '../../src/storage/factory.js';
import { batchChunks, Prefetcher } from '../../src/storage/prefetch.js';
import { parsePrefetchFiles, planPrefetch, resolvePath } from '../../src/storage/prefetch-list.js';
import type { NydusConfig } from '../../src/config/types.js';
import { need } from '../helpers/env.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { startFaultProxy, type FaultProxy } from '../helpers/registry-fault-proxy.js';
import { buildImage, pushTo, random, textLike } from '../helpers/registry-images.js';
import { fileOwner, haveRegistry, startRegistry } from '../helpers/registry-server.js';

const MiB = 1 << 20;

interface Shared {
  tree: Record<string, Buffer | string>;
  proxy: FaultProxy;
}

interface Rig extends Shared {
  sb: RafsSuper;
  config: NydusConfig;
  open(): Promise<Storage>;
}

const owner = fileOwner();
let shared: Promise<Shared> | undefined;

/**
 * A ~16 MiB image whose bootstrap lists /etc and /usr/lib/a.so for prefetch, pushed once
 * for the whole file to a registry behind a counting proxy.
 */
function sharedImage(): Promise<Shared> {
  shared ??= (async () => {
    const tree: Record<string, Buffer | string> = { 'etc/hostname': 'pf\n', 'etc/os-release': 'ID=test\n', 'usr/lib/a.so': random(300_000) };
    for (let i = 0; i < 6; i++) {
      tree[`data/r${i}.bin`] = random(MiB + 12345 * i);
      tree[`data/t${i}.txt`] = textLike(MiB + 777 * i, 50 + i);
    }
    const image = await buildImage(owner, tree, ['--prefetch-policy', 'fs'], '/etc\n/usr/lib/a.so\n');
    const reg = await startRegistry(owner);
    await pushTo(image, reg.host, 'pf/app', 'v1');
    return { tree, proxy: await startFaultProxy(owner, reg.port) };
  })();
  return shared;
}

/** The shared image pulled by reference into a fresh work dir (a cold cache) for one test. */
async function rig(t: TestContext): Promise<Rig> {
  const s = await sharedImage();
  s.proxy.setPlan(() => ({ kind: 'pass' }));
  const work = mkdtempSync('/tmp/registry-prefetch-');
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const pulled = await fetchImageBootstrap({ reference: `${s.proxy.host}/pf/app:v1`, workDir: work, plainHttp: true });
  const sb = await openBootstrap(pulled.bootstrap);
  const config = imageConfig(pulled.reference, work, undefined, { plainHttp: true });
  const open = async (): Promise<Storage> => {
    const storage = await createStorage(config, sb);
    t.after(() => storage.close());
    return storage;
  };
  return { ...s, sb, config, open };
}

function keysOf(sb: RafsSuper, paths: string[]): Set<string> {
  const out = new Set<string>();
  for (const p of paths) {
    const ino = resolvePath(sb, p)!;
    for (const c of sb.fileChunks(ino, 0, sb.getAttr(ino).size)) out.add(chunkKey(c));
  }
  return out;
}

test('prefetch files lists: absolute paths, blanks skipped, relative paths refused', () => {
  assert.deepEqual(parsePrefetchFiles('/etc\n\n  /usr/bin/sh  \n'), ['/etc', '/usr/bin/sh']);
  assert.throws(() => parsePrefetchFiles('/ok\nrelative/path\n'), (err) => (err as { code?: string }).code === 'ERR_CONFIG_INVALID');
});

test('batches stay within one blob and the merge size', () => {
  const c = (blobIndex: number, off: number, size: number) => ({ blobIndex, compressedOffset: off, compressedSize: size }) as never;
  const batches = batchChunks([c(0, 0, 100), c(0, 100, 100), c(0, 200, 100), c(1, 0, 50), c(1, 5000, 10)], 250);
  assert.deepEqual(batches.map((b) => b.length), [2, 1, 1, 1]);
});

test('the plan: the bootstrap table, or prefetch files instead, then everything with prefetch_all or ["/"]', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const { sb } = await rig(t);
  const hinted = keysOf(sb, ['/etc/hostname', '/etc/os-release', '/usr/lib/a.so']);
  const fromTable = planPrefetch(sb, { all: false });
  assert.deepEqual(new Set(fromTable.map(chunkKey)), hinted);
  const fromFiles = planPrefetch(sb, { files: ['/data/t1.txt', '/no/such/file'], all: false });
  assert.deepEqual(new Set(fromFiles.map(chunkKey)), keysOf(sb, ['/data/t1.txt']));
  const all = planPrefetch(sb, { all: true });
  const every = new Set(sb.blobs.flatMap((b) => sb.blobChunks(b.index).map(chunkKey)));
  assert.equal(all.length, every.size);
  assert.deepEqual(new Set(all.map(chunkKey)), every);
  assert.deepEqual(new Set(all.slice(0, hinted.size).map(chunkKey)), hinted, 'hinted chunks first');
  assert.equal(planPrefetch(sb, { files: ['/'], all: false }).length, every.size);
});

test('prefetch fills the cache in the background; a second stack then reads with no request; metrics are reported', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const r = await rig(t);
  const s = await r.open();
  const chunks = planPrefetch(r.sb, { all: true });
  const p = new Prefetcher(s.reader, { threads: 4, batchSize: MiB, bandwidthLimit: 0, counters: s.cache!.metrics.prefetch });
  p.start(chunks);
  assert.equal(p.running, true);
  await p.done;
  assert.equal(p.stats.failed, 0);
  assert.equal(p.stats.fetched + p.stats.skipped, chunks.length);
  const m = s.cache!.metrics.toJSON();
  assert.equal(m.prefetch_workers, 4);
  assert.equal(m.prefetch_unmerged_chunks, chunks.length);
  assert.equal(m.prefetch_data_amount, s.reader.stats.prefetchBytes);
  assert.equal(m.prefetch_requests_count, s.reader.stats.prefetchReads);
  assert.ok(m.prefetch_requests_count < chunks.length, `${m.prefetch_requests_count} requests for ${chunks.length} chunks (merged)`);
  assert.ok(m.prefetch_begin_time_secs > 0 && m.prefetch_end_time_secs >= m.prefetch_begin_time_secs);
  assert.ok(m.prefetch_begin_time_millis < 1000 && m.prefetch_end_time_millis < 1000);
  await s.cache!.flush();
  const s2 = await r.open();
  for (const path of ['/data/r3.bin', '/data/t5.txt', '/etc/hostname']) {
    const ino = resolvePath(r.sb, path)!;
    const out = Buffer.alloc(r.sb.getAttr(ino).size);
    await s2.reader.readRange(r.sb.fileChunks(ino, 0, out.length), 0, out);
    assert.deepEqual(out, Buffer.from(r.tree[path.slice(1)]));
  }
  assert.equal(s2.backend.metrics.readCount, 0);
  t.diagnostic(`prefetched ${m.prefetch_data_amount} bytes in ${m.prefetch_requests_count} requests (${chunks.length} chunks) in ${m.prefetch_cumulative_time_millis} ms`);
});

/** Records the stored bytes of every prefetch request `reader` starts, and whether a user read was in flight then. */
function watchPrefetch(s: Storage): { bytes: number[]; duringUserRead: number } {
  const seen = { bytes: [] as number[], duringUserRead: 0 };
  const real = s.reader.prefetch.bind(s.reader);
  s.reader.prefetch = (batch, maxReadBytes, signal) => {
    const last = batch[batch.length - 1];
    seen.bytes.push(last.compressedOffset + last.compressedSize - batch[0].compressedOffset);
    if (s.reader.foregroundFetches > 0) seen.duringUserRead++;
    return real(batch, maxReadBytes, signal);
  };
  return seen;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

test('the bandwidth limit caps prefetch bytes; stop() ends the work and no request starts after it', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const r = await rig(t);
  const s = await r.open();
  const rate = 2 * MiB;
  const batch = 256 * 1024;
  const threads = 4;
  const clock = new ManualClock();
  const seen = watchPrefetch(s);
  const p = new Prefetcher(s.reader, { threads, batchSize: batch, bandwidthLimit: rate, clock });
  t.after(() => p.stop());
  // The image four times over (cached chunks still pass the bucket), so the queue outlasts
  // the allowance: a worker that runs out of work ends instead of waiting for tokens.
  const once = planPrefetch(r.sb, { all: true });
  const plan = [...once, ...once, ...once, ...once];
  p.start(plan);
  // The bucket starts full (a burst of max(rate, batch)) and refills at `rate` as the
  // clock moves, in steps small enough that a refill never overflows the burst. Once every
  // worker waits for tokens, what was requested is at most the allowance so far and less
  // than one batch below it.
  const burst = Math.max(rate, batch);
  const biggest = Math.max(...batchChunks(plan, batch).map((b) => b[b.length - 1].compressedOffset + b[b.length - 1].compressedSize - b[0].compressedOffset));
  const step = 250;
  for (let ms = 0; ms <= 1500; ms += step) {
    if (ms > 0) clock.advance(step);
    await clock.whenSleepers(threads);
    const allowed = burst + (rate * ms) / 1000;
    const requested = sum(seen.bytes);
    assert.ok(requested <= allowed, `${requested} bytes requested after ${ms} ms, allowance ${allowed}`);
    assert.ok(requested > allowed - biggest, `${requested} bytes requested after ${ms} ms: workers idle below the allowance ${allowed}`);
  }
  assert.equal(p.running, true, 'at 2 MiB/s the queue is not done after 1.5 s');
  await p.stop();
  assert.equal(p.running, false);
  assert.equal(clock.sleepers, 0, 'stop() woke the workers waiting for tokens');
  const requests = seen.bytes.length;
  clock.advance(60_000);
  await p.done;
  assert.equal(seen.bytes.length, requests, 'no worker is left to use new tokens: nothing is requested after stop()');
  t.diagnostic(`rate 2 MiB/s: ${sum(seen.bytes)} bytes in ${requests} requests over 1.5 s of the test's clock`);
});

test('user reads never wait behind the prefetch queue, and prefetch yields while they are in flight', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const r = await rig(t);
  const s = await r.open();
  const target = '/data/t5.txt';
  const ino = resolvePath(r.sb, target)!;
  const chunks = r.sb.fileChunks(ino, 0, r.sb.getAttr(ino).size);
  const userRange = `bytes=${chunks[0].compressedOffset}-`;
  let prefetchArrived!: () => void;
  const firstPrefetch = new Promise<void>((resolve) => (prefetchArrived = resolve));
  r.proxy.setPlan((req) => {
    const user = req.headers.range?.startsWith(userRange) === true;
    if (!user) prefetchArrived();
    // The user's request is slow, so prefetch has every chance to crowd it out.
    return user ? { kind: 'delay', ms: 1500 } : { kind: 'close' };
  });
  const seen = watchPrefetch(s);
  // Everything, at a pace that would take ~30 s; the user's file is last in blob order.
  const p = new Prefetcher(s.reader, { threads: 2, batchSize: 128 * 1024, bandwidthLimit: 512 * 1024 });
  p.start(planPrefetch(r.sb, { all: true }));
  await firstPrefetch;
  const out = Buffer.alloc(chunks[0].uncompressedSize);
  await s.reader.readRange([chunks[0]], 0, out);
  assert.deepEqual(out, Buffer.from(r.tree['data/t5.txt']).subarray(0, out.length));
  assert.equal(p.running, true, 'the user read finished long before the prefetch queue');
  assert.ok(p.stats.yields > 0, 'workers waited for the user read');
  assert.equal(seen.duringUserRead, 0, 'no prefetch request started while the user read was in flight');
  await p.stop();
  t.diagnostic(`prefetch requests ${seen.bytes.length}, yields ${p.stats.yields}`);
});
