// The upstream fixtures rebuilt from their unpacked trees. v5 (sha256, no compression,
// repeatable): the data blob is byte-identical (same blob id) and the bootstrap too,
// except two fields where nydus-image 2.2 and HEAD differ (docs/format.md §8: the root
// counted in s_inodes_count, the CAP_TAR_TOC blob feature). v6 (zstd, blob-toc): the
// bootstrap matches byte for byte outside what depends on zstd's exact output and on
// HEAD's layout choices (blob id, sizes, ToC digest, device mapping, root i_ino).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { haveFixtures, need, V5_FIXTURE, V6_FIXTURE, FIXTURES_DIR, isRoot } from '../helpers/env.js';
import { runCommand } from '../helpers/run.js';
import { openBootstrap, walk } from '../../src/rafs/index.js';
import { decodeV5ExtBlobEntry, decodeV5Superblock } from '../../src/rafs/layout/v5.js';
import { encodeCiV1, encodeMetaHeader } from '../../src/builder/blob-writer.js';
import { reverseTarHeader } from '../../src/builder/blob-sections.js';
import { compareTrees } from './tree-helpers.js';
import { create, kernelMount, scratch, unpackTo } from './image-helpers.js';

const work = scratch('fixtures');
after(() => work.cleanup());

test('v5 fixture rebuilt: same blob bytes, same bootstrap but for the two 2.2/HEAD fields', async (t) => {
  if (!need(t, haveFixtures() && isRoot(), 'needs the shared fixtures and root')) return;
  const tree = join(work.dir, 'v5-tree');
  await unpackTo(join(V5_FIXTURE, 'bootstrap'), join(V5_FIXTURE, 'blobs'), tree);
  const built = await create(tree, join(work.dir, 'v5'), ['--fs-version', '5', '--compressor', 'none', '--digester', 'sha256', '--repeatable']);
  const blobId = '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00';
  assert.deepEqual(built.json.blobs, [blobId]);
  assert.deepEqual(readFileSync(join(built.blobDir, blobId)), readFileSync(join(V5_FIXTURE, 'blobs', blobId)));

  const ours = readFileSync(built.bootstrap);
  const theirs = readFileSync(join(V5_FIXTURE, 'bootstrap'));
  assert.equal(ours.length, theirs.length);
  const sbOurs = decodeV5Superblock(ours);
  const sbTheirs = decodeV5Superblock(theirs);
  // HEAD counts the root inode, 2.2 did not.
  assert.equal(sbOurs.inodesCount, sbTheirs.inodesCount + 1);
  // Blobs written by nydus-image >= 2.2 carry CAP_TAR_TOC; the fixture predates it.
  const extAt = sbOurs.extendedBlobTableOffset;
  assert.equal(decodeV5ExtBlobEntry(ours, extAt).features, 0x4000_0000);
  assert.equal(decodeV5ExtBlobEntry(theirs, extAt).features, 0);
  const patched = Buffer.from(ours);
  theirs.copy(patched, 24, 24, 32);
  theirs.copy(patched, extAt + 4, extAt + 4, extAt + 8);
  assert.ok(patched.equals(theirs), 'every other byte of the bootstrap is upstream\'s');
});

