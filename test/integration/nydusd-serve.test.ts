// nydusd serving both fixtures through both transports, compared with `nydus-image
// unpack` extracted by GNU tar: the `find` listing (types, modes, nlink, sizes, link
// targets, mtimes), `stat` of every path, and every file's bytes; hard links share an
// inode; 8 concurrent readers get identical bytes; every write path answers EROFS; a
// synthetic image's xattrs through getfattr; SIGTERM unmounts and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FuseImpl } from '../../src/fuse/transport.js';
import { findMount } from '../../src/fuse/mount-linux.js';
import { V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { run, runOk, sh } from '../conformance/child.js';
import { configJson, writeSynthV5 } from '../fs/helpers.js';
import { Nydusd, canMount, expectedTree, workspace } from './nydusd-proc.js';

// Directory sizes differ between an image and the disk tar extracts to; the root's
// mtime is the daemon's start time when the image has none (upstream).
const FIND_FMT = '%P|%y|%m|%n|%U|%G|%l|%s|%TY%Tm%Td%TH%TM%TS\\n';

function listing(text: string): string[] {
  return text
    .trim()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('|'))
    .map((l) => {
      const f = l.split('|');
      if (f[1] === 'd') f[7] = '-';
      f[8] = f[8].slice(0, 14); // whole seconds: fuse-native carries milliseconds only
      return f.join('|');
    })
    .sort();
}

async function serveFixture(t: import('node:test').TestContext, fixture: string, impl: FuseImpl): Promise<void> {
  if (!canMount(t)) return;
  const ws = workspace(t, `serve-${impl}`);
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(join(fixture, 'blobs'), join(ws.dir, 'cache'), { validate: true }));
  const d = ws.track(new Nydusd(['--mountpoint', ws.mnt, '--bootstrap', join(fixture, 'bootstrap'), '--config', config, '--fuse-impl', impl, '--state-dir', ws.state, '--log-level', 'info'], ws.mnt));
  await d.waitRunning();
  const expected = expectedTree(fixture);

  const got = listing(await runOk('find', ['.', '-printf', FIND_FMT], ws.mnt));
  const want = listing(await runOk('find', ['.', '-printf', FIND_FMT], expected));
  assert.deepEqual(got, want, 'find listing');

  const paths = want.map((l) => l.split('|')[0]);
  const statFmt = ['-c', '%n|%f|%h|%s|%u|%g'];
  const statOf = async (root: string) =>
    (await runOk('stat', [...statFmt, ...paths], root)).trim().split('\n').map((l) => {
      const f = l.split('|');
      if ((parseInt(f[1], 16) & 0o170000) === 0o040000) f[3] = '-';
      return f.join('|');
    });
  assert.deepEqual(await statOf(ws.mnt), await statOf(expected), 'stat of every path');

  const sums = (root: string) => runOk('sh', ['-c', 'find . -type f -print0 | sort -z | xargs -0 -r sha256sum'], root);
  const wantSums = await sums(expected);
  assert.ok(wantSums.split('\n').length > 2);
  // 8 readers at once, each reading every file; each must see exactly the unpacked bytes.
  const readers = await Promise.all(Array.from({ length: 8 }, () => sums(ws.mnt)));
  for (const r of readers) assert.equal(r, wantSums, 'cat of every file');

  const inodes = new Map<string, string[]>();
  for (const line of (await runOk('find', ['.', '-type', 'f', '-links', '+1', '-printf', '%i %P\\n'], ws.mnt)).trim().split('\n').filter(Boolean)) {
    const [ino, p] = line.split(' ');
    inodes.set(ino, [...(inodes.get(ino) ?? []), p]);
  }
  const wantGroups = new Map<string, string[]>();
  for (const line of (await runOk('find', ['.', '-type', 'f', '-links', '+1', '-printf', '%i %P\\n'], expected)).trim().split('\n').filter(Boolean)) {
    const [ino, p] = line.split(' ');
    wantGroups.set(ino, [...(wantGroups.get(ino) ?? []), p]);
  }
  const norm = (m: Map<string, string[]>) => [...m.values()].map((g) => g.sort().join(',')).sort();
  assert.deepEqual(norm(inodes), norm(wantGroups), 'hard links share an inode');

  const someFile = paths.find((p) => want.find((l) => l.startsWith(`${p}|f|`)))!;
  const writes: [string, string[]][] = [
    ['touch', ['new-file']],
    ['sh', ['-c', `echo x >> '${someFile}'`]],
    ['mv', [someFile, 'renamed']],
    ['chmod', ['777', someFile]],
    ['mkdir', ['newdir']],
    ['rm', ['-f', someFile]],
    ['ln', ['-s', 'x', 'newlink']],
  ];
  for (const [cmd, args] of writes) {
    const r = await run(cmd, args, { cwd: ws.mnt });
    assert.notEqual(r.code, 0, `${cmd} must fail`);
    assert.match(r.stderr, /Read-only file system/, `${cmd}: ${r.stderr}`);
  }

  const exit = await d.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, d.stderr);
  assert.equal(await findMount(ws.mnt), undefined, 'SIGTERM unmounts');
}

