import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { ChunkInfo, Compressor, Digester } from '../../src/storage/types.js';
import { LocalFsBackend } from '../../src/storage/backend/localfs.js';
import { ChunkReader } from '../../src/storage/chunk-reader.js';
import type { ChunkReaderOptions } from '../../src/storage/chunk-reader.js';
import { buildBlob, compressible, tmpDir } from './helpers.js';
import type { TestBlob } from './helpers.js';

function setup(t: TestContext, tb: TestBlob, dir: string, opts: Partial<ChunkReaderOptions> = {}) {
  const backend = new LocalFsBackend({ dir, blob_file: '', alt_dirs: [] });
  t.after(() => backend.close());
  const reader = new ChunkReader([tb.blob], backend, undefined, {
    digestValidate: true,
    amplifyIo: 0,
    blobChunks: () => tb.chunks,
    ...opts,
  });
  return { backend, reader };
}

/** Chunks of mixed kinds: compressible, random (stored raw), tiny, empty-ish. */
function mixedContents(): Buffer[] {
  return [compressible(200_000, 1), randomBytes(50_000), compressible(1, 2), compressible(4096, 3), randomBytes(777), compressible(65_536, 4)];
}

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

test('every compressor × digester reads back with validation', async (t) => {
  const dir = tmpDir(t);
  for (const compressor of ['none', 'lz4_block', 'zstd', 'gzip'] as Compressor[]) {
    for (const digester of ['sha256', 'blake3'] as Digester[]) {
      const tb = buildBlob(dir, mixedContents(), { compressor, digester });
      const { reader, backend } = setup(t, tb, dir);
      const got = await reader.readChunks(tb.chunks);
      got.forEach((d, i) => assert.deepEqual(d, tb.data[i], `${compressor}/${digester} chunk ${i}`));
      assert.equal(backend.metrics.readCount, tb.chunks.length);
      if (compressor !== 'none') assert.ok(tb.chunks.some((c) => c.compressed) && tb.chunks.some((c) => !c.compressed));
    }
  }
});

test('pooled read buffers never change a chunk already served: raw chunks are views of their read', async (t) => {
  const dir = tmpDir(t);
  // Random data is stored raw (a view of the read buffer); compressible data is decoded
  // into its own buffer and its read buffer goes back to the pool for the next read.
  const contents = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? randomBytes(40_000) : compressible(40_000, i)));
  for (const compressor of ['none', 'lz4_block'] as Compressor[]) {
    const tb = buildBlob(dir, contents, { compressor });
    const { reader } = setup(t, tb, dir, { digestValidate: false, memoryCacheBytes: 64 << 20 });
    const first: Buffer[] = [];
    for (const c of tb.chunks) first.push(await reader.readChunk(c));
    first.forEach((d, i) => assert.deepEqual(d, tb.data[i], `${compressor} chunk ${i} as served`));
    // Later reads come from memory: the same buffers, still holding the same bytes.
    for (let i = 0; i < tb.chunks.length; i++) assert.deepEqual(await reader.readChunk(tb.chunks[i]), tb.data[i], `${compressor} chunk ${i} later`);
    assert.equal(reader.stats.memoryHits, tb.chunks.length);
  }
});

test('readRange copies the covered bytes into the caller buffer and zeroes holes', async (t) => {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, [compressible(10_000, 1), compressible(10_000, 2)]);
  const { reader } = setup(t, tb, dir);
  // The file: chunk 0 at 0, a hole of 5000, chunk 1 at 15000.
  const chunks: ChunkInfo[] = [{ ...tb.chunks[0], fileOffset: 0 }, { ...tb.chunks[1], fileOffset: 15_000 }];
  const out = Buffer.alloc(20_000, 0xee);
  await reader.readRange(chunks, 5000, out);
  const expected = Buffer.concat([tb.data[0].subarray(5000), Buffer.alloc(5000), tb.data[1]]);
  assert.deepEqual(out, expected);
  const tail = Buffer.alloc(3000, 0xee);
  await reader.readRange([chunks[1]], 24_000, tail);
  assert.deepEqual(tail, Buffer.concat([tb.data[1].subarray(9000), Buffer.alloc(2000)]));
});

test('a corrupted stored chunk is an error for that chunk only; the others read right', async (t) => {
  const dir = tmpDir(t);
  for (const compressor of ['none', 'lz4_block', 'zstd', 'gzip'] as Compressor[]) {
    const contents = [compressible(30_000, 1), compressible(30_000, 2), compressible(30_000, 3), compressible(30_000, 4)];
    const tb = buildBlob(dir, contents, { compressor, digester: 'sha256' });
    const bad = tb.chunks[2];
    const bytes = Buffer.from(tb.bytes);
    for (let k = 0; k < 4; k++) bytes[bad.compressedOffset + Math.floor((bad.compressedSize * (k + 1)) / 5)] ^= 0x55;
    writeFileSync(tb.path, bytes);
    // Amplification pulls the corrupt chunk in as a neighbour of chunk 1: it must not poison chunk 1.
    const { reader } = setup(t, tb, dir, { amplifyIo: 1 << 20 });
    assert.deepEqual(await reader.readChunk(tb.chunks[1]), contents[1]);
    assert.equal(reader.stats.backendReads, 1);
    await assert.rejects(reader.readChunk(bad), (err) => ['ERR_STORAGE_DIGEST_MISMATCH', 'ERR_STORAGE_DECOMPRESS'].includes(codeOf(err)!));
    await assert.rejects(reader.readChunks(tb.chunks), (err) => codeOf(err) !== undefined);
    for (const i of [0, 1, 3]) assert.deepEqual(await reader.readChunk(tb.chunks[i]), contents[i], `${compressor} chunk ${i}`);
  }
});

