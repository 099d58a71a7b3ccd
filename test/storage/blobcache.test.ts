import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlobInfo, ChunkInfo } from '../../src/storage/types.js';
import { LocalFsBackend } from '../../src/storage/backend/localfs.js';
import { BlobCache } from '../../src/storage/cache/blobcache.js';
import { ChunkMap, CHUNK_MAP_HEADER_SIZE } from '../../src/storage/cache/chunk-map.js';
import { ChunkReader } from '../../src/storage/chunk-reader.js';
import { FROM_SOURCE } from '../helpers/env.js';
import { buildBlob, compressible, tmpDir } from './helpers.js';
import type { TestBlob } from './helpers.js';

/** A fresh daemon's view: new backend, cache and reader over the same work dir. */
async function session(
  t: TestContext,
  tb: TestBlob,
  blobDir: string,
  workDir: string,
  opts: { validate?: boolean; blobChunks?: () => readonly ChunkInfo[]; blob?: BlobInfo } = {},
) {
  const backend = new LocalFsBackend({ dir: blobDir, blob_file: '', alt_dirs: [] });
  const cache = new BlobCache(workDir);
  const reader = new ChunkReader([opts.blob ?? tb.blob], backend, cache, {
    digestValidate: opts.validate ?? true,
    amplifyIo: 0,
    blobChunks: opts.blobChunks,
  });
  const close = async () => {
    await reader.close();
    await cache.close();
    await backend.close();
  };
  t.after(close);
  return { backend, cache, reader, close };
}

function testBlob(t: TestContext) {
  const blobDir = tmpDir(t, 'storage-blobs');
  const workDir = join(tmpDir(t, 'storage-cache'), 'work');
  const contents = [compressible(100_000, 1), randomBytes(30_000), compressible(5000, 2), compressible(70_000, 3), randomBytes(4096)];
  const tb = buildBlob(blobDir, contents, { compressor: 'zstd', digester: 'sha256' });
  return { blobDir, workDir, tb, dataPath: join(workDir, `${tb.blob.blobId}.blob.data`) };
}

async function fill(t: TestContext, tb: TestBlob, blobDir: string, workDir: string, which = tb.chunks) {
  const s = await session(t, tb, blobDir, workDir);
  await s.reader.readChunks(which);
  await s.close();
}

test('a second daemon on the same work_dir reads everything from the cache, zero backend reads', async (t) => {
  const { blobDir, workDir, tb, dataPath } = testBlob(t);
  const first = await session(t, tb, blobDir, workDir);
  assert.deepEqual(await first.reader.readChunks(tb.chunks), tb.data);
  await first.cache.flush();
  const m = first.cache.metrics;
  assert.equal(m.misses, 5);
  assert.deepEqual(m.toJSON().underlying_files, [`${tb.blob.blobId}.blob.data`]);
  assert.equal(m.toJSON().store_path, workDir);
  assert.equal(m.toJSON().entries_count, 5);
  assert.equal(m.toJSON().data_all_ready, true);
  await first.close();
  assert.ok(existsSync(`${dataPath}.chunk_map`));
  assert.equal(statSync(`${dataPath}.chunk_map`).size, CHUNK_MAP_HEADER_SIZE + 1);

  const second = await session(t, tb, blobDir, workDir);
  assert.deepEqual(await second.reader.readChunks(tb.chunks), tb.data);
  assert.equal(second.backend.metrics.readCount, 0);
  assert.equal(second.cache.metrics.hits, 5);
  assert.equal(second.cache.metrics.toJSON().whole_hits, 1);
  assert.equal(second.cache.metrics.toJSON().total, 1);
  // Chunk i sits at its uncompressed offset in the data file.
  const image = readFileSync(dataPath);
  for (const [i, c] of tb.chunks.entries()) {
    assert.deepEqual(image.subarray(c.uncompressedOffset, c.uncompressedOffset + c.uncompressedSize), tb.data[i]);
  }
});