for (const impl of ['fusedev', 'fuse-native'] as const) {
  test(`v5 fixture over ${impl} reads exactly like nydus-image unpack`, (t) => serveFixture(t, V5_FIXTURE, impl));
  test(`v6 fixture over ${impl} reads exactly like nydus-image unpack`, (t) => serveFixture(t, V6_FIXTURE, impl));

  test(`xattrs through getfattr over ${impl}: user., trusted., security.capability; EOPNOTSUPP when off`, async (t) => {
    if (!canMount(t)) return;
    const ws = workspace(t, `xattr-${impl}`);
    const cap = '0x0100000200200000000000000000000000000000';
    const synth = writeSynthV5({
      name: '',
      type: 'dir',
      children: [
        { name: 'f', type: 'file', size: 10, xattrs: { 'user.mime': 'text/plain', 'trusted.overlay.opaque': 'y', 'security.capability': Buffer.from(cap.slice(2), 'hex') } },
        { name: 'link', type: 'symlink', target: 'f' },
      ],
    });
    t.after(() => synth.close());
    const d = ws.track(new Nydusd(['-M', ws.mnt, '-B', synth.bootstrap, '-D', synth.blobDir, '--fuse-impl', impl, '--state-dir', ws.state], ws.mnt));
    await d.waitRunning();
    const out = await runOk('getfattr', ['--absolute-names', '-d', '-m', '-', '-e', 'hex', join(ws.mnt, 'f')]);
    assert.match(out, /security\.capability=0x0100000200200000000000000000000000000000/);
    assert.match(out, /trusted\.overlay\.opaque=0x79/);
    assert.match(out, /user\.mime=0x746578742f706c61696e/);
    assert.equal((await runOk('readlink', [join(ws.mnt, 'link')])).trim(), 'f');
    assert.equal((await sh(`getfattr --only-values -n user.none '${join(ws.mnt, 'f')}'`)).code, 1);
    await d.stop();

    const ws2 = workspace(t, `xattr-off-${impl}`);
    const config = join(ws2.dir, 'config.json');
    writeFileSync(config, configJson(join(V5_FIXTURE, 'blobs'), join(ws2.dir, 'cache')));
    const d2 = ws2.track(new Nydusd(['-M', ws2.mnt, '-B', join(V5_FIXTURE, 'bootstrap'), '-C', config, '--fuse-impl', impl, '--state-dir', ws2.state], ws2.mnt));
    await d2.waitRunning();
    const off = await sh(`getfattr -n user.x '${join(ws2.mnt, 'symlink-test')}'`);
    assert.match(off.stderr, /Operation not supported/);
  });
}