test('a wrong expected digest is ERR_STORAGE_DIGEST_MISMATCH, and without validation it is not checked', async (t) => {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, [compressible(10_000, 9)], { digester: 'blake3' });
  const wrong = { ...tb.chunks[0], digest: Buffer.alloc(32, 7) };
  const strict = setup(t, tb, dir).reader;
  await assert.rejects(strict.readChunk(wrong), (err) => codeOf(err) === 'ERR_STORAGE_DIGEST_MISMATCH');
  assert.equal(strict.stats.digestFailures, 1);
  const lax = setup(t, tb, dir, { digestValidate: false }).reader;
  assert.deepEqual(await lax.readChunk(wrong), tb.data[0]);
});

test('concurrent reads of one chunk share one backend read', async (t) => {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, [compressible(500_000, 5), compressible(500_000, 6)]);
  const { reader, backend } = setup(t, tb, dir, { memoryCacheBytes: 0 });
  const all = await Promise.all(Array.from({ length: 20 }, () => reader.readChunk(tb.chunks[0])));
  for (const d of all) assert.equal(d, all[0]);
  assert.deepEqual(all[0], tb.data[0]);
  assert.equal(backend.metrics.readCount, 1);
  // With the memory cache off and nothing in flight, a later read fetches again.
  await reader.readChunk(tb.chunks[0]);
  assert.equal(backend.metrics.readCount, 2);
  // The same chunk twice in one request is one fetch too.
  const [a, b] = await reader.readChunks([tb.chunks[1], tb.chunks[1]]);
  assert.equal(a, b);
  assert.equal(backend.metrics.readCount, 3);
});

test('amplification merges following chunks into one backend read, up to amplifyIo bytes', async (t) => {
  const dir = tmpDir(t);
  // Random chunks are stored raw: 10 000 stored bytes each, back to back.
  const tb = buildBlob(dir, Array.from({ length: 10 }, () => randomBytes(10_000)));
  const { reader, backend } = setup(t, tb, dir, { amplifyIo: 35_000 });
  assert.deepEqual(await reader.readChunk(tb.chunks[0]), tb.data[0]);
  assert.equal(reader.stats.backendReads, 1);
  assert.equal(reader.stats.backendBytes, 30_000);
  assert.equal(reader.stats.amplifiedChunks, 2);
  assert.deepEqual(await reader.readChunks([tb.chunks[1], tb.chunks[2]]), [tb.data[1], tb.data[2]]);
  assert.equal(backend.metrics.readCount, 1, 'chunks 1 and 2 came with chunk 0');
  // Chunk 5 is already in memory, so amplification from chunk 3 stops before it.
  await reader.readChunk(tb.chunks[5]);
  assert.equal(reader.stats.backendBytes, 60_000, 'chunk 5 amplified to 6 and 7');
  await reader.readChunk(tb.chunks[3]);
  assert.equal(reader.stats.backendReads, 3);
  assert.equal(reader.stats.backendBytes, 80_000, 'chunk 3 amplified to 4 only');
  for (let i = 0; i < 10; i++) assert.deepEqual(await reader.readChunk(tb.chunks[i]), tb.data[i]);
  assert.equal(reader.stats.backendReads, 4, 'chunks 8 and 9 in one last read');
  assert.equal(backend.metrics.readAmountTotal, 100_000);
});

test('without amplification every chunk is its own read; requested neighbours merge when allowed', async (t) => {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, Array.from({ length: 6 }, () => randomBytes(10_000)));
  const off = setup(t, tb, dir, { amplifyIo: 0 });
  await off.reader.readChunks(tb.chunks.slice(0, 3));
  assert.equal(off.backend.metrics.readCount, 3);
  // No neighbour list (no RafsSuper): the requested chunks still merge with each other.
  const backend = new LocalFsBackend({ dir, blob_file: '', alt_dirs: [] });
  t.after(() => backend.close());
  const reader = new ChunkReader([tb.blob], backend, undefined, { digestValidate: true, amplifyIo: 64_000 });
  const got = await reader.readChunks([tb.chunks[4], tb.chunks[3], tb.chunks[5]]);
  assert.deepEqual(got, [tb.data[4], tb.data[3], tb.data[5]]);
  assert.equal(backend.metrics.readCount, 1);
  assert.equal(reader.stats.amplifiedChunks, 0);
});

