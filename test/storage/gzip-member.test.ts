// eStargz chunk decoding on its own: the start of a gzip member, whatever its header
// carries (extra field, name, comment, header CRC) and whatever follows it (more data in
// the member, further members), inflates to exactly the chunk's bytes; a short, damaged
// or foreign input is ERR_STORAGE_DECOMPRESS, never wrong bytes of the right length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { inflateMemberPrefix, isStargzBlob } from '../../src/storage/gzip-member.js';
import type { BlobInfo } from '../../src/storage/types.js';

const text = (n: number): Buffer => Buffer.from('eStargz chunk payload, then tar padding and headers\n'.repeat(Math.ceil(n / 52))).subarray(0, n);

/** A gzip member with the optional header fields of RFC 1952 (trailer left out: a prefix read never needs it). */
function member(body: Buffer, fields: { extra?: Buffer; name?: string; comment?: string; hcrc?: boolean }): Buffer {
  const flags = (fields.hcrc ? 0x02 : 0) | (fields.extra ? 0x04 : 0) | (fields.name ? 0x08 : 0) | (fields.comment ? 0x10 : 0);
  const parts: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 0xff])];
  if (fields.extra) parts.push(Buffer.from([fields.extra.length & 0xff, fields.extra.length >> 8]), fields.extra);
  if (fields.name) parts.push(Buffer.from(`${fields.name}\0`, 'latin1'));
  if (fields.comment) parts.push(Buffer.from(`${fields.comment}\0`, 'latin1'));
  if (fields.hcrc) parts.push(Buffer.from([0x12, 0x34]));
  parts.push(deflateRawSync(body));
  return Buffer.concat(parts);
}

test('the first bytes of a member come out exactly, past longer members and following ones', () => {
  const chunk = text(300_000);
  const tail = randomBytes(5000);
  const next = gzipSync(randomBytes(1000));
  // One member holding the chunk and what the writer put after it, then the next member.
  const stored = Buffer.concat([gzipSync(Buffer.concat([chunk, tail])), next]);
  assert.ok(inflateMemberPrefix(stored, chunk.length, 0).equals(chunk));
  // The member's whole payload, and a member that is the chunk alone.
  assert.ok(inflateMemberPrefix(gzipSync(chunk), chunk.length, 0).equals(chunk));
  for (const fields of [{ extra: Buffer.from('SG\x16\x00' + '0'.repeat(16) + 'STARGZ', 'latin1') }, { name: 'file.txt' }, { comment: 'c', hcrc: true }, { extra: Buffer.alloc(0), name: 'n', comment: 'x', hcrc: true }]) {
    assert.ok(inflateMemberPrefix(member(chunk, fields), 4096, 10).equals(chunk.subarray(0, 4096)), JSON.stringify(Object.keys(fields)));
  }
});

test('short, damaged and foreign input is an error, never wrong bytes', () => {
  const chunk = text(100_000);
  const gz = gzipSync(chunk);
  const fails = (stored: Buffer, size: number, detail: RegExp): void =>
    assert.throws(() => inflateMemberPrefix(stored, size, 1234), (e: Error & { code?: string }) => e.code === 'ERR_STORAGE_DECOMPRESS' && /offset 1234/.test(e.message) && detail.test(e.message));
  fails(gz.subarray(0, gz.length >> 1), chunk.length, /of 100000 bytes/);
  fails(gz, chunk.length + 1, /100000 of 100001 bytes/);
  fails(Buffer.from('not gzip at all'), 10, /no gzip header/);
  fails(Buffer.from([0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 0xff, 0xff]), 10, /truncated header/);
  const bad = Buffer.from(gz);
  bad[10] = 0xff; // the first deflate block header: reserved block type 3
  fails(bad, chunk.length, /invalid deflate data/);
});

test('a blob is read as eStargz when it is gzip without the v2 chunk-info array or zran', () => {
  const blob = (compressor: BlobInfo['compressor'], features: number): BlobInfo => ({ compressor, features }) as BlobInfo;
  assert.equal(isStargzBlob(blob('gzip', 0x4000_0001)), true);
  assert.equal(isStargzBlob(blob('gzip', 0x4000_0001 | 0x04 | 0x08 | 0x10)), false, 'targz-ref (zran)');
  assert.equal(isStargzBlob(blob('zstd', 0x4000_0001)), false);
});
