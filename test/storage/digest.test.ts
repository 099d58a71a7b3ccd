import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createHasher, digest, digestMatches } from '../../src/storage/digest.js';

const VECTORS = [
  ['sha256', '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['blake3', '', 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
  ['sha256', 'abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['blake3', 'abc', '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85'],
] as const;

test('known digest vectors', () => {
  for (const [alg, input, hex] of VECTORS) {
    const d = digest(alg, Buffer.from(input));
    assert.equal(d.length, 32);
    assert.equal(d.toString('hex'), hex, `${alg}(${JSON.stringify(input)})`);
  }
});

test('the shared blake3 instance gives independent results call after call', () => {
  const a = randomBytes(100_000);
  const b = randomBytes(3);
  const da = digest('blake3', a);
  const db = digest('blake3', b);
  assert.deepEqual(digest('blake3', a), da);
  assert.deepEqual(digest('blake3', b), db);
  assert.notDeepEqual(da, db);
});

test('incremental hashing equals one-shot hashing for both digesters', async () => {
  const data = randomBytes(1_000_003);
  for (const alg of ['sha256', 'blake3'] as const) {
    const h = await createHasher(alg);
    for (let off = 0; off < data.length; off += 65_537) h.update(data.subarray(off, off + 65_537));
    assert.deepEqual(h.digest(), digest(alg, data), alg);
    // Two hashers in flight do not disturb each other.
    const h1 = await createHasher(alg);
    const h2 = await createHasher(alg);
    h1.update(data.subarray(0, 10));
    h2.update(data.subarray(10, 20));
    h1.update(data.subarray(10, 20));
    assert.deepEqual(h1.digest(), digest(alg, data.subarray(0, 20)));
    assert.deepEqual(h2.digest(), digest(alg, data.subarray(10, 20)));
  }
});

test('digestMatches rejects wrong digests and wrong lengths', () => {
  const data = Buffer.from('chunk');
  const d = digest('sha256', data);
  assert.equal(digestMatches('sha256', data, d), true);
  assert.equal(digestMatches('blake3', data, d), false);
  assert.equal(digestMatches('sha256', data, d.subarray(0, 31)), false);
  const flipped = Buffer.from(d);
  flipped[31] ^= 1;
  assert.equal(digestMatches('sha256', data, flipped), false);
});
