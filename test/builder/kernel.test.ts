// The kernel agrees with the builder: a v6 image built with `--compressor none` is an
// EROFS image Linux mounts with its blob attached as a loop device, showing exactly the
// source tree (bytes, modes, owners, nanosecond mtimes, xattrs, hard links, devices);
// other chunk sizes too; a compressed image's metadata mounts the same way; fsck.erofs
// accepts the image; a file larger than 4 GiB reads back at every offset.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, statSync, writeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, need } from '../helpers/env.js';
import { runCommand } from '../helpers/run.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { compareTrees, makeRichTree } from './tree-helpers.js';
import { create, kernelMount, scratch } from './image-helpers.js';

const work = scratch('kernel');
const src = join(work.dir, 'src');
after(() => work.cleanup());
before(() => {
  if (isRoot()) makeRichTree(src, { bigDir: 10_000, socket: true });
});

const isSocket = (_p: string, st: { isSocket(): boolean }): boolean => st.isSocket();

for (const [name, args] of [
  ['blake3, 1 MiB chunks', ['--compressor', 'none']],
  ['sha256, 64 KiB chunks', ['--compressor', 'none', '--digester', 'sha256', '--chunk-size', '0x10000']],
  ['blob-toc, 4 KiB chunks', ['--compressor', 'none', '--features', 'blob-toc', '--chunk-size', '4096']],
] as const) {
  test(`v6 ${name}: the kernel mount shows exactly the source`, async (t) => {
    if (!need(t, isRoot(), 'needs root (losetup, mount)')) return;
    const out = join(work.dir, name.replace(/\W+/g, '-'));
    const built = await create(src, out, [...args]);
    const m = await kernelMount(built.bootstrap, built.blobDir, join(out, 'mnt'));
    try {
      assert.deepEqual(compareTrees(src, m.dir, { ignoreRootMtime: true, skip: isSocket }), []);
      // st_ino is the nid the image records.
      const sb = await openBootstrap(built.bootstrap);
      const nid = sb.lookup(sb.rootIno, Buffer.from('small.txt')) as number;
      assert.equal(statSync(join(m.dir, 'small.txt')).ino, nid);
      assert.equal(statSync(m.dir).ino, sb.rootIno);
    } finally {
      await m.close();
    }
  });
}

test('v6 zstd: the kernel mounts the metadata and agrees on every attribute', async (t) => {
  if (!need(t, isRoot(), 'needs root')) return;
  const out = join(work.dir, 'zstd');
  const built = await create(src, out);
  const m = await kernelMount(built.bootstrap, built.blobDir, join(out, 'mnt'));
  try {
    assert.deepEqual(compareTrees(src, m.dir, { ignoreRootMtime: true, skip: isSocket, content: false }), []);
  } finally {
    await m.close();
  }
});

test('fsck.erofs checks and extracts a v6 image with its blob as device', async (t) => {
  if (!need(t, isRoot(), 'needs root')) return;
  const out = join(work.dir, 'fsck');
  const built = await create(src, out, ['--compressor', 'none']);
  const dest = join(out, 'extracted');
  const r = await runCommand('fsck.erofs', [`--device=${join(built.blobDir, built.json.blobs[0])}`, `--extract=${dest}`, built.bootstrap]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  // fsck.erofs restores names, types and contents (not owners, special mode bits, mtimes,
  // xattrs or hard links by default): compare what it restores.
  const d = compareTrees(src, dest, { skip: isSocket, owners: false }).filter((l) => !/: (mode|mtime|xattrs|nlink|hard link group) /.test(l));
  assert.deepEqual(d, []);
});

test('a sparse file larger than 4 GiB reads back at every offset (kernel, v6)', async (t) => {
  if (!need(t, isRoot(), 'needs root')) return;
  const dir = join(work.dir, 'huge-src');
  mkdirSync(dir);
  const size = 4 * 2 ** 30 + 4099;
  const marks: [number, string][] = [
    [0, 'start'],
    [2 ** 32 - 3, 'across 4 GiB'],
    [2 ** 32 + 1000, 'after 4 GiB'],
    [size - 3, 'end'],
  ];
  const fd = openSync(join(dir, 'huge'), 'w');
  for (const [off, text] of marks) writeSync(fd, Buffer.from(text), 0, Buffer.byteLength(text), off);
  closeSync(fd);
  assert.equal(statSync(join(dir, 'huge')).size, size);
  const out = join(work.dir, 'huge');
  const built = await create(dir, out, ['--compressor', 'none']);
  // Holes are zero chunks: one stored, referenced 4097 times.
  assert.equal(built.json.dedup.chunks, 4097);
  assert.ok(built.json.dedup.unique_chunks <= 6, `unique ${built.json.dedup.unique_chunks}`);
  const m = await kernelMount(built.bootstrap, built.blobDir, join(out, 'mnt'));
  try {
    const f = join(m.dir, 'huge');
    assert.equal(statSync(f).size, size);
    const h = openSync(f, 'r');
    try {
      for (const [off, text] of marks) {
        // The bytes written, with the zero byte before them (a hole) where there is one.
        const from = Math.max(0, off - 1);
        const want = Buffer.concat([Buffer.alloc(off - from), Buffer.from(text)]);
        const buf = Buffer.alloc(want.length);
        assert.equal(readSync(h, buf, 0, buf.length, from), want.length);
        assert.deepEqual(buf, want, `at ${off}`);
      }
    } finally {
      closeSync(h);
    }
  } finally {
    await m.close();
  }
});
