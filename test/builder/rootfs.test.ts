// A real root filesystem (Debian bookworm minbase, ~6,800 entries, ~200 MB) round-trips
// exactly: built from the directory and from a GNU tar layer of it, mounted by the Linux
// kernel, and unpacked by `nydus-image unpack` from a compressed image.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isRoot, need } from '../helpers/env.js';
import { runCommand } from '../helpers/run.js';
import { compareTrees } from './tree-helpers.js';
import { create, kernelMount, scratch, unpackTo } from './image-helpers.js';
import { ensureRootfs } from './rootfs.js';

const work = scratch('rootfs');
after(() => work.cleanup());
let rootfs: { dir?: string; reason?: string } = {};
before(async () => {
  if (isRoot()) rootfs = await ensureRootfs();
});

test('rootfs directory -> v6 (no compression) -> kernel mount: identical', async (t) => {
  if (!need(t, rootfs.dir !== undefined, rootfs.reason ?? 'needs root')) return;
  const built = await create(rootfs.dir as string, join(work.dir, 'dir-v6'), ['--compressor', 'none']);
  const m = await kernelMount(built.bootstrap, built.blobDir, join(work.dir, 'dir-v6-mnt'));
  try {
    assert.deepEqual(compareTrees(rootfs.dir as string, m.dir, { ignoreRootMtime: true }), []);
  } finally {
    await m.close();
  }
});

test('rootfs as an OCI tar layer -> v6 -> kernel mount: identical', async (t) => {
  if (!need(t, rootfs.dir !== undefined, rootfs.reason ?? 'needs root')) return;
  const tar = join(work.dir, 'rootfs.tar');
  const r = await runCommand('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-cf', tar, '-C', rootfs.dir as string, '.']);
  assert.equal(r.code, 0, r.stderr);
  const built = await create(tar, join(work.dir, 'tar-v6'), ['--type', 'tar-rafs', '--compressor', 'none']);
  const m = await kernelMount(built.bootstrap, built.blobDir, join(work.dir, 'tar-v6-mnt'));
  try {
    // The tar carries the root directory itself ("./"), mtime included.
    assert.deepEqual(compareTrees(rootfs.dir as string, m.dir), []);
  } finally {
    await m.close();
  }
});

for (const version of ['5', '6']) {
  test(`rootfs -> v${version} zstd -> unpack -> GNU tar: identical`, async (t) => {
    if (!need(t, rootfs.dir !== undefined, rootfs.reason ?? 'needs root')) return;
    const built = await create(rootfs.dir as string, join(work.dir, `zstd-v${version}`), ['--fs-version', version]);
    assert.ok(built.json.dedup.unique_chunks > 4000);
    const dest = join(work.dir, `zstd-v${version}-out`);
    await unpackTo(built.bootstrap, built.blobDir, dest);
    assert.deepEqual(compareTrees(rootfs.dir as string, dest, { ignoreRootMtime: true }), []);
  });
}