test('a torn, garbled or foreign chunk map is discarded and its chunks refetched', async (t) => {
  const { blobDir, workDir, tb, dataPath } = testBlob(t);
  const mapPath = `${dataPath}.chunk_map`;
  const identity = { blobId: tb.blob.blobId, chunkCount: 5, uncompressedSize: tb.blob.uncompressedSize };
  const allSet = (id: typeof identity) => {
    const map = new ChunkMap(id);
    for (let i = 0; i < id.chunkCount; i++) map.set(i);
    return map.encode();
  };
  const good = allSet(identity);
  const damaged: [string, Buffer][] = [
    ['truncated', good.subarray(0, good.length - 1)],
    ['empty', Buffer.alloc(0)],
    ['garbage', randomBytes(good.length)],
    ['one flipped bit', Buffer.from(good).fill(good[CHUNK_MAP_HEADER_SIZE] ^ 0x01, CHUNK_MAP_HEADER_SIZE, CHUNK_MAP_HEADER_SIZE + 1)],
    ['another blob id', allSet({ ...identity, blobId: 'e'.repeat(64) })],
    ['another chunk count', allSet({ ...identity, chunkCount: 6 })],
  ];
  await fill(t, tb, blobDir, workDir);
  for (const [what, bytes] of damaged) {
    writeFileSync(mapPath, bytes);
    const s = await session(t, tb, blobDir, workDir);
    assert.deepEqual(await s.reader.readChunks(tb.chunks), tb.data, what);
    assert.equal(s.backend.metrics.readCount, 5, `${what}: every chunk refetched`);
    assert.equal(s.cache.metrics.mapDiscards, 1, what);
    await s.close();
  }
  // The last session rewrote a good map: the next one trusts it again.
  const s = await session(t, tb, blobDir, workDir);
  await s.reader.readChunks(tb.chunks);
  assert.equal(s.backend.metrics.readCount, 0);
});

test('a data file shorter than a ready chunk needs is detected and that chunk refetched', async (t) => {
  const { blobDir, workDir, tb, dataPath } = testBlob(t);
  await fill(t, tb, blobDir, workDir);
  const last = tb.chunks[4];
  truncateSync(dataPath, last.uncompressedOffset + 100);
  const s = await session(t, tb, blobDir, workDir, { validate: false });
  assert.deepEqual(await s.reader.readChunks(tb.chunks), tb.data);
  assert.equal(s.backend.metrics.readCount, 1);
  await s.close();
  // A deleted data file makes the whole map meaningless.
  writeFileSync(dataPath, Buffer.alloc(0));
  const again = await session(t, tb, blobDir, workDir, { validate: false });
  assert.deepEqual(await again.reader.readChunks(tb.chunks), tb.data);
  assert.equal(again.backend.metrics.readCount, 5);
});

test('with validation a corrupted cached chunk is evicted, refetched and repaired', async (t) => {
  const { blobDir, workDir, tb, dataPath } = testBlob(t);
  await fill(t, tb, blobDir, workDir);
  const image = readFileSync(dataPath);
  image[tb.chunks[3].uncompressedOffset + 1234] ^= 0xff;
  writeFileSync(dataPath, image);
  const s = await session(t, tb, blobDir, workDir, { validate: true });
  assert.deepEqual(await s.reader.readChunks(tb.chunks), tb.data);
  assert.equal(s.backend.metrics.readCount, 1);
  assert.equal(s.reader.stats.cacheEvictions, 1);
  await s.close();
  const repaired = await session(t, tb, blobDir, workDir, { validate: true });
  assert.deepEqual(await repaired.reader.readChunks(tb.chunks), tb.data);
  assert.equal(repaired.backend.metrics.readCount, 0);
});

