// The tar reader against archives GNU tar writes (gnu, posix/PAX and ustar formats), the
// project's own PAX encoder (property-based), and hostile input: bad checksums, truncated
// members, malformed or oversized extended headers, sparse members.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { isRoot, need } from '../helpers/env.js';
import { runCommand } from '../helpers/run.js';
import { TarReader, type TarMember } from '../../src/util/tar-reader.js';
import { encodeTarHeader, padding, tarTrailer, type TarEntry } from '../../src/util/tar-header.js';
import { CAPABILITY_HEX, setXattr } from './tree-helpers.js';
import { scratch } from './image-helpers.js';

const work = scratch('tar-reader');
const src = join(work.dir, 'src');
after(() => work.cleanup());

async function* chunks(buf: Buffer, size = 777): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(buf: Buffer): Promise<{ m: TarMember; data: Buffer }[]> {
  const r = new TarReader(chunks(buf));
  const out: { m: TarMember; data: Buffer }[] = [];
  for (let m = await r.next(); m; m = await r.next()) out.push({ m, data: m.kind === 'file' ? await r.read(m.size) : Buffer.alloc(0) });
  return out;
}

const longDir = 'd'.repeat(120);
const longName = `${longDir}/${'f'.repeat(200)}`;
const nonUtf8 = Buffer.from([0x62, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74]);

before(() => {
  mkdirSync(join(src, longDir), { recursive: true });
  writeFileSync(join(src, longName), 'long');
  writeFileSync(Buffer.concat([Buffer.from(src + '/'), nonUtf8]), 'bytes');
  writeFileSync(join(src, 'caps'), 'c');
  symlinkSync('t'.repeat(150), join(src, 'long-link'));
  linkSync(join(src, 'caps'), join(src, 'hard'));
  if (isRoot()) setXattr(join(src, 'caps'), 'security.capability', CAPABILITY_HEX);
  setXattr(join(src, 'caps'), 'user.bin', '00ff00');
});

for (const format of ['gnu', 'posix', 'ustar']) {
  test(`GNU tar --format=${format}: every member as lstat sees it`, async (t) => {
    if (!need(t, isRoot(), 'needs root (security.capability)')) return;
    const file = join(work.dir, `${format}.tar`);
    const args = ['--format', format, '--numeric-owner', '-cf', file, '-C', src, '.'];
    if (format === 'posix') args.unshift('--xattrs', '--xattrs-include=*');
    const r = await runCommand('tar', args);
    // ustar cannot hold a 200-byte file name: tar skips that member and fails.
    if (format !== 'ustar') assert.equal(r.code, 0, r.stderr);
    const members = await readAll(readFileSync(file));
    const byPath = new Map(members.map((x) => [x.m.path.toString('latin1').replace(/^\.\/?/, '').replace(/\/$/, ''), x]));
    const expectPaths = format === 'ustar' ? ['caps', 'hard'] : ['', longDir, longName, 'caps', 'hard', 'long-link', nonUtf8.toString('latin1')];
    for (const p of expectPaths) assert.ok(byPath.has(p), `${format}: member ${JSON.stringify(p)} in ${[...byPath.keys()].join(' ')}`);
    for (const [p, { m, data }] of byPath) {
      const st = lstatSync(Buffer.concat([Buffer.from(src + '/'), Buffer.from(p, 'latin1')]));
      assert.equal(m.mode, st.mode & 0o7777, `${p} mode`);
      assert.equal(m.mtime, Math.floor(st.mtimeMs / 1000), `${p} mtime`);
      if (m.kind === 'file') assert.deepEqual(data, readFileSync(Buffer.concat([Buffer.from(src + '/'), Buffer.from(p, 'latin1')])));
      // ustar holds at most 100 bytes of link target (GNU tar truncates with a warning).
      if (m.kind === 'symlink' && format !== 'ustar') assert.equal(m.linkname.toString(), readlinkSync(join(src, p)));
    }
    const hard = byPath.get('hard') ?? byPath.get('caps');
    assert.ok(members.some((x) => x.m.kind === 'hardlink'), `${format}: a hard link member`);
    if (format === 'posix') {
      const caps = (byPath.get('caps')?.m.kind === 'file' ? byPath.get('caps') : hard)!.m;
      const xs = Object.fromEntries(caps.xattrs.map(([n, v]) => [n.toString(), v.toString('hex')]));
      assert.equal(xs['security.capability'], CAPABILITY_HEX);
      assert.equal(xs['user.bin'], '00ff00');
      // PAX mtimes carry nanoseconds.
      const st = lstatSync(join(src, 'caps'), { bigint: true });
      const c = byPath.get('caps')!.m;
      assert.equal(BigInt(c.mtime) * 1_000_000_000n + BigInt(c.mtimeNsec), st.mtimeNs);
    }
  });
}

