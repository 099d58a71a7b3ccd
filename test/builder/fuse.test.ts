// Directory -> image -> this project's nydusd (FUSE, localfs blobs) -> the same tree, for
// every fs version x compressor x digester; and the real root filesystem through nydusd.
// Reads happen in this process while nydusd serves from its own.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, need } from '../helpers/env.js';
import { compareTrees, makeRichTree } from './tree-helpers.js';
import { create, nydusdMount, scratch } from './image-helpers.js';
import { ensureRootfs } from './rootfs.js';

const work = scratch('fuse');
const src = join(work.dir, 'src');
after(() => work.cleanup());
let rootfs: { dir?: string; reason?: string } = {};
before(async () => {
  if (!isRoot()) return;
  makeRichTree(src, { socket: true });
  rootfs = await ensureRootfs();
});

const isSocket = (_p: string, st: { isSocket(): boolean }): boolean => st.isSocket();
const ready = (): boolean => isRoot() && existsSync('/dev/fuse');

for (const version of ['5', '6'] as const) {
  for (const compressor of ['none', 'lz4_block', 'zstd'] as const) {
    for (const digester of ['blake3', 'sha256'] as const) {
      test(`v${version} ${compressor} ${digester}: nydusd serves exactly the source`, async (t) => {
        if (!need(t, ready(), 'needs root and /dev/fuse')) return;
        const out = join(work.dir, `v${version}-${compressor}-${digester}`);
        const built = await create(src, out, ['--fs-version', version, '--compressor', compressor, '--digester', digester]);
        const m = await nydusdMount(built.bootstrap, built.blobDir, join(out, 'mnt'), join(out, 'state'));
        try {
          assert.deepEqual(compareTrees(src, m.dir, { ignoreRootMtime: true, skip: isSocket }), []);
        } finally {
          await m.close();
        }
      });
    }
  }
}

test('the root filesystem through nydusd (v6 zstd): identical', async (t) => {
  if (!need(t, ready() && rootfs.dir !== undefined, rootfs.reason ?? 'needs root and /dev/fuse')) return;
  const out = join(work.dir, 'rootfs');
  const built = await create(rootfs.dir as string, out);
  const m = await nydusdMount(built.bootstrap, built.blobDir, join(out, 'mnt'), join(out, 'state'));
  try {
    assert.deepEqual(compareTrees(rootfs.dir as string, m.dir, { ignoreRootMtime: true }), []);
  } finally {
    await m.close();
  }
});
