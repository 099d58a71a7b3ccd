// Decoded-chunk buffers are reused (decision 0008) only when nobody can still read them:
// reads in progress copy what they need first, buffers handed to readChunk(s) callers
// are never reused, and the cache's write queue keeps what it has not written yet.
// Each test reads through a small memory LRU so chunks are evicted and buffers reused
// all the time, and checks every byte.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ChunkInfo } from '../../src/rafs/types.js';
import { LocalFsBackend } from '../../src/storage/backend/localfs.js';
import { BlobCache } from '../../src/storage/cache/blobcache.js';
import { ChunkReader } from '../../src/storage/chunk-reader.js';
import { buildBlob, compressible, tmpDir } from './helpers.js';
import type { TestBlob } from './helpers.js';

const CHUNK = 64 * 1024;

function blobOf(t: TestContext, n: number): { dir: string; tb: TestBlob } {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, Array.from({ length: n }, (_, i) => compressible(CHUNK - (i % 7) * 1000, i + 1)), { compressor: 'lz4_block' });
  return { dir, tb };
}

function readerOf(t: TestContext, tb: TestBlob, dir: string, cache?: BlobCache, amplifyIo = 0): ChunkReader {
  const backend = new LocalFsBackend({ dir, blob_file: '', alt_dirs: [] });
  const reader = new ChunkReader([tb.blob], backend, cache, {
    digestValidate: false,
    amplifyIo,
    blobChunks: () => tb.chunks,
    memoryCacheBytes: 4 * CHUNK,
  });
  t.after(async () => {
    await reader.close();
    await cache?.close();
    await backend.close();
  });
  return reader;
}

/** Reads chunk `i` of the blob as a one-chunk file through readRange. */
async function readWhole(reader: ChunkReader, c: ChunkInfo): Promise<Buffer> {
  const out = Buffer.alloc(c.uncompressedSize, 0xee);
  await reader.readRange([{ ...c, fileOffset: 0 }], 0, out);
  return out;
}

/** Reads chunks `i .. i + n - 1` as one file of consecutive chunks through readRange. */
async function readFile(reader: ChunkReader, tb: TestBlob, i: number, n: number): Promise<void> {
  const chunks: ChunkInfo[] = [];
  let off = 0;
  for (let k = i; k < i + n; k++) {
    chunks.push({ ...tb.chunks[k], fileOffset: off });
    off += tb.chunks[k].uncompressedSize;
  }
  const out = Buffer.alloc(off, 0xee);
  await reader.readRange(chunks, 0, out);
  assert.deepEqual(out, Buffer.concat(tb.data.slice(i, i + n)), `chunks ${i}..${i + n - 1}`);
}

test('concurrent readers through a small LRU: buffers are reused and every read is right', async (t) => {
  const { dir, tb } = blobOf(t, 48);
  const reader = readerOf(t, tb, dir, undefined, 256 * 1024);
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  // Files of 1 to 3 chunks: some chunks of a read are in memory while the others are
  // fetched, and other readers evict them meanwhile.
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let k = 0; k < 60; k++) {
        const n = 1 + (next() % 3);
        await readFile(reader, tb, next() % (tb.chunks.length - n + 1), n);
      }
    }),
  );
  for (let i = 0; i < tb.chunks.length; i++) assert.deepEqual(await readWhole(reader, tb.chunks[i]), tb.data[i], `chunk ${i} alone`);
  assert.ok(reader.recycledBuffers > 0, 'evicted buffers went back to the pool');
});

test('a buffer handed out by readChunk keeps its bytes however many reads follow', async (t) => {
  const { dir, tb } = blobOf(t, 32);
  const reader = readerOf(t, tb, dir);
  const kept = await reader.readChunk(tb.chunks[0]);
  const [alsoKept] = await reader.readChunks([tb.chunks[1]]);
  for (let round = 0; round < 3; round++) {
    for (let i = 2; i < tb.chunks.length; i++) assert.deepEqual(await readWhole(reader, tb.chunks[i]), tb.data[i]);
  }
  assert.ok(reader.recycledBuffers > 0);
  assert.deepEqual(kept, tb.data[0]);
  assert.deepEqual(alsoKept, tb.data[1]);
});

test('the cache writes the bytes it was given even when the LRU drops them first', async (t) => {
  const { dir, tb } = blobOf(t, 40);
  const workDir = join(tmpDir(t, 'storage-cache'), 'work');
  const cache = new BlobCache(workDir);
  const first = readerOf(t, tb, dir, cache);
  // One reader at a time: the LRU drops each chunk a few reads after it was fetched, often
  // before the cache's writer (one fdatasync per batch) got to it.
  for (let i = 0; i < tb.chunks.length; i++) assert.deepEqual(await readWhole(first, tb.chunks[i]), tb.data[i]);
  assert.ok(first.recycledBuffers > 0);
  await cache.flush();
  // A second reader on the same cache, with no blob to fall back on: every byte comes from the cache.
  const second = readerOf(t, tb, tmpDir(t, 'no-blobs'), new BlobCache(workDir));
  for (let i = 0; i < tb.chunks.length; i++) assert.deepEqual(await readWhole(second, tb.chunks[i]), tb.data[i], `cached chunk ${i}`);
  assert.equal(second.stats.backendReads, 0);
});