const entryArb = fc.record({
  kind: fc.constantFrom('file', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo') as fc.Arbitrary<TarEntry['kind']>,
  path: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a.map((b) => (b === 0 || b === 0x2f ? 0x61 : b)))),
  mode: fc.integer({ min: 0, max: 0o7777 }),
  uid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  gid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  size: fc.integer({ min: 0, max: 3000 }),
  mtime: fc.integer({ min: 0, max: 2 ** 34 }),
  mtimeNsec: fc.integer({ min: 0, max: 999_999_999 }),
  linkname: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => Buffer.from(a.map((b) => (b === 0 ? 0x62 : b)))),
  devmajor: fc.integer({ min: 0, max: 4095 }),
  devminor: fc.integer({ min: 0, max: 0xfffff }),
  xattrs: fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 20 }).map((s) => Buffer.from(`user.${s.replace(/[=\0]/g, 'x')}`)), fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a))), { maxLength: 3 }),
});

test('members written by the PAX encoder read back field for field', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(entryArb, { minLength: 1, maxLength: 6 }), async (entries) => {
      const parts: Buffer[] = [];
      for (const e of entries) {
        const size = e.kind === 'file' ? e.size : 0;
        const entry: TarEntry = { ...e, size, linkname: e.kind === 'symlink' || e.kind === 'hardlink' ? e.linkname : undefined };
        parts.push(encodeTarHeader(entry), Buffer.alloc(size, 0x5a), Buffer.alloc(padding(size)));
      }
      parts.push(tarTrailer());
      const got = await readAll(Buffer.concat(parts));
      assert.equal(got.length, entries.length);
      got.forEach(({ m, data }, i) => {
        const e = entries[i];
        assert.equal(m.kind, e.kind);
        const path = e.kind === 'dir' ? Buffer.concat([e.path, Buffer.from('/')]) : e.path;
        assert.deepEqual(m.path, path);
        assert.equal(m.mode, e.mode);
        assert.equal(m.uid, e.uid);
        assert.equal(m.gid, e.gid);
        assert.equal(m.mtime, e.mtime);
        assert.equal(m.mtimeNsec, e.mtimeNsec);
        if (e.kind === 'file') assert.deepEqual(data, Buffer.alloc(e.size, 0x5a));
        if (e.kind === 'symlink' || e.kind === 'hardlink') assert.deepEqual(m.linkname, e.linkname);
        if (e.kind === 'char' || e.kind === 'block') assert.deepEqual([m.devmajor, m.devminor], [e.devmajor, e.devminor]);
        assert.deepEqual(m.xattrs.map(([n, v]) => [n.toString('hex'), v.toString('hex')]), e.xattrs.map(([n, v]) => [n.toString('hex'), v.toString('hex')]));
      });
    }),
    { numRuns: 150 },
  );
});

function header(fields: { name?: string; size?: number; type?: string; sizeField?: Buffer }): Buffer {
  const h = Buffer.alloc(512);
  h.write(fields.name ?? 'file', 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  if (fields.sizeField) fields.sizeField.copy(h, 124);
  else h.write((fields.size ?? 0).toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(fields.type ?? '0', 156);
  h.write('ustar\u000000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

test('GNU base-256 sizes are read', async () => {
  const sizeField = Buffer.alloc(12);
  sizeField[0] = 0x80;
  sizeField.writeUInt32BE(700, 8);
  const tar = Buffer.concat([header({ sizeField }), Buffer.alloc(700, 1), Buffer.alloc(padding(700)), tarTrailer()]);
  const [x] = await readAll(tar);
  assert.equal(x.m.size, 700);
  assert.deepEqual(x.data, Buffer.alloc(700, 1));
});

test('hostile archives are refused with clear errors', async () => {
  const bad = async (tar: Buffer, pattern: RegExp): Promise<void> => {
    await assert.rejects(readAll(tar), (err: Error & { code?: string }) => err.code === 'ERR_BUILD_SOURCE' && pattern.test(err.message));
  };
  const corrupt = header({ size: 3 });
  corrupt[0] ^= 1;
  await bad(Buffer.concat([corrupt, Buffer.alloc(512)]), /checksum mismatch/);
  await bad(Buffer.concat([header({ size: 5000 }), Buffer.alloc(100)]), /ends inside a member/);
  await bad(header({ size: 10 }).subarray(0, 300), /truncated header/);
  await bad(Buffer.concat([header({ type: 'x', size: 16 }), Buffer.from('999999 path=x\n').subarray(0, 16), Buffer.alloc(496), header({})]), /malformed PAX/);
  await bad(Buffer.concat([header({ type: 'x', size: 2 ** 40 })]), /too large/);
  await bad(Buffer.concat([header({ type: 'S', size: 0 }), tarTrailer()]), /sparse member .* not supported/);
  await bad(Buffer.concat([header({ type: 'Z' }), tarTrailer()]), /unsupported type/);
  const negative = Buffer.alloc(12, 0xff);
  await bad(Buffer.concat([header({ sizeField: negative }), tarTrailer()]), /negative size/);
});
