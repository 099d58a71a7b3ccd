// The eStargz builder on small TOCs, without a layer: what the TOC says becomes the
// tree (types, modes, owners, mtimes, xattrs, devices, hard links, chunk offsets and
// digests, the format's own files left out), and a TOC that is malformed or hostile is
// refused with one clear message and no output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEstargzRefImage } from '../../src/builder/estargz-ref.js';
import { openBootstrap, walk } from '../../src/rafs/index.js';
import { scratch } from './image-helpers.js';

const ID = 'ab'.repeat(32);
const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;

async function build(entries: unknown[], dir: string, extra: { blobSize?: number; chunkSize?: number } = {}): Promise<string> {
  const toc = join(dir, 'stargz.index.json');
  writeFileSync(toc, JSON.stringify({ version: 1, entries }));
  const bootstrap = join(dir, 'image.boot');
  await createEstargzRefImage({ source: toc, tocOnly: true, blobId: ID, bootstrap, ...extra });
  return bootstrap;
}

test('a TOC becomes the tree it describes; chunks point at their gzip members', async (t) => {
  const work = scratch('estargz-toc');
  t.after(() => work.cleanup());
  const boot = await build(
    [
      { name: '.no.prefetch.landmark', type: 'reg', size: 1, offset: 10, digest: digest(1), chunkDigest: digest(1) },
      { name: './', type: 'dir', mode: 0o755, modtime: '2024-01-02T03:04:05Z' },
      { name: 'bin/', type: 'dir', mode: 0o755, uid: 1, gid: 2 },
      { name: 'bin/big', type: 'reg', size: 10000, mode: 0o4755, offset: 100, chunkSize: 8192, digest: digest(2), chunkDigest: digest(3), xattrs: { 'user.k': Buffer.from('v').toString('base64') } },
      { name: 'bin/big', type: 'chunk', offset: 900, chunkOffset: 8192, chunkDigest: digest(4) },
      { name: 'bin/link', type: 'hardlink', linkName: 'bin/big' },
      { name: 'bin/sh', type: 'symlink', linkName: 'big', mode: 0o777 },
      { name: 'dev/null', type: 'char', devMajor: 1, devMinor: 3, mode: 0o666 },
      { name: 'empty', type: 'reg', size: 0, mode: 0o600 },
    ],
    work.dir,
    { blobSize: 2000 },
  );
  const sb = await openBootstrap(boot);
  const byPath = new Map([...walk(sb)].map((e) => [e.path.toString(), e]));
  assert.deepEqual([...byPath.keys()].sort(), ['/', '/bin', '/bin/big', '/bin/link', '/bin/sh', '/dev', '/dev/null', '/empty']);
  assert.equal(sb.getAttr(sb.rootIno).mtime, Date.parse('2024-01-02T03:04:05Z') / 1000);
  const big = byPath.get('/bin/big')!;
  assert.equal(big.attr.mode, 0o104755);
  assert.equal(big.attr.nlink, 2);
  assert.equal(byPath.get('/bin/link')!.ino, big.ino);
  assert.equal(sb.getXattr(big.ino, Buffer.from('user.k'))?.toString(), 'v');
  assert.deepEqual([byPath.get('/bin')!.attr.uid, byPath.get('/bin')!.attr.gid], [1, 2]);
  assert.equal(sb.readlink(byPath.get('/bin/sh')!.ino).toString(), 'big');
  assert.equal(byPath.get('/dev/null')!.attr.rdev, (1 << 8) | 3);
  const chunks = sb.fileChunks(big.ino, 0, 10000);
  assert.deepEqual(
    chunks.map((c) => [c.compressedOffset, c.compressedSize, c.fileOffset, c.uncompressedSize, c.digest.toString('hex')]),
    [
      [100, 800, 0, 8192, digest(3).slice(7)],
      [900, 1100, 8192, 1808, digest(4).slice(7)],
    ],
  );
  assert.equal(sb.blobs[0].blobId, ID);
  assert.equal(sb.blobs[0].chunkSize, 8192);
  assert.equal(sb.blobs[0].compressor, 'gzip');
});

test('malformed or hostile TOCs are refused with the reason and nothing is written', async (t) => {
  const work = scratch('estargz-toc-bad');
  t.after(() => work.cleanup());
  const reg = (name: string, extra: Record<string, unknown> = {}) => ({ name, type: 'reg', size: 10, offset: 10, digest: digest(1), chunkDigest: digest(1), ...extra });
  const cases: [unknown[], RegExp][] = [
    [[reg('../escape')], /escapes the root/],
    [[reg('/abs/ok'), { name: 'x', type: 'chunk', offset: 50, chunkOffset: 5, chunkDigest: digest(2) }], /chunk entry "x" comes before its file's reg entry/],
    [[{ name: 'l', type: 'hardlink', linkName: 'missing' }], /hard link "l": target "missing" is not a regular file seen before/],
    [[reg('f', { chunkDigest: 'md5:00' })], /has no sha256 chunkDigest/],
    [[reg('f', { innerOffset: 4 })], /uses innerOffset/],
    [[reg('a'), reg('b')], /two chunks share the gzip member at offset 10/],
    [[reg('f', { size: -1 })], /size -1 is not a non-negative integer/],
    [[{ name: 'f', type: 'socket' }], /unknown type "socket"/],
    [[reg('f', { xattrs: { a: 1 } })], /malformed xattrs/],
    [[{ name: 'd', type: 'dir' }, reg('d/f'), reg('d/f/g', { offset: 20 })], /goes through non-directory/],
  ];
  for (const [entries, message] of cases) {
    await assert.rejects(build(entries, work.dir), (e: Error & { code?: string }) => e.code?.startsWith('ERR_BUILD_') === true && message.test(e.message), String(message));
    assert.ok(!existsSync(join(work.dir, 'image.boot')), `nothing written for ${String(message)}`);
  }
  await assert.rejects(build([reg('f', { size: 0x3000, chunkSize: 0x1000 }), { name: 'f', type: 'chunk', offset: 30, chunkOffset: 0x1000, chunkDigest: digest(2) }], work.dir, { chunkSize: 0x1000 }), /the chunks of "f" do not fit chunk size 0x1000 \(part at 4096 of 8192 bytes/);
});