test('v6 fixture rebuilt with blob-toc: same layout, same chunk digests', async (t) => {
  if (!need(t, haveFixtures() && isRoot(), 'needs the shared fixtures and root')) return;
  const tree = join(work.dir, 'v6-tree');
  await unpackTo(join(V6_FIXTURE, 'bootstrap'), join(V6_FIXTURE, 'blobs'), tree);
  const built = await create(tree, join(work.dir, 'v6'), ['--features', 'blob-toc']);
  const ours = readFileSync(built.bootstrap);
  const theirs = readFileSync(join(V6_FIXTURE, 'bootstrap'));
  assert.equal(ours.length, theirs.length);
  const masked = (b: Buffer): Buffer => {
    const m = Buffer.from(b);
    m.fill(0, 1408, 1408 + 128); // device slot: blob id and mapped_blkaddr (HEAD: 512 KiB alignment)
    m.fill(0, 4096, 4096 + 256); // blob table entry: blob id, compressed size, ToC digest
    m.fill(0, 3 * 4096 + 20, 3 * 4096 + 24); // root i_ino: 0 in 2.2, 1 in HEAD
    for (let e = 16384; e < 16384 + 160; e += 80) m.fill(0, e + 40, e + 56); // chunk table: compressed size/offset
    return m;
  };
  assert.ok(masked(ours).equals(masked(theirs)), 'bootstrap equals upstream outside the zstd-dependent fields');
  const a = await openBootstrap(built.bootstrap);
  const b = await openBootstrap(join(V6_FIXTURE, 'bootstrap'));
  assert.equal(a.blobs[0].features, b.blobs[0].features);
  assert.equal(a.blobs[0].uncompressedSize, b.blobs[0].uncompressedSize);
  assert.equal(a.blobs[0].blobTocSize, b.blobs[0].blobTocSize);
  for (const name of ['lib.rs', 'sync_io.rs']) {
    const ia = a.lookup(a.rootIno, Buffer.from(name)) as number;
    const ib = b.lookup(b.rootIno, Buffer.from(name)) as number;
    assert.equal(ia, ib, `${name} nid`);
    assert.deepEqual(a.fileChunks(ia, 0, 1 << 20).map((c) => c.digest.toString('hex')), b.fileChunks(ib, 0, 1 << 20).map((c) => c.digest.toString('hex')));
  }
  // The blob's tar headers, chunk-info entries and meta header are upstream's byte for byte.
  const blob = readFileSync(join(V6_FIXTURE, 'blobs', b.blobs[0].blobId));
  assert.deepEqual(reverseTarHeader('image.blob', 7802), blob.subarray(7802, 8314));
  assert.deepEqual(reverseTarHeader('rafs.blob.toc', 512), blob.subarray(14042, 14554));
  assert.deepEqual(Buffer.concat([encodeCiV1(0, 4828, 0, 16931), encodeCiV1(4828, 2974, 20480, 13400)]), blob.subarray(8314, 8346));
  assert.deepEqual(encodeMetaHeader(0x7000_0021, 'none', 2, 8314, 32, 32), blob.subarray(8346, 8346 + 4096));
});

test('v6 fixture rebuilt uncompressed: the kernel mount shows the fixture tree', async (t) => {
  if (!need(t, haveFixtures() && isRoot(), 'needs the shared fixtures and root')) return;
  const tree = join(work.dir, 'v6-tree-2');
  await unpackTo(join(V6_FIXTURE, 'bootstrap'), join(V6_FIXTURE, 'blobs'), tree);
  const built = await create(tree, join(work.dir, 'v6-none'), ['--compressor', 'none']);
  const m = await kernelMount(built.bootstrap, built.blobDir, join(work.dir, 'v6-mnt'));
  try {
    assert.deepEqual(compareTrees(tree, m.dir, { ignoreRootMtime: true }), []);
  } finally {
    await m.close();
  }
});

test('all-entry-type.tar: the image holds what GNU tar extracts', async (t) => {
  if (!need(t, haveFixtures() && isRoot(), 'needs the shared fixtures and root')) return;
  const tarFile = join(FIXTURES_DIR, 'tar', 'all-entry-type.tar');
  const ref = join(work.dir, 'aet-ref');
  await runCommand('mkdir', ['-p', ref]);
  const x = await runCommand('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tarFile, '-C', ref]);
  assert.equal(x.code, 0, x.stderr);
  for (const version of ['5', '6']) {
    const built = await create(tarFile, join(work.dir, `aet-v${version}`), ['--type', 'tar-rafs', '--fs-version', version]);
    const sb = await openBootstrap(built.bootstrap);
    const names = [...walk(sb)].map((e) => e.path.toString());
    assert.ok(names.includes('/tar/dir2/symlink1.txt'), names.join(' '));
    const dest = join(work.dir, `aet-v${version}-out`);
    await unpackTo(built.bootstrap, built.blobDir, dest);
    // The tar has no entry for its root: the image's root is the builder's (0755, mtime 0).
    assert.deepEqual(compareTrees(ref, dest, { ignoreRootMtime: true }), []);
  }
});
