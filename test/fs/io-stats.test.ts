// FsIoStats in upstream's shapes: fop order, hits versus errors, data read with its
// block-size and latency buckets, open files, per-inode counters, the access pattern,
// and the latest-read list as ranges that reading clears.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode } from '../../src/fuse/abi.js';
import { FsIoStats } from '../../src/fs/io-stats.js';

test('global counters follow upstream StatsFop order and buckets', () => {
  const s = new FsIoStats('/snap', { files: false, accessPattern: false, latestReadFiles: false });
  s.record(Opcode.GETATTR, 1, 0, 5_000, 0);
  s.record(Opcode.LOOKUP, 1, 2, 3_000, 0);
  s.record(Opcode.OPEN, 7, 0, 1_000, 0);
  s.record(Opcode.READ, 7, 0, 150_000, 4096);
  s.record(Opcode.READ, 7, 0, 3_000_000, 1 << 20);
  s.record(Opcode.READ, 7, 5, 900_000, 0);
  s.record(Opcode.RELEASE, 7, 0, 1_000, 0);
  s.record(Opcode.INIT, 0, 0, 1, 0);
  const j = s.toJSON();
  assert.deepEqual(Object.keys(j), [
    'files_account_enabled', 'access_pattern_enabled', 'record_latest_read_files_enabled', 'measure_latency', 'id', 'nr_opens',
    'data_read', 'block_count_read', 'fop_hits', 'fop_errors', 'fop_cumulative_latency_total', 'read_latency_dist',
  ]);
  assert.equal(j.id, '/snap');
  assert.equal(j.fop_hits.length, 15);
  assert.deepEqual(j.fop_hits.slice(0, 5), [1, 0, 1, 1, 2]);
  assert.equal(j.fop_errors[9], 1, 'lookup error');
  assert.equal(j.fop_errors[4], 1, 'read error');
  assert.equal(j.data_read, 4096 + (1 << 20));
  assert.deepEqual(j.block_count_read, [0, 0, 1, 0, 0, 0, 0, 1]);
  assert.deepEqual(j.read_latency_dist, [1, 1, 1, 0, 0, 0, 0, 0]);
  assert.equal(j.fop_cumulative_latency_total[4], 150 + 3000 + 900);
  assert.equal(j.nr_opens, 0, 'opened then released');
  assert.deepEqual(s.filesJson(), {}, 'no per-file counters unless iostats_files');
  assert.deepEqual(s.accessPattern(), []);
  assert.deepEqual(s.takeLatestReadFiles(), []);
});

test('per-file counters, access pattern and the latest-read ranges', () => {
  const s = new FsIoStats('/', { files: true, accessPattern: true, latestReadFiles: true });
  for (const ino of [10, 11, 12, 20, 12]) s.record(Opcode.READ, ino, 0, 1000, 100);
  s.record(Opcode.GETATTR, 10, 0, 1000, 0);
  const f = s.filesJson();
  assert.deepEqual(Object.keys(f), ['10', '11', '12', '20']);
  assert.deepEqual({ ...f['12'], fop_hits: f['12'].fop_hits[4] }, { total_fops: 2, data_read: 200, block_count_read: [2, 0, 0, 0, 0, 0, 0, 0], fop_hits: 2, fop_errors: new Array(15).fill(0) });
  assert.equal(f['10'].total_fops, 2);
  const p = s.accessPattern();
  assert.deepEqual(p.map((e) => [e.ino, e.nr_read]), [[10, 1], [11, 1], [12, 2], [20, 1]]);
  assert.ok(p[0].first_access_time_secs > 1_600_000_000);
  assert.deepEqual(s.takeLatestReadFiles(), [[10, 12], [20]]);
  assert.deepEqual(s.takeLatestReadFiles(), []);
});
