// ImageFs without a kernel: attributes as upstream Rafs reports them, reads checked
// against the fixtures' own md5 list and against synthetic files with holes and a
// 5 GiB sparse file, xattrs on and off, SEEK_DATA/SEEK_HOLE, statfs, and a corrupted
// blob that fails the affected file with EIO while the others still read right.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toErrno } from '../../src/errors.js';
import { walk } from '../../src/rafs/index.js';
import { haveFixtures, need } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';
import { readTreeJson, V5_BLOB_ID, V5_BLOBS, V5_BOOTSTRAP, V6_BLOBS, V6_BOOTSTRAP } from '../rafs/helpers/fixtures.js';
import { ListSink, openImage, tempDir, writeSynthV5, type OpenedImage } from './helpers.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

async function readAll(img: OpenedImage, ino: number, size: number, step: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let off = 0; off < size; off += step) parts.push(Buffer.from(await img.fs.read(ino, off, step)));
  return Buffer.concat(parts);
}

test('v5 fixture: attributes follow upstream Rafs (uid/gid, root mode, mtime 0), every file matches its md5', async (t) => {
  if (!need(t, haveFixtures(), 'fixtures missing')) return;
  const img = await openImage(V5_BOOTSTRAP, V5_BLOBS);
  t.after(() => img.close());
  const { md5 } = readTreeJson();
  const sb = img.fs.sb;
  assert.equal(sb.explicitUidGid, false);
  let files = 0;
  for (const e of walk(sb)) {
    const a = img.fs.attr(e.ino, 99);
    assert.equal(a.ino, 99);
    assert.deepEqual([a.uid, a.gid], [4242, 4343], `${e.path} reports the daemon's ids when the image has none`);
    assert.equal(a.mtime, e.attr.mtime === 0 ? 1_700_000_000 : e.attr.mtime);
    if (e.ino === sb.rootIno) assert.equal(a.mode & 0o777, 0o755, 'root permissions are forced to 0755');
    else assert.equal(a.mode, e.attr.mode);
    if ((e.attr.mode & S_IFMT) !== S_IFREG) continue;
    // Odd step sizes cross chunk boundaries at every possible phase.
    const data = await readAll(img, e.ino, e.attr.size, e.attr.size > MiB ? 300_007 : 4096);
    const want = md5.get(e.path.toString());
    if (want === undefined) continue;
    assert.equal(createHash('md5').update(data).digest('hex'), want, e.path.toString());
    files++;
  }
  assert.ok(files >= 20, `checked ${files} files`);
});

test('v6 fixture: explicit uid/gid, digests validated on every chunk, reads past EOF are short or empty', async (t) => {
  if (!need(t, haveFixtures(), 'fixtures missing')) return;
  const img = await openImage(V6_BOOTSTRAP, V6_BLOBS, { rafs: { validate: true } });
  t.after(() => img.close());
  const sb = img.fs.sb;
  const lib = sb.lookup(sb.rootIno, Buffer.from('lib.rs'))!;
  const a = img.fs.attr(lib, 5);
  assert.equal(a.size, 16931);
  assert.equal(a.uid, 0);
  // The root as the kernel's erofs shows it: the recorded mtime (0 here), not the start time.
  const root = img.fs.attr(sb.rootIno, 1);
  assert.equal(sb.getAttr(sb.rootIno).mtime, 0);
  assert.equal(root.mtime, 0);
  assert.equal(root.mtimeNsec, 0);
  const all = await readAll(img, lib, a.size, 1000);
  assert.equal(all.length, 16931);
  assert.match(all.toString('utf8', 0, 200), /[a-z]/);
  assert.equal((await img.fs.read(lib, 16931 - 10, 4096)).length, 10);
  assert.equal((await img.fs.read(lib, 16931, 4096)).length, 0);
  assert.equal((await img.fs.read(lib, 10 * GiB, 4096)).length, 0);
  await assert.rejects(Promise.resolve().then(() => img.fs.read(sb.rootIno, 0, 10)), (e: unknown) => toErrno(e) === 21, 'EISDIR');
  const st = img.fs.statfs();
  assert.deepEqual(st, { blocks: 0, bfree: 0, bavail: 0, files: Number(sb.superblockJson().inodes_count), ffree: 0, bsize: 512, namelen: 255, frsize: 0 });
});

