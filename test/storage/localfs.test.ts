import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalFsBackend } from '../../src/storage/backend/localfs.js';
import { sizeBucket } from '../../src/util/size-bucket.js';
import { tmpDir } from './helpers.js';

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

test('localfs finds blobs in dir, then alt_dirs, or always in blob_file', async (t) => {
  const root = tmpDir(t);
  for (const d of ['a', 'b', 'c']) mkdirSync(join(root, d));
  const one = randomBytes(5000);
  const two = randomBytes(3000);
  writeFileSync(join(root, 'a', 'one'), one);
  writeFileSync(join(root, 'c', 'two'), two);
  const be = new LocalFsBackend({ dir: join(root, 'a'), blob_file: '', alt_dirs: [join(root, 'b'), join(root, 'c')] });
  t.after(() => be.close());
  assert.equal(await be.blobSize('one'), 5000);
  assert.equal(await be.blobSize('two'), 3000);
  const buf = Buffer.alloc(100);
  await be.read('two', buf, 2900);
  assert.deepEqual(buf, two.subarray(2900));
  await assert.rejects(be.blobSize('three'), (err) => codeOf(err) === 'ERR_STORAGE_BLOB_NOT_FOUND');
  // A blob that appears later is found: failed opens are not remembered.
  writeFileSync(join(root, 'b', 'three'), one);
  assert.equal(await be.blobSize('three'), 5000);

  const fixed = new LocalFsBackend({ dir: '', blob_file: join(root, 'a', 'one'), alt_dirs: [] });
  t.after(() => fixed.close());
  await fixed.read('any-id-at-all', buf, 0);
  assert.deepEqual(buf, one.subarray(0, 100));
});

test('reads past the end are ERR_STORAGE_SHORT_READ and count as errors', async (t) => {
  const root = tmpDir(t);
  writeFileSync(join(root, 'blob'), randomBytes(1000));
  const be = new LocalFsBackend({ dir: root, blob_file: '', alt_dirs: [] });
  t.after(() => be.close());
  await assert.rejects(be.read('blob', Buffer.alloc(10), 995), (err) => codeOf(err) === 'ERR_STORAGE_SHORT_READ');
  await be.read('blob', Buffer.alloc(1000), 0);
  const m = be.metrics.toJSON();
  assert.equal(m.backend_type, 'localfs');
  assert.equal(m.read_count, 2);
  assert.equal(m.read_errors, 1);
  assert.equal(m.read_amount_total, 1000);
  assert.deepEqual(Object.keys(m).sort(), [
    'backend_type', 'read_count', 'read_count_block_size_dist', 'read_cumulative_latency_millis_dist',
    'read_cumulative_latency_millis_total', 'read_errors', 'read_latency_sizes_dist', 'read_amount_total',
  ].sort());
  assert.equal(m.read_count_block_size_dist[0], 2);
  assert.equal(m.read_latency_sizes_dist.length, 8);
  assert.equal(m.read_latency_sizes_dist[0].reduce((a, b) => a + b), 2);
  assert.deepEqual([1023, 1024, 4096, 65535, 131072, 524287, 1048575, 1048576].map(sizeBucket), [0, 1, 2, 3, 5, 5, 6, 7]);
});

test('many blobs through a small handle cache all read correctly, concurrently', async (t) => {
  const root = tmpDir(t);
  const blobs = Array.from({ length: 12 }, () => randomBytes(64 * 1024));
  blobs.forEach((b, i) => writeFileSync(join(root, `b${i}`), b));
  const be = new LocalFsBackend({ dir: root, blob_file: '', alt_dirs: [] }, { maxOpenFiles: 2 });
  const reads = [];
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < blobs.length; i++) {
      const off = (round * 7919 + i * 104729) % (blobs[i].length - 4096);
      const buf = Buffer.alloc(4096);
      reads.push(be.read(`b${i}`, buf, off).then(() => assert.deepEqual(buf, blobs[i].subarray(off, off + 4096))));
    }
  }
  await Promise.all(reads);
  await be.close();
  await assert.rejects(be.read('b0', Buffer.alloc(1), 0), (err) => codeOf(err) === 'ERR_STORAGE_BACKEND');
});

test('a localfs config without dir or blob_file is refused', () => {
  assert.throws(() => new LocalFsBackend({ dir: '', blob_file: '', alt_dirs: [] }), (err) => codeOf(err) === 'ERR_STORAGE_BACKEND');
});