test('without validation a chunk whose bit was never set is never served from the cache', async (t) => {
  const { blobDir, workDir, tb, dataPath } = testBlob(t);
  await fill(t, tb, blobDir, workDir, [tb.chunks[0]]);
  // Plant plausible-looking bytes where chunk 1 would go: its bit is still clear.
  const image = Buffer.alloc(tb.blob.uncompressedSize, 0x42);
  readFileSync(dataPath).copy(image);
  writeFileSync(dataPath, image);
  const s = await session(t, tb, blobDir, workDir, { validate: false });
  assert.deepEqual(await s.reader.readChunk(tb.chunks[1]), tb.data[1]);
  assert.deepEqual(await s.reader.readChunk(tb.chunks[0]), tb.data[0]);
  assert.equal(s.backend.metrics.readCount, 1);
});

test('a crash after the data is written but before the map is saved loses only that work', async (t) => {
  const { blobDir, workDir, tb, dataPath } = testBlob(t);
  const child = fileURLToPath(new URL(FROM_SOURCE ? './crash-child.ts' : './crash-child.js', import.meta.url));
  const job = {
    blobDir,
    workDir,
    blob: tb.blob,
    chunks: tb.chunks.map((c) => ({ ...c, digest: c.digest.toString('hex') })),
    groups: [[0, 1], [2, 3]],
    crashWhenReady: [2, 3],
  };
  const argv = FROM_SOURCE ? ['--import', 'tsx', child] : [child];
  const r = spawnSync(process.execPath, [...argv, JSON.stringify(job)], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.signal, 'SIGKILL', `child ended with ${r.status} ${r.signal}: ${r.stderr}`);
  // Bytes of group 2 reached the data file; only the map does not know it.
  const image = readFileSync(dataPath);
  const written = [2, 3].filter((i) => {
    const c = tb.chunks[i];
    return image.subarray(c.uncompressedOffset, c.uncompressedOffset + c.uncompressedSize).equals(tb.data[i]);
  });
  assert.ok(written.length > 0, 'the crash came after a group 2 chunk was written');

  const s = await session(t, tb, blobDir, workDir, { validate: false });
  assert.deepEqual(await s.reader.readChunks(tb.chunks.slice(0, 2)), tb.data.slice(0, 2));
  assert.equal(s.backend.metrics.readCount, 0, 'group 1 was committed before the crash');
  assert.deepEqual(await s.reader.readChunks(tb.chunks.slice(2)), tb.data.slice(2));
  assert.equal(s.backend.metrics.readCount, 3, 'group 2 and chunk 4 are fetched again');
});

test('a map save only ever claims chunks whose bytes were written and fdatasynced before it', async (t) => {
  const { blobDir, workDir, tb } = testBlob(t);
  const events: string[] = [];
  const probe = await open(join(blobDir, tb.blob.blobId), 'r');
  const fhProto = Object.getPrototypeOf(probe) as { write: Function; datasync: Function };
  await probe.close();
  const realWrite = fhProto.write;
  const realSync = fhProto.datasync;
  const realSave = ChunkMap.prototype.save;
  t.after(() => {
    fhProto.write = realWrite;
    fhProto.datasync = realSync;
    ChunkMap.prototype.save = realSave;
  });
  fhProto.write = function (this: unknown, ...args: unknown[]) {
    events.push(`write@${args[3] as number}`);
    return realWrite.apply(this, args);
  };
  fhProto.datasync = function (this: unknown) {
    events.push('datasync');
    return realSync.apply(this);
  };
  ChunkMap.prototype.save = function (this: ChunkMap, path: string) {
    const ready = tb.chunks.filter((c) => this.isSet(c.index)).map((c) => c.index);
    events.push(`save:${ready.join(',')}`);
    return realSave.call(this, path);
  };
  const s = await session(t, tb, blobDir, workDir);
  await Promise.all(tb.chunks.map((c) => s.reader.readChunk(c)));
  await s.cache.flush();
  const saves = events.filter((e) => e.startsWith('save:'));
  assert.ok(saves.length > 0);
  assert.equal(saves[saves.length - 1], 'save:0,1,2,3,4');
  for (const [i, e] of events.entries()) {
    if (!e.startsWith('save:') || e === 'save:') continue;
    const lastSync = events.lastIndexOf('datasync', i);
    for (const idx of e.slice(5).split(',').map(Number)) {
      const written = events.indexOf(`write@${tb.chunks[idx].uncompressedOffset}`);
      assert.ok(written >= 0 && written < lastSync, `chunk ${idx} written and synced before "${e}" (${events.join(' ')})`);
    }
  }
});