test('amplification reads across small holes between chunks but not large ones', async (t) => {
  const dir = tmpDir(t);
  const small = buildBlob(dir, Array.from({ length: 3 }, () => randomBytes(10_000)), { gap: 1000 });
  const a = setup(t, small, dir, { amplifyIo: 1 << 20 });
  await a.reader.readChunk(small.chunks[0]);
  assert.equal(a.reader.stats.backendReads, 1);
  assert.equal(a.reader.stats.backendBytes, 32_000);
  assert.deepEqual(await a.reader.readChunk(small.chunks[2]), small.data[2]);
  const large = buildBlob(dir, Array.from({ length: 3 }, () => randomBytes(10_000)), { gap: 10_000 });
  const b = setup(t, large, dir, { amplifyIo: 1 << 20 });
  await b.reader.readChunk(large.chunks[0]);
  assert.equal(b.reader.stats.backendBytes, 10_000);
  assert.equal(b.reader.stats.amplifiedChunks, 0);
});

test('a neighbour past the end of the blob does not fail the wanted chunk', async (t) => {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, [randomBytes(10_000), randomBytes(10_000)]);
  const bogus: ChunkInfo = { ...tb.chunks[1], index: 2, compressedOffset: 20_000, uncompressedOffset: 20_480 };
  const { reader } = setup(t, tb, dir, { amplifyIo: 1 << 20, blobChunks: () => [...tb.chunks, bogus] });
  assert.deepEqual(await reader.readChunk(tb.chunks[1]), tb.data[1]);
  await assert.rejects(reader.readChunk(bogus), (err) => codeOf(err) === 'ERR_STORAGE_SHORT_READ');
});

test('bad chunk descriptors, unsupported blobs and missing blobs are typed errors', async (t) => {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, [compressible(10_000, 1)], { compressor: 'none' });
  const { reader } = setup(t, tb, dir);
  const c = tb.chunks[0];
  const bad: [ChunkInfo, string][] = [
    [{ ...c, blobIndex: 3 }, 'ERR_STORAGE_BAD_CHUNK'],
    [{ ...c, compressedSize: c.compressedSize + 1 }, 'ERR_STORAGE_BAD_CHUNK'],
    [{ ...c, uncompressedSize: 0x2000000, compressedSize: 0x2000000 }, 'ERR_STORAGE_BAD_CHUNK'],
    [{ ...c, compressedOffset: -1 }, 'ERR_STORAGE_BAD_CHUNK'],
    [{ ...c, digest: Buffer.alloc(5) }, 'ERR_STORAGE_BAD_CHUNK'],
    [{ ...c, compressedOffset: tb.bytes.length - 10 }, 'ERR_STORAGE_SHORT_READ'],
  ];
  for (const [chunk, code] of bad) await assert.rejects(reader.readChunk(chunk), (err) => codeOf(err) === code, code);
  const batch = new ChunkReader([{ ...tb.blob, features: 0x80 }], reader.backend, undefined, { digestValidate: true, amplifyIo: 0 });
  await assert.rejects(batch.readChunk(c), (err) => codeOf(err) === 'ERR_STORAGE_UNSUPPORTED');
  // A zran blob whose image names no meta blob (blob_meta_digest zero) cannot be located.
  const zran = new ChunkReader([{ ...tb.blob, features: 0x8 }], reader.backend, undefined, { digestValidate: true, amplifyIo: 0 });
  await assert.rejects(zran.readChunk(c), (err) => codeOf(err) === 'ERR_STORAGE_BAD_CHUNK');
  const missing = new ChunkReader([{ ...tb.blob, blobId: 'f'.repeat(64) }], reader.backend, undefined, {
    digestValidate: true,
    amplifyIo: 0,
  });
  await assert.rejects(missing.readChunk(c), (err) => codeOf(err) === 'ERR_STORAGE_BLOB_NOT_FOUND');
  const escape = new ChunkReader([{ ...tb.blob, blobId: '../etc/passwd' }], reader.backend, undefined, {
    digestValidate: true,
    amplifyIo: 0,
  });
  await assert.rejects(escape.readChunk(c), (err) => codeOf(err) === 'ERR_STORAGE_BLOB_NOT_FOUND');
});

test('an aborted caller stops waiting while the shared fetch completes for the others', async (t) => {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, [compressible(300_000, 1)]);
  const { reader, backend } = setup(t, tb, dir);
  const ac = new AbortController();
  const aborted = reader.readChunk(tb.chunks[0], ac.signal);
  const other = reader.readChunk(tb.chunks[0]);
  ac.abort();
  await assert.rejects(aborted, (err) => (err as Error).name === 'AbortError');
  assert.deepEqual(await other, tb.data[0]);
  assert.equal(backend.metrics.readCount, 1);
  await assert.rejects(reader.readChunk(tb.chunks[0], AbortSignal.abort()), (err) => (err as Error).name === 'AbortError');
});
