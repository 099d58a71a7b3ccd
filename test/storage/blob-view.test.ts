// BlobView alone: the uncompressed address space of a blob laid out from its chunks, holes
// as zeros, the size rounded up to 4 KiB, reads that straddle chunks and gaps; and the
// layout check that sends unaligned or overlapping chunks to --fs-driver fusedev.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlobView, viewLayoutProblem } from '../../src/storage/blob-view.js';
import type { BlobInfo, ChunkInfo } from '../../src/storage/types.js';
import type { ChunkReader } from '../../src/storage/chunk-reader.js';

const blob = { index: 0, blobId: 'b'.repeat(64), uncompressedSize: 20_000 } as BlobInfo;

function chunk(index: number, uncompressedOffset: number, uncompressedSize: number): ChunkInfo {
  return { digest: Buffer.alloc(32), blobIndex: 0, index, compressed: false, compressedOffset: index * 100_000, compressedSize: uncompressedSize, uncompressedOffset, uncompressedSize, fileOffset: 0 };
}

/** A reader whose chunk k holds the byte k + 1 everywhere: placement is visible in the output. */
const reader = {
  async readRange(chunks: readonly ChunkInfo[], offset: number, out: Buffer) {
    out.fill(0);
    for (const c of chunks) {
      const from = Math.max(c.fileOffset, offset);
      const to = Math.min(c.fileOffset + c.uncompressedSize, offset + out.length);
      if (to > from) out.fill(c.index + 1, from - offset, to - offset);
    }
  },
} as unknown as ChunkReader;

test('the view places each chunk at its uncompressed offset, zeros between, size rounded to 4 KiB', async () => {
  const chunks = [chunk(1, 8192, 5000), chunk(0, 0, 4096)];
  assert.equal(viewLayoutProblem(blob, chunks), undefined);
  const v = new BlobView(blob, chunks, reader);
  assert.equal(v.size, 20_480);
  const out = Buffer.alloc(v.size);
  await v.read(0, out);
  assert.ok(out.subarray(0, 4096).every((b) => b === 1));
  assert.ok(out.subarray(4096, 8192).every((b) => b === 0));
  assert.ok(out.subarray(8192, 13_192).every((b) => b === 2));
  assert.ok(out.subarray(13_192).every((b) => b === 0));
  const mid = Buffer.alloc(6000);
  await v.read(4000, mid);
  assert.deepEqual([mid[0], mid[95], mid[96], mid[4191], mid[4192], mid[5999]], [1, 1, 0, 0, 2, 2]);
  assert.throws(() => v.read(v.size - 10, Buffer.alloc(20)), /outside/);
});

test('unaligned and overlapping chunks are named', () => {
  assert.match(viewLayoutProblem(blob, [chunk(0, 0, 4096), chunk(1, 4100, 100)]) ?? '', /chunk 1 .* 4100, not 4 KiB-aligned/);
  assert.match(viewLayoutProblem(blob, [chunk(0, 0, 9000), chunk(1, 8192, 100)]) ?? '', /overlap at uncompressed offset 8192/);
});
