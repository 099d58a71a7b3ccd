// The reader's side of a targz-ref blob on its own: a small .tar.gz made by GNU tar and
// gzip, built with createTargzRefImage; the meta blob loads and every chunk reads back
// through the ChunkReader, also after a background prefetch; a damaged meta blob (header, chunk entry, context index,
// missing) is a typed error for the reads that need it, never a crash or wrong bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTargzRefImage } from '../../src/builder/targz-ref.js';
import { openBootstrap, walk } from '../../src/rafs/index.js';
import type { BlobInfo, ChunkInfo } from '../../src/storage/types.js';
import { LocalFsBackend } from '../../src/storage/backend/localfs.js';
import { ChunkReader } from '../../src/storage/chunk-reader.js';
import { decompress } from '../../src/storage/codec.js';
import { ZranBlobMeta } from '../../src/storage/zran-meta.js';
import { runOk } from '../conformance/child.js';

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

async function smallImage(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'zran-meta-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'd'), { recursive: true });
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) {
    const text = Buffer.from(Array.from({ length: 2000 + i * 300 }, (_, k) => `line ${k} of file ${i} ${(k * 7919) % 1009}\n`).join(''));
    files[`d/f${i}.txt`] = text;
    writeFileSync(join(src, 'd', `f${i}.txt`), text);
  }
  const layer = join(dir, 'layer.tar.gz');
  await runOk('sh', ['-c', `tar -C '${src}' -cf - . | gzip -9 > '${layer}'`], dir);
  const blobs = join(dir, 'blobs');
  mkdirSync(blobs);
  const r = await createTargzRefImage({ source: layer, bootstrap: join(dir, 'boot'), blobDir: blobs, chunkSize: 0x10000 });
  const sb = await openBootstrap(r.bootstrap);
  const entries = [...walk(sb)].filter((e) => (e.attr.mode & 0o170000) === 0o100000);
  const chunks = entries.map((e) => ({ path: e.path.toString().replace(/^\//, ''), chunks: sb.fileChunks(e.ino, 0, e.attr.size) }));
  return { dir, blobs, blob: sb.blobs[0], chunks, files, metaId: r.metaId, contexts: r.contextCount };
}

test('a targz-ref blob reads back chunk by chunk and file by file through the ChunkReader', async (t) => {
  const img = await smallImage(t);
  assert.ok(img.contexts >= 1);
  const backend = new LocalFsBackend({ dir: img.blobs, alt_dirs: [], blob_file: '' });
  t.after(() => backend.close());
  const reader = new ChunkReader([img.blob], backend, undefined, { digestValidate: false, amplifyIo: 1 << 20 });
  for (const f of img.chunks) {
    const parts = await reader.readChunks(f.chunks);
    assert.ok(Buffer.concat(parts).equals(img.files[f.path]), f.path);
  }
  // Background prefetch of every chunk (merged reads, never amplified), then reads from memory.
  const pre = new ChunkReader([img.blob], backend, undefined, { digestValidate: true, amplifyIo: 0 });
  const all = img.chunks.flatMap((f) => f.chunks);
  assert.deepEqual(await pre.prefetch(all, 256 << 10), { fetched: all.length, skipped: 0, failed: 0 });
  const reads = pre.stats.backendReads;
  for (const f of img.chunks) assert.ok(Buffer.concat(await pre.readChunks(f.chunks)).equals(img.files[f.path]), `${f.path} after prefetch`);
  assert.equal(pre.stats.backendReads, reads, 'everything came from the prefetch');
  // One more reader, one chunk at a time and without amplification.
  const single = new ChunkReader([img.blob], backend, undefined, { digestValidate: true, amplifyIo: 0 });
  const last = img.chunks[img.chunks.length - 1];
  const c = last.chunks[last.chunks.length - 1];
  assert.ok((await single.readChunk(c)).equals(img.files[last.path].subarray(c.fileOffset, c.fileOffset + c.uncompressedSize)));
});

test('a damaged or missing meta blob is a typed error for the reads that need it', async (t) => {
  const img = await smallImage(t);
  const backend = new LocalFsBackend({ dir: img.blobs, alt_dirs: [], blob_file: '' });
  t.after(() => backend.close());
  const meta = readFileSync(join(img.blobs, img.metaId));
  const header = meta.subarray(meta.length - 4096);
  const ci = decompress(img.blob.metaCiCompressor, meta.subarray(0, img.blob.metaCiCompressedSize), img.blob.metaCiUncompressedSize);
  /** A variant of the meta blob, stored uncompressed under its own name. */
  const variant = (mutate: (ci: Buffer, header: Buffer) => void): BlobInfo => {
    const c = Buffer.from(ci);
    const h = Buffer.from(header);
    mutate(c, h);
    const bytes = Buffer.concat([c, h]);
    const id = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(img.blobs, id), bytes);
    return { ...img.blob, metaCiCompressor: 'none', metaCiCompressedSize: c.length, metaBlobId: id };
  };
  const first: ChunkInfo = img.chunks[0].chunks[0];
  const fails = async (blob: BlobInfo, code: string, why: string) => {
    await assert.rejects(ZranBlobMeta.load(backend, blob).then((m) => m.locate(first)), (err) => codeOf(err) === code, why);
    const reader = new ChunkReader([blob], backend, undefined, { digestValidate: false, amplifyIo: 0 });
    await assert.rejects(reader.readChunk(first), (err) => codeOf(err) === code, `${why} (through the reader)`);
  };
  await fails(variant((_c, h) => h.writeUInt32LE(0, 0)), 'ERR_STORAGE_BAD_CHUNK', 'bad header magic');
  await fails(variant((_c, h) => h.writeBigUInt64LE(12n, 40)), 'ERR_STORAGE_BAD_CHUNK', 'zran table offset not after the entries');
  await fails(variant((c) => c.writeUInt32LE(0xffff, first.index * 24 + 20)), 'ERR_STORAGE_BAD_CHUNK', 'context index out of range');
  await fails(variant((c) => c.writeUInt32LE(0x7fff_ffff, first.index * 24 + 16)), 'ERR_STORAGE_BAD_CHUNK', 'offset past the context');
  await fails(variant((c) => (c[first.index * 24 + 7] &= ~0x02)), 'ERR_STORAGE_BAD_CHUNK', 'not flagged zran');
  await fails({ ...img.blob, metaBlobId: 'f'.repeat(64) }, 'ERR_STORAGE_BLOB_NOT_FOUND', 'meta blob missing');
  await fails({ ...img.blob, metaCiUncompressedSize: 1 << 30 }, 'ERR_STORAGE_BAD_CHUNK', 'absurd chunk-info size');
  // Context windows replaced by zeros: inflation gives other bytes, which the digest refuses.
  const zeroed = variant((c, h) => {
    const at = Number(h.readBigUInt64LE(40));
    const count = h.readUInt32LE(56);
    c.fill(0, at + count * 40);
  });
  const reader = new ChunkReader([zeroed], backend, undefined, { digestValidate: false, amplifyIo: 0 });
  const good = await ZranBlobMeta.load(backend, img.blob);
  const late = img.chunks.flatMap((f) => f.chunks).find((c) => good.locate(c).ctx.window.length > 0);
  assert.ok(late, 'some context starts with a window (not at the start of the stream)');
  await assert.rejects(reader.readChunk(late), (err) => ['ERR_STORAGE_DIGEST_MISMATCH', 'ERR_STORAGE_DECOMPRESS'].includes(codeOf(err) ?? ''));
});