test('readdir: ".", "..", then entries with content cursors that resume anywhere', async (t) => {
  if (!need(t, haveFixtures(), 'fixtures missing')) return;
  const img = await openImage(V5_BOOTSTRAP, V5_BLOBS);
  t.after(() => img.close());
  const sb = img.fs.sb;
  const ids = { self: 1, parent: 1, nodeOf: (i: number) => 1000 + i };
  const all = new ListSink(true);
  img.fs.readdir(sb.rootIno, 0, all, ids);
  assert.deepEqual(all.entries.map((e) => e.name), ['.', '..', 'hardlink-test', 'normal-file-test', 'symlink-test']);
  assert.deepEqual(all.entries.map((e) => e.next), [1, 2, 3, 4, 5]);
  assert.equal(all.entries[2].ino, 1000 + sb.lookup(sb.rootIno, Buffer.from('hardlink-test'))!);
  assert.equal(all.entries[2].attr?.ino, all.entries[2].ino, 'plus entries carry attributes under the node id');
  for (let cut = 0; cut < all.entries.length; cut++) {
    const page = new ListSink(false, 1);
    img.fs.readdir(sb.rootIno, all.entries[cut].next - 1, page, ids);
    assert.equal(page.entries[0].name, all.entries[cut].name, `resume at cursor ${all.entries[cut].next - 1}`);
  }
});

test('synthetic image: holes, a 5 GiB sparse file across the 4 GiB line, hard links, lseek', async (t) => {
  const big = 5 * GiB + 12345;
  const lastChunk = Math.floor(big / MiB);
  const dataChunks = new Set([0, 4095, 4096, lastChunk]);
  const holes: number[] = [];
  for (let k = 0; k <= lastChunk; k++) if (!dataChunks.has(k)) holes.push(k);
  const synth = writeSynthV5({
    name: '',
    type: 'dir',
    children: [
      { name: 'big.img', type: 'file', size: big, holes },
      { name: 'holey', type: 'file', size: 3 * MiB + 77, holes: [1] },
      { name: 'a', type: 'file', size: 5000, link: 'h' },
      { name: 'b', type: 'file', size: 5000, link: 'h' },
    ],
  });
  t.after(() => synth.close());
  const img = await openImage(synth.bootstrap, synth.blobDir);
  t.after(() => img.close());
  const sb = img.fs.sb;
  const ino = (n: string) => sb.lookup(sb.rootIno, Buffer.from(n))!;
  const cases: [string, number, number][] = [
    ['/big.img', 0, 4096],
    ['/big.img', 4 * GiB - 100, 200],
    ['/big.img', 2 * GiB, 128 * 1024],
    ['/big.img', big - 10, 4096],
    ['/big.img', 4 * GiB + MiB - 3, 6],
    ['/holey', MiB - 5, 10],
    ['/holey', 2 * MiB - 5, MiB],
    ['/holey', 3 * MiB, 1000],
    ['/b', 4000, 2000],
  ];
  for (const [path, off, len] of cases) {
    const got = await img.fs.read(ino(path.slice(1)), off, len);
    assert.ok(got.equals(synth.expected(path, off, len)), `${path} @${off}+${len}`);
  }
  assert.equal(ino('a'), ino('b'), 'hard links share one inode');
  assert.equal(img.fs.attr(ino('a'), 1).nlink, 2);
  assert.equal(img.fs.attr(ino('big.img'), 1).size, big);
  // SEEK_DATA = 3, SEEK_HOLE = 4.
  assert.equal(img.fs.lseek(ino('holey'), 0, 4), MiB, 'first hole');
  assert.equal(img.fs.lseek(ino('holey'), MiB + 5, 3), 2 * MiB, 'next data');
  assert.equal(img.fs.lseek(ino('big.img'), MiB, 3), 4095 * MiB);
  assert.equal(img.fs.lseek(ino('big.img'), 4095 * MiB, 4), 4097 * MiB);
  assert.throws(() => img.fs.lseek(ino('big.img'), big, 3), (e: unknown) => toErrno(e) === 6, 'ENXIO past the end');
});