test('blobs the cache cannot key safely are read without it', async (t) => {
  const { blobDir, workDir, tb, dataPath } = testBlob(t);
  // Old v5 images record no chunk count.
  const old = await session(t, tb, blobDir, workDir, { blob: { ...tb.blob, chunkCount: 0 } });
  assert.deepEqual(await old.reader.readChunks(tb.chunks), tb.data);
  await old.close();
  assert.equal(existsSync(dataPath), false);
  // Chunk indexes that repeat (old images write 0 everywhere) cannot key a bitmap.
  const dup = tb.chunks.map((c) => ({ ...c, index: 0 }));
  const s = await session(t, tb, blobDir, workDir, { blobChunks: () => dup });
  assert.deepEqual(await s.reader.readChunks(dup), tb.data);
  assert.equal(s.reader.stats.cacheBypassedBlobs, 1);
  await s.close();
  assert.equal(existsSync(dataPath), false);
});

test('the blobcache metrics payload has upstream keys (plus write_errors, caching_degraded) and partial hits are counted', async (t) => {
  const { blobDir, workDir, tb } = testBlob(t);
  await fill(t, tb, blobDir, workDir, tb.chunks.slice(0, 2));
  const s = await session(t, tb, blobDir, workDir);
  await s.reader.readChunks(tb.chunks.slice(0, 3));
  await s.cache.flush();
  const json = s.cache.metrics.toJSON();
  assert.deepEqual(Object.keys(json).sort(), [
    'buffered_backend_size', 'data_all_ready', 'entries_count', 'partial_hits', 'prefetch_begin_time_millis',
    'prefetch_begin_time_secs', 'prefetch_cumulative_time_millis', 'prefetch_data_amount', 'prefetch_end_time_millis',
    'prefetch_end_time_secs', 'prefetch_requests_count', 'prefetch_unmerged_chunks', 'prefetch_workers', 'store_path',
    'total', 'underlying_files', 'whole_hits',
    // Extensions.
    'caching_degraded', 'write_errors',
  ].sort());
  assert.equal(json.write_errors, 0);
  assert.equal(json.caching_degraded, false);
  assert.equal(json.partial_hits, 1);
  assert.equal(json.whole_hits, 0);
  assert.equal(json.entries_count, 3);
  assert.equal(json.data_all_ready, false);
  assert.equal(s.cache.metrics.hits, 2);
  assert.equal(s.cache.metrics.misses, 1);
});

test('a data file truncated while the cache runs makes the whole map untrusted', async (t) => {
  const { blobDir, workDir, tb, dataPath } = testBlob(t);
  const s = await session(t, tb, blobDir, workDir, { validate: false });
  // No memory cache in the way: the second reads must go to the cache file.
  const reader = new ChunkReader([tb.blob], s.backend, s.cache, { digestValidate: false, amplifyIo: 0, memoryCacheBytes: 0 });
  await reader.readChunks(tb.chunks);
  await s.cache.flush();
  truncateSync(dataPath, tb.chunks[3].uncompressedOffset + 10);
  assert.deepEqual(await reader.readChunk(tb.chunks[3]), tb.data[3]);
  await s.cache.flush();
  const before = s.backend.metrics.readCount;
  assert.deepEqual(await reader.readChunks(tb.chunks), tb.data);
  assert.equal(s.backend.metrics.readCount - before, 4, 'every other chunk is refetched too');
  assert.equal(s.cache.metrics.mapDiscards, 1);
});
