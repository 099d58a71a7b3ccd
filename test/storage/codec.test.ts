import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import zstd from 'zstd-napi/binding.js';
import { compress, decompress, decompressMetadata, MAX_CHUNK_SIZE } from '../../src/storage/codec.js';
import type { Compressor } from '../../src/storage/types.js';
import { compressible } from './helpers.js';

const COMPRESSORS: Compressor[] = ['none', 'lz4_block', 'zstd', 'gzip'];

/** An LZ4 block decoder written from the block format spec, independent of liblz4. */
function referenceLz4Decode(src: Buffer): Buffer {
  const out: number[] = [];
  let i = 0;
  for (;;) {
    const token = src[i++];
    let lit = token >> 4;
    if (lit === 15) for (let b = 255; b === 255; lit += b) b = src[i++];
    for (let k = 0; k < lit; k++) out.push(src[i++]);
    if (i >= src.length) break;
    const offset = src[i] | (src[i + 1] << 8);
    i += 2;
    let len = token & 15;
    if (len === 15) for (let b = 255; b === 255; len += b) b = src[i++];
    len += 4;
    const from = out.length - offset;
    for (let k = 0; k < len; k++) out.push(out[from + k]);
  }
  return Buffer.from(out);
}

function expectDecompressError(fn: () => unknown): void {
  assert.throws(fn, (err: NodeJS.ErrnoException) => err.code === 'ERR_STORAGE_DECOMPRESS');
}

test('every compressor round-trips compressible data and stores random data raw', () => {
  for (const c of COMPRESSORS) {
    for (const size of [1, 4096, 100_000, 1 << 20]) {
      const plain = compressible(size, size);
      const packed = compress(c, plain);
      if (c === 'none' || size === 1) {
        assert.equal(packed.compressed, false, `${c} ${size}`);
        assert.equal(packed.data, plain);
      } else {
        assert.equal(packed.compressed, true, `${c} ${size}`);
        assert.ok(packed.data.length < plain.length);
        assert.deepEqual(decompress(c, packed.data, size), plain);
        const out = Buffer.alloc(size + 100, 0xee);
        const view = decompress(c, packed.data, size, out);
        assert.equal(view.buffer, out.buffer, 'decoded into the caller buffer');
        assert.deepEqual(view, plain);
        assert.equal(out[size], 0xee, 'nothing written past the expected size');
      }
      const random = randomBytes(size);
      const r = compress(c, random);
      assert.equal(r.compressed, false, `random data is stored raw by ${c}`);
      assert.equal(r.data, random);
      assert.deepEqual(decompress('none', r.data, size), random);
    }
  }
});

test('lz4_block decodes a block built by hand from the LZ4 block spec (no size prefix)', () => {
  // "abcd", then a 12-byte overlapping match at distance 4, then the 5 final literals.
  const small = Buffer.from([0x48, ...Buffer.from('abcd'), 0x04, 0x00, 0x50, ...Buffer.from('efghi')]);
  assert.equal(decompress('lz4_block', small, 21).toString(), 'abcdabcdabcdabcdefghi');
  // Length extension bytes: 300 literals (15 + 255 + 30), a 300-byte match (4 + 15 + 255 + 26).
  const lits = randomBytes(300);
  const long = Buffer.concat([
    Buffer.from([0xff, 0xff, 0x1e]),
    lits,
    Buffer.from([0x2c, 0x01, 0xff, 0x1a]),
    Buffer.from([0x50]),
    Buffer.from('tail!'),
  ]);
  assert.deepEqual(decompress('lz4_block', long, 605), Buffer.concat([lits, lits, Buffer.from('tail!')]));
  // And the other way: what compress() emits is a bare block the spec decoder reads.
  const plain = compressible(200_000, 7);
  const packed = compress('lz4_block', plain);
  assert.deepEqual(referenceLz4Decode(packed.data), plain);
});

test("decoding into the caller's buffer writes the chunk's bytes there and nothing past them", () => {
  const plain = compressible(100_000, 5);
  for (const c of COMPRESSORS) {
    const packed = compress(c, plain).data;
    const out = Buffer.alloc(plain.length + 64, 0xee);
    const got = decompress(c, packed, plain.length, out);
    assert.equal(got.buffer, out.buffer, `${c}: decoded in place`);
    assert.deepEqual(got, plain);
    assert.ok(out.subarray(plain.length).every((b) => b === 0xee), `${c}: bytes past the chunk untouched`);
    // A block that decodes to more than the expected size fails, and still writes nothing past it.
    const short = Buffer.alloc(plain.length - 1 + 64, 0xee);
    if (c !== 'none') expectDecompressError(() => decompress(c, packed, plain.length - 1, short));
    assert.ok(short.subarray(plain.length - 1).every((b) => b === 0xee), `${c}: a refused block stays within its size`);
  }
});

