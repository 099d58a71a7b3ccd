// The struct tables of src/rafs/layout: defineStruct refuses a table that cannot be
// right, a table-driven codec encodes and decodes every kind of field, and each decoder
// kept hand-written for the read path reads every field where its table says it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as L from '../../src/rafs/layout/index.js';
import { defineStruct, type StructCodec } from '../../src/rafs/layout/struct.js';

test('defineStruct refuses fields outside the struct or overlapping another', () => {
  const probe = (fields: Record<string, readonly [number, 'u16' | 'u32' | 'u64']>) => () =>
    defineStruct<Record<string, number>>({ name: 'probe', size: 8, fields });
  assert.throws(probe({ a: [0, 'u32'], b: [2, 'u32'] }), { name: 'RangeError', message: 'struct probe: fields a and b overlap' });
  assert.throws(probe({ a: [6, 'u32'] }), { name: 'RangeError', message: 'struct probe: field a [6, +4) is outside its 8 bytes' });
  assert.throws(probe({ a: [-2, 'u16'] }), { name: 'RangeError' });
  assert.doesNotThrow(probe({ a: [0, 'u32'], b: [4, 'u16'], c: [6, 'u16'] }));
});

test('a table-driven codec round-trips every field type and leaves reserved bytes zero', () => {
  interface Probe {
    a: number;
    b: number;
    c: number;
    d: number;
    id: Buffer;
    name: string;
  }
  const codec = defineStruct<Probe>({
    name: 'probe',
    size: 40,
    where: (off) => `probe at ${off}`,
    fields: { a: [0, 'u8'], b: [2, 'u16'], c: [4, 'u32'], d: [8, 'u64'], id: [16, 'bytes:4'], name: [24, 'latin1:8'] },
  });
  const value: Probe = { a: 0xfe, b: 0xbeef, c: 0xdeadbeef, d: 2 ** 53 - 1, id: Buffer.from([1, 2, 3, 4]), name: 'n\xe9' };
  const bytes = codec.encode(value);
  assert.equal(bytes.length, 40);
  assert.equal(bytes.toString('hex'),
    'fe00efbeefbeadde' + 'ffffffffffff1f00' + '0102030400000000' + '6ee9000000000000' + '0000000000000000');
  const at = Buffer.concat([Buffer.alloc(3, 0xff), bytes]);
  const back = codec.decode(at, 3);
  assert.deepEqual(back, value);
  at[3 + 16] = 0x55;
  assert.equal(back.id[0], 1, 'decoded bytes are a copy');
  assert.throws(() => codec.decode(bytes, 1), { code: 'ERR_RAFS_TRUNCATED', message: /^failed to read probe: 40 bytes at offset 1/ });
  at.writeUInt32LE(0x200000, 3 + 12);
  assert.throws(() => codec.decode(at, 3), { code: 'ERR_RAFS_CORRUPT', message: 'failed to decode probe at 3: value at offset 11 exceeds 2^53' });
  assert.throws(() => codec.encode({ ...value, name: 'too long!' }), RangeError);
  assert.throws(() => codec.encode({ ...value, b: 0x10000 }), RangeError);
});

/**
 * `size` random bytes whose 8-byte-aligned words stay below 2^53 (every u64 field of these
 * structs is 8-byte aligned), so that every decoder accepts them.
 */
function bytesFor(size: number): fc.Arbitrary<Buffer> {
  return fc.uint8Array({ minLength: size, maxLength: size }).map((a) => {
    const b = Buffer.from(a);
    for (let i = 7; i < size; i += 8) {
      b[i] = 0;
      b[i - 1] &= 0x1f;
    }
    return b;
  });
}

function agree<T>(what: string, decode: (buf: Buffer, off: number) => T, codec: StructCodec<T>, extra: Partial<T> = {}): void {
  fc.assert(
    fc.property(bytesFor(codec.size), (b) => {
      assert.deepEqual(decode(b, 0), { ...codec.decode(b, 0), ...extra }, what);
    }),
  );
}

test('the hand-written read-path decoders read every field where the table puts it', () => {
  agree('v5 inode', L.decodeV5Inode, L.V5InodeStruct);
  agree('chunk info', L.decodeV5ChunkInfo, L.V5ChunkInfoStruct);
  agree<L.V6Inode>('v6 compact inode', L.decodeV6InodeCompact, L.V6InodeCompactStruct as StructCodec<L.V6Inode>, { mtimeNsec: 0 });
  agree('v6 extended inode', L.decodeV6InodeExtended, L.V6InodeExtendedStruct);
  agree('v6 xattr header', L.decodeV6XattrIbodyHeader, L.V6XattrIbodyHeaderStruct);
  agree('v6 xattr entry', L.decodeV6XattrEntry, L.V6XattrEntryStruct);
});

test('the hand-written decoders report errors as their tables do', () => {
  const inode = Buffer.alloc(L.V5_INODE_SIZE);
  inode.writeUInt32LE(0xffffffff, 68);
  for (const decode of [L.decodeV5Inode, L.V5InodeStruct.decode]) {
    assert.throws(() => decode(inode, 0), { code: 'ERR_RAFS_CORRUPT', message: 'failed to decode v5 inode at offset 0: value at offset 64 exceeds 2^53' });
    assert.throws(() => decode(inode, 1), { code: 'ERR_RAFS_TRUNCATED', message: /^failed to read v5 inode: / });
  }
  const ext = Buffer.alloc(L.V6_INODE_EXTENDED_SIZE);
  ext.writeUInt32LE(0xffffffff, 36);
  for (const decode of [L.decodeV6InodeExtended, L.V6InodeExtendedStruct.decode]) {
    assert.throws(() => decode(ext, 0), { code: 'ERR_RAFS_CORRUPT', message: 'failed to decode v6 inode at offset 0: value at offset 32 exceeds 2^53' });
    assert.throws(() => decode(ext, 8), { code: 'ERR_RAFS_TRUNCATED', message: /^failed to read v6 extended inode: / });
  }
});
