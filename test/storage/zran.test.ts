// The zran addon and context table on their own: checkpoints taken by the indexer at
// deflate block boundaries (with and without a bit offset) inflate with inflateAt to the
// same bytes node:zlib gives; bad data and bad arguments are errors, never wrong bytes;
// the context table round-trips and a hostile one is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { decodeZranTable, encodeZranTable, inflateFromContext, zranAddon, ZRAN_CONTEXT_SIZE, type ZranContext } from '../../src/storage/zran.js';

/** Text-like data that deflate splits into many blocks. */
function sample(size: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'nydus', 'zran', 'chunk', 'blob', '\n'];
  const rnd = randomBytes(size);
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const w = words[rnd[i % size] % words.length] + (rnd[(i * 7) % size] & 1 ? ' ' : String(rnd[(i * 13) % size]));
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

interface Checkpoint extends ZranContext {
  member: number;
}

/** Inflates `gz` piece by piece with the indexer, collecting every block-boundary checkpoint. */
function index(gz: Buffer, feed = 1000): { out: Buffer; checkpoints: Checkpoint[] } {
  const z = zranAddon();
  const h = z.indexerCreate();
  const state = new Float64Array(6);
  const out: Buffer[] = [];
  const checkpoints: Checkpoint[] = [];
  let pos = 0;
  let member = 0;
  for (;;) {
    const buf = Buffer.alloc(3000);
    const r = z.indexerStep(h, buf, state);
    assert.ok(r >= 0, `indexerStep returned ${r}`);
    if (r === 1) {
      if (pos >= gz.length) break;
      z.indexerFeed(h, gz.subarray(pos, pos + feed));
      pos += feed;
      continue;
    }
    out.push(buf.subarray(0, state[0]));
    if (r === 2) member++;
    else if (state[3] === 1) {
      const window = Buffer.alloc(32768);
      const n = z.indexerWindow(h, window);
      checkpoints.push({ inOffset: state[1], outOffset: state[2], inLen: 0, outLen: 0, ctxBits: state[4], ctxByte: state[5], window: window.subarray(0, n), member });
    }
  }
  return { out: Buffer.concat(out), checkpoints };
}

test('checkpoints at deflate block boundaries inflate to the same bytes as node:zlib, with and without a bit offset', () => {
  const data = sample(3 << 20);
  const gz = Buffer.concat([gzipSync(data.subarray(0, 2 << 20), { level: 6 }), gzipSync(data.subarray(2 << 20), { level: 9 })]);
  const { out, checkpoints } = index(gz);
  assert.ok(out.equals(data), 'the indexer inflates both members');
  assert.ok(checkpoints.length > 10, `${checkpoints.length} checkpoints`);
  assert.ok(checkpoints.some((c) => c.ctxBits !== 0), 'some boundaries are inside a byte');
  assert.ok(checkpoints.some((c) => c.member === 1 && c.window.length === 0), 'a new member starts with an empty window');
  for (const c of checkpoints) {
    const len = Math.min(100_000, (c.member === 0 ? 2 << 20 : 3 << 20) - c.outOffset);
    if (len <= 0) continue;
    const want = data.subarray(c.outOffset, c.outOffset + len);
    const got = Buffer.alloc(len);
    inflateFromContext(c, gz.subarray(c.inOffset), got);
    assert.ok(got.equals(want), `checkpoint at ${c.inOffset} (bits ${c.ctxBits})`);
  }
});

test('inflateAt: corrupted input, a wrong window or too little input is an error, never silent', () => {
  const data = sample(1 << 20);
  const gz = gzipSync(data);
  const { checkpoints } = index(gz, 65536);
  const c = checkpoints.find((x) => x.window.length === 32768 && x.ctxBits !== 0) ?? checkpoints[checkpoints.length - 1];
  const len = Math.min(50_000, data.length - c.outOffset);
  const out = Buffer.alloc(len);
  assert.throws(() => inflateFromContext(c, gz.subarray(c.inOffset, c.inOffset + 10), out), { code: 'ERR_STORAGE_DECOMPRESS' });
  // Garbage instead of deflate: either an error or bytes that are not the data (the chunk digest catches those).
  const junk = Buffer.alloc(len);
  try {
    inflateFromContext(c, randomBytes(len), junk);
    assert.ok(!junk.equals(data.subarray(c.outOffset, c.outOffset + len)));
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'ERR_STORAGE_DECOMPRESS');
  }
  assert.throws(() => zranAddon().inflateAt(gz, 9, 0, Buffer.alloc(0), out), TypeError);
  assert.throws(() => zranAddon().inflateAt(gz, 0, 0, Buffer.alloc(40000), out), TypeError);
  assert.throws(() => zranAddon().indexerStep({}, out, new Float64Array(6)), TypeError);
  assert.equal(gunzipSync(gz).length, data.length);
});

test('the indexer refuses data that is not gzip', () => {
  const z = zranAddon();
  const h = z.indexerCreate();
  z.indexerFeed(h, Buffer.from('this is not a gzip stream at all, not even close'));
  assert.equal(z.indexerStep(h, Buffer.alloc(100), new Float64Array(6)), -1);
});

test('the context table round-trips; windows out of range and bit counts over 7 are refused', () => {
  const ctxs: ZranContext[] = [
    { inOffset: 10, outOffset: 0, inLen: 1000, outLen: 5000, ctxByte: 0, ctxBits: 0, window: Buffer.alloc(0) },
    { inOffset: 2 ** 33, outOffset: 2 ** 34, inLen: 7, outLen: 9, ctxByte: 0xab, ctxBits: 5, window: randomBytes(32768) },
  ];
  const buf = encodeZranTable(ctxs);
  assert.equal(buf.length, 2 * ZRAN_CONTEXT_SIZE + 32768);
  assert.deepEqual(decodeZranTable(buf, 2), ctxs);
  assert.throws(() => decodeZranTable(buf.subarray(0, buf.length - 1), 2), { code: 'ERR_STORAGE_BAD_CHUNK' });
  assert.throws(() => decodeZranTable(buf, 1000), { code: 'ERR_STORAGE_BAD_CHUNK' });
  const hostile = Buffer.from(buf);
  hostile[ZRAN_CONTEXT_SIZE + 37] = 8;
  assert.throws(() => decodeZranTable(hostile, 2), { code: 'ERR_STORAGE_BAD_CHUNK' });
});