test('zstd output is one frame with its content size; gzip output is one member', () => {
  const plain = compressible(300_000, 3);
  const z = compress('zstd', plain).data;
  assert.deepEqual([...z.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
  assert.equal(zstd.getFrameContentSize(z), plain.length);
  assert.equal(zstd.findFrameCompressedSize(z), z.length);
  const g = compress('gzip', plain).data;
  assert.deepEqual([...g.subarray(0, 2)], [0x1f, 0x8b]);
});

test('corrupt, truncated, wrong-size and trailing-garbage input is ERR_STORAGE_DECOMPRESS', () => {
  const plain = compressible(64 * 1024, 11);
  for (const c of ['lz4_block', 'zstd', 'gzip'] as const) {
    const packed = compress(c, plain).data;
    expectDecompressError(() => decompress(c, packed.subarray(0, packed.length >> 1), plain.length));
    expectDecompressError(() => decompress(c, packed, plain.length - 1));
    expectDecompressError(() => decompress(c, packed, plain.length + 1));
    expectDecompressError(() => decompress(c, Buffer.alloc(0), plain.length));
    if (c !== 'lz4_block') expectDecompressError(() => decompress(c, Buffer.concat([packed, Buffer.from('junk')]), plain.length));
    for (let seed = 0; seed < 50; seed++) {
      const bad = Buffer.from(packed);
      for (let k = 0; k < 8; k++) bad[(seed * 7919 + k * 104729) % bad.length] ^= 0x5a;
      try {
        const out = decompress(c, bad, plain.length);
        // A flip inside literals can still decode; it must then have the expected size.
        assert.equal(out.length, plain.length);
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ERR_STORAGE_DECOMPRESS');
      }
    }
  }
  expectDecompressError(() => decompress('none', plain, plain.length - 1));
  expectDecompressError(() => decompress('zstd', compress('zstd', plain).data, 0x2000000));
});

test('decompression bombs fail without allocating their claimed size', () => {
  const before = process.memoryUsage().rss;
  // zstd: 8192 RLE blocks of 128 KiB = 1 GiB from 32 KiB of input.
  const blocks: number[] = [];
  for (let i = 0; i < 8192; i++) {
    const h = (i === 8191 ? 1 : 0) | (1 << 1) | (131072 << 3);
    blocks.push(h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff, 0x61);
  }
  const zbomb = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38, ...blocks]);
  expectDecompressError(() => decompress('zstd', zbomb, 1 << 20));
  // lz4: one literal then a match extended by 4 MiB of 0xff length bytes (~1 GiB output).
  const ext = 4 << 20;
  const lbomb = Buffer.alloc(4 + ext + 7, 0xff);
  lbomb.set([0x1f, 0x61, 0x01, 0x00], 0);
  lbomb[4 + ext] = 0x00; // ends the length extension
  lbomb[5 + ext] = 0x50; // final sequence: 5 literals
  expectDecompressError(() => decompress('lz4_block', lbomb, 4096));
  // gzip: 32 MiB of zeros squeezed to ~32 KiB, expected to be 1 MiB.
  expectDecompressError(() => decompress('gzip', gzipSync(Buffer.alloc(32 << 20)), 1 << 20));
  const grew = process.memoryUsage().rss - before;
  assert.ok(grew < 256 << 20, `rss grew by ${grew} bytes`);
  expectDecompressError(() => decompress('zstd', Buffer.alloc(10), -1));
  expectDecompressError(() => decompress('zstd', Buffer.alloc(10), 0x1000001));
});

test("blob metadata over 16 MiB (a large layer's zran contexts) decodes within its own limit, chunks do not", () => {
  const meta = Buffer.alloc(MAX_CHUNK_SIZE + 4096, 7);
  meta.write('zran windows', 100);
  const packed = compress('zstd', meta);
  assert.ok(packed.compressed);
  assert.ok(decompressMetadata('zstd', packed.data, meta.length, 256 << 20).equals(meta));
  assert.throws(() => decompress('zstd', packed.data, meta.length), { code: 'ERR_STORAGE_DECOMPRESS' });
  assert.throws(() => decompressMetadata('zstd', packed.data, meta.length, MAX_CHUNK_SIZE), { code: 'ERR_STORAGE_DECOMPRESS' });
  assert.throws(() => decompressMetadata('zstd', packed.data, meta.length - 1, 256 << 20), { code: 'ERR_STORAGE_DECOMPRESS' });
});
