// Directory -> image -> `nydus-image unpack` -> GNU tar -> the same tree, for every
// fs version x compressor x digester: names (long, non-UTF-8), types, modes with
// suid/sgid/sticky, owners, mtimes with nanoseconds, hard links, devices, fifos,
// symlinks, xattrs (binary, security.capability), sparse and multi-chunk files; and a
// directory of 10,000 entries in both versions. Sockets are skipped with a warning.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isRoot, need } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';
import { openBootstrap, validateMetadata } from '../../src/rafs/index.js';
import { compareTrees, makeRichTree } from './tree-helpers.js';
import { create, scratch, unpackTo } from './image-helpers.js';

const work = scratch('roundtrip');
const src = join(work.dir, 'src');
const srcBig = join(work.dir, 'src-big');
after(() => work.cleanup());
before(() => {
  if (!isRoot()) return;
  makeRichTree(src, { socket: true });
  makeRichTree(srcBig, { bigDir: 10_000 });
});

const isSocket = (_p: string, st: { isSocket(): boolean }): boolean => st.isSocket();

for (const version of ['5', '6'] as const) {
  for (const compressor of ['none', 'lz4_block', 'zstd'] as const) {
    for (const digester of ['blake3', 'sha256'] as const) {
      test(`v${version} ${compressor} ${digester}: unpacked image equals the source`, async (t) => {
        if (!need(t, isRoot(), 'needs root (mknod, chown, trusted xattrs)')) return;
        const out = join(work.dir, `v${version}-${compressor}-${digester}`);
        const built = await create(src, out, ['--fs-version', version, '--compressor', compressor, '--digester', digester]);
        assert.match(built.run.stderr, /warning: skipping socket .*\/socket/);
        const sb = await openBootstrap(built.bootstrap);
        assert.equal(sb.version, Number(version));
        assert.equal(sb.compressor, compressor);
        assert.equal(sb.digester, digester);
        assert.equal(sb.explicitUidGid, true);
        const counts = await validateMetadata(sb);
        assert.equal(counts.hardlinks, 2);
        assert.equal(counts.xattrs, 7);
        const check = await runProgram('nydus-image', ['check', built.bootstrap, '--blob-dir', built.blobDir]);
        assert.equal(check.code, 0, check.stderr);
        assert.match(check.stdout, /0 failed/);
        const dest = join(out, 'extracted');
        await unpackTo(built.bootstrap, built.blobDir, dest);
        assert.deepEqual(compareTrees(src, dest, { ignoreRootMtime: true, skip: isSocket }), []);
      });
    }
  }
}

for (const version of ['5', '6']) {
  test(`v${version}: a directory of 10,000 entries round-trips`, async (t) => {
    if (!need(t, isRoot(), 'needs root')) return;
    const out = join(work.dir, `big-v${version}`);
    const built = await create(srcBig, out, ['--fs-version', version]);
    const sb = await openBootstrap(built.bootstrap);
    assert.equal(sb.childCount(sb.lookup(sb.rootIno, Buffer.from('many')) as number), 10_000);
    const dest = join(out, 'extracted');
    await unpackTo(built.bootstrap, built.blobDir, dest);
    assert.deepEqual(compareTrees(srcBig, dest, { ignoreRootMtime: true }), []);
  });
}

test('--repeatable: owners are not recorded and uid/gid read as 0', async (t) => {
  if (!need(t, isRoot(), 'needs root')) return;
  const built = await create(src, join(work.dir, 'repeatable'), ['--repeatable', '--compressor', 'none']);
  const sb = await openBootstrap(built.bootstrap);
  assert.equal(sb.explicitUidGid, false);
  const ino = sb.lookup(sb.rootIno, Buffer.from('private')) as number;
  assert.equal(sb.getAttr(ino).uid, 0);
  const dest = join(work.dir, 'repeatable', 'extracted');
  await unpackTo(built.bootstrap, built.blobDir, dest);
  assert.deepEqual(compareTrees(src, dest, { ignoreRootMtime: true, skip: isSocket, owners: false }), []);
});