test('xattrs: served when the image has them; EOPNOTSUPP when neither the image nor enable_xattr asks', async (t) => {
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  const synth = writeSynthV5({
    name: '',
    type: 'dir',
    children: [{ name: 'f', type: 'file', size: 10, xattrs: { 'user.mime': 'text/plain', 'trusted.overlay.opaque': 'y', 'security.capability': cap } }],
  });
  t.after(() => synth.close());
  const img = await openImage(synth.bootstrap, synth.blobDir);
  t.after(() => img.close());
  const f = img.fs.sb.lookup(img.fs.sb.rootIno, Buffer.from('f'))!;
  assert.deepEqual(img.fs.listxattr(f).map(String).sort(), ['security.capability', 'trusted.overlay.opaque', 'user.mime']);
  assert.ok(img.fs.getxattr(f, Buffer.from('security.capability')).equals(cap));
  assert.throws(() => img.fs.getxattr(f, Buffer.from('user.none')), (e: unknown) => toErrno(e) === 61, 'ENODATA');
  if (!haveFixtures()) return;
  const off = await openImage(V5_BOOTSTRAP, V5_BLOBS);
  t.after(() => off.close());
  assert.throws(() => off.fs.listxattr(off.fs.rootIno), (e: unknown) => toErrno(e) === 95, 'EOPNOTSUPP');
  const on = await openImage(V5_BOOTSTRAP, V5_BLOBS, { rafs: { enable_xattr: true } });
  t.after(() => on.close());
  assert.deepEqual(on.fs.listxattr(on.fs.rootIno), []);
});

test('a corrupted blob fails the affected file with EIO (digest_validate) and the others read right', async (t) => {
  if (!need(t, haveFixtures(), 'fixtures missing')) return;
  const dir = tempDir('corrupt');
  const blobs = join(dir, 'blobs');
  mkdirSync(blobs);
  copyFileSync(join(V5_BLOBS, V5_BLOB_ID), join(blobs, V5_BLOB_ID));
  const errors: unknown[] = [];
  const probe = await openImage(V5_BOOTSTRAP, blobs);
  const sb = probe.fs.sb;
  const files = [...walk(sb)].filter((e) => (e.attr.mode & S_IFMT) === S_IFREG && e.attr.size > 0);
  const victim = files.find((e) => e.path.toString().endsWith('layer.tar'))!;
  const victimChunks = sb.fileChunks(victim.ino, 0, victim.attr.size);
  await probe.close();
  const blob = readFileSync(join(blobs, V5_BLOB_ID));
  const at = victimChunks[1].compressedOffset + 100;
  blob[at] ^= 0xff;
  writeFileSync(join(blobs, V5_BLOB_ID), blob);
  const img = await openImage(V5_BOOTSTRAP, blobs, { rafs: { validate: true, batch_size: 0 }, onReadError: (e) => errors.push(e) });
  t.after(async () => {
    await img.close();
    (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
  });
  const { md5 } = readTreeJson();
  const bad = victimChunks[1];
  await assert.rejects(img.fs.read(victim.ino, bad.fileOffset, 4096), (e: unknown) => toErrno(e) === 5 && (e as { code?: string }).code === 'ERR_STORAGE_DIGEST_MISMATCH');
  assert.equal(errors.length, 1, 'the failure reached the error ring hook');
  const shared = (e: (typeof files)[number]) => sb.fileChunks(e.ino, 0, e.attr.size).some((c) => c.compressedOffset === bad.compressedOffset);
  let good = 0;
  for (const e of files) {
    if (e.ino === victim.ino || shared(e)) continue;
    const data = await readAll(img, e.ino, e.attr.size, MiB);
    const want = md5.get(e.path.toString());
    if (want !== undefined) assert.equal(createHash('md5').update(data).digest('hex'), want, e.path.toString());
    good++;
  }
  assert.ok(good > 10);
  const before = victimChunks[0];
  assert.equal((await img.fs.read(victim.ino, before.fileOffset, 4096)).length, 4096, 'other chunks of the same file still read');
});

test("v6: the root's recorded mode is shown as the kernel shows it (no 0755 forcing)", async () => {
  const dir = tempDir('root-mode');
  const src = join(dir, 'src');
  mkdirSync(src, { mode: 0o750 });
  chmodSync(src, 0o750);
  writeFileSync(join(src, 'f'), 'x');
  const blobs = join(dir, 'blobs');
  mkdirSync(blobs);
  const r = await runProgram('nydus-image', ['create', src, '--bootstrap', join(dir, 'boot'), '--blob-dir', blobs]);
  assert.equal(r.code, 0, r.stderr);
  const img = await openImage(join(dir, 'boot'), blobs);
  try {
    assert.equal(img.fs.attr(img.fs.rootIno, 1).mode & 0o7777, 0o750);
  } finally {
    await img.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
