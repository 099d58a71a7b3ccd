// The upstream v6 fixture blob read through localfs + chunk reader (+ blobcache), with
// ChunkInfos built from the blob's own chunk-info and digest arrays (docs/format.md §7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalFsBackend } from '../../src/storage/backend/localfs.js';
import { BlobCache } from '../../src/storage/cache/blobcache.js';
import { ChunkReader } from '../../src/storage/chunk-reader.js';
import { digest } from '../../src/storage/digest.js';
import { haveFixtures, need } from '../helpers/env.js';
import { V6_BLOB_ID, V6_BLOB_INFO, V6_BLOBS } from '../rafs/helpers/fixtures.js';
import { chunksFromBlobMeta, readToc, tmpDir } from './helpers.js';

// docs/format.md §9.3: lib.rs and sync_io.rs are one chunk each.
const FILES = [
  { name: 'lib.rs', size: 16931, sha256: '1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69', chunkDigest: 'f7e2735f1c6ae9cde91e537416b09d8bb71b306a421d19cc1012a51f93a7fe69' },
  { name: 'sync_io.rs', size: 13400, sha256: 'e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96', chunkDigest: '812465bcc9e88393598311dc5fc93abaeccef0185bcd99f9701d17ebdf9adc3f' },
];

function fixtureChunks() {
  const bytes = readFileSync(join(V6_BLOBS, V6_BLOB_ID));
  return { bytes, chunks: chunksFromBlobMeta(bytes) };
}

test('the v6 blob carries the chunk-info and digest arrays docs/format.md describes', (t) => {
  if (!need(t, haveFixtures() && existsSync(join(V6_BLOBS, V6_BLOB_ID)), 'shared fixtures')) return;
  const { bytes, chunks } = fixtureChunks();
  const toc = readToc(bytes);
  assert.deepEqual(
    toc.map((e) => [e.name, e.compressedOffset, e.compressedSize]),
    [['image.blob', 7802, 7802], ['blob.meta', 8314, 32], ['blob.meta.header', 8346, 4096], ['blob.digest', 12954, 64]],
  );
  for (const e of toc.slice(1)) {
    const payload = bytes.subarray(e.compressedOffset, e.compressedOffset + e.compressedSize);
    assert.deepEqual(createHash('sha256').update(payload).digest(), e.uncompressedDigest, e.name);
  }
  assert.deepEqual(
    chunks.map((c) => [c.uncompressedOffset, c.uncompressedSize, c.compressedOffset, c.compressedSize, c.compressed]),
    [[0, 16931, 0, 4828, true], [20480, 13400, 4828, 2974, true]],
  );
  assert.deepEqual(chunks.map((c) => c.digest.toString('hex')), FILES.map((f) => f.chunkDigest));
});

test('both fixture chunks read through localfs with blake3 validation give the files of §9.3', async (t) => {
  if (!need(t, haveFixtures() && existsSync(join(V6_BLOBS, V6_BLOB_ID)), 'shared fixtures')) return;
  const { chunks } = fixtureChunks();
  const backend = new LocalFsBackend({ dir: V6_BLOBS, blob_file: '', alt_dirs: [] });
  t.after(() => backend.close());
  const reader = new ChunkReader([V6_BLOB_INFO], backend, undefined, {
    digestValidate: true,
    amplifyIo: 128 * 1024,
    blobChunks: () => chunks,
  });
  // Reading the first chunk amplifies to its neighbour: one backend read of 7802 bytes.
  const first = await reader.readChunk(chunks[0]);
  assert.equal(reader.stats.backendReads, 1);
  assert.equal(reader.stats.backendBytes, 4828 + 2974);
  assert.equal(reader.stats.amplifiedChunks, 1);
  const second = await reader.readChunk(chunks[1]);
  assert.equal(backend.metrics.readCount, 1, 'the second chunk came from the amplified read');
  for (const [i, data] of [first, second].entries()) {
    assert.equal(data.length, FILES[i].size);
    assert.equal(digest('blake3', data).toString('hex'), FILES[i].chunkDigest);
    assert.equal(createHash('sha256').update(data).digest('hex'), FILES[i].sha256, FILES[i].name);
  }
  assert.equal(reader.stats.digestFailures, 0);
});

test('the fixture blob through blobcache: the cache file is the uncompressed blob image', async (t) => {
  if (!need(t, haveFixtures() && existsSync(join(V6_BLOBS, V6_BLOB_ID)), 'shared fixtures')) return;
  const { chunks } = fixtureChunks();
  const work = tmpDir(t, 'storage-v6');
  for (let round = 0; round < 2; round++) {
    const backend = new LocalFsBackend({ dir: V6_BLOBS, blob_file: '', alt_dirs: [] });
    const cache = new BlobCache(work);
    const reader = new ChunkReader([V6_BLOB_INFO], backend, cache, { digestValidate: true, amplifyIo: 0 });
    const data = await reader.readChunks(chunks);
    await cache.flush();
    assert.deepEqual(data.map((d) => createHash('sha256').update(d).digest('hex')), FILES.map((f) => f.sha256));
    assert.equal(backend.metrics.readCount, round === 0 ? 2 : 0, `round ${round}`);
    assert.equal(cache.metrics.toJSON().data_all_ready, true);
    await reader.close();
    await cache.close();
    await backend.close();
  }
  // The kernel's view of a v6 blob (§4.13): chunk i at its 4 KiB aligned uncompressed offset.
  const image = readFileSync(join(work, `${V6_BLOB_ID}.blob.data`));
  assert.equal(createHash('sha256').update(image.subarray(0, 16931)).digest('hex'), FILES[0].sha256);
  assert.equal(createHash('sha256').update(image.subarray(20480, 20480 + 13400)).digest('hex'), FILES[1].sha256);
});
