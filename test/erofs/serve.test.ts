// nydusd --fs-driver erofs with the real kernel: the upstream v6 fixture and a Debian
// minbase root filesystem are served by erofs on blob views (file-backed, and on loop
// devices as on a kernel without file-backed erofs: NYDUSD_EROFS_BACKING=loop), with the
// same bytes and metadata as the source and as the fusedev view; a v5 image is refused
// with nothing left behind; a corrupted chunk is EIO for its file only; SIGTERM removes
// every erofs mount, loop device and views mount; a start after kill -9 removes what the
// dead daemon left; a daemon without a bootstrap takes concurrent API mounts and umounts
// at <mountpoint>/<path> and lists their blob objects; file metrics have no counter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import { viewsDirOf } from '../../src/daemon/erofs-driver.js';
import { listLoops } from '../../src/daemon/loop-devices.js';
import { readMounts } from '../../src/fuse/mount-linux.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { runOk } from '../conformance/child.js';
import { configJson } from '../fs/helpers.js';
import { compareTrees } from '../builder/tree-helpers.js';
import { create, scratch } from '../builder/image-helpers.js';
import { ensureRootfs } from '../builder/rootfs.js';
import { Nydusd, canMount, expectedTree, workspace } from '../integration/nydusd-proc.js';
import { need } from '../helpers/env.js';

const FIND_FMT = '%P|%y|%m|%n|%U|%G|%l|%s|%TY%Tm%Td%TH%TM%TS\\n';

/** `find` of every entry but the root, whose mtime fusedev reports as the daemon's start time. */
async function listing(root: string): Promise<string[]> {
  const out = await runOk('find', ['.', '-mindepth', '1', '-printf', FIND_FMT], root);
  return out
    .trim()
    .split('\n')
    .map((l) => {
      const f = l.split('|');
      if (f[1] === 'd') f[7] = '-'; // directory sizes are the filesystem's own
      return f.join('|');
    })
    .sort();
}

const sums = (root: string) => runOk('sh', ['-c', 'find . -type f -print0 | sort -z | xargs -0 -r sha256sum'], root);

/** What the kernel still holds under `mnt` or for the views of `state`: erofs and views mounts, loop devices. */
async function leftovers(mnt: string, state: string): Promise<string[]> {
  const views = viewsDirOf(state);
  const mounts = (await readMounts()).filter((m) => m.mountpoint === mnt || m.mountpoint.startsWith(`${mnt}/`) || m.mountpoint === views);
  const loops = (await listLoops()).filter((l) => l.backingFile.startsWith(`${views}/`));
  return [...mounts.map((m) => `${m.fstype} at ${m.mountpoint}`), ...loops.map((l) => `loop${l.index} on ${l.backingFile}`)];
}

type Backing = 'file' | 'loop';
const BACKINGS: Backing[] = ['file', 'loop'];
const backingEnv = (backing: Backing) => ({ NYDUSD_EROFS_BACKING: backing });

function erofsDaemon(ws: ReturnType<typeof workspace>, bootstrap: string, config: string, extra: string[] = [], backing: Backing = 'file'): Nydusd {
  return ws.track(new Nydusd(['--fs-driver', 'erofs', '--mountpoint', ws.mnt, '--bootstrap', bootstrap, '--config', config, '--state-dir', ws.state, '--apisock', join(ws.dir, 'api.sock'), ...extra], ws.mnt, backingEnv(backing)));
}

/** The loop devices on views of `state`. */
const viewLoops = async (state: string) => (await listLoops()).filter((l) => l.backingFile.startsWith(`${viewsDirOf(state)}/`));

for (const backing of BACKINGS) {
test(`${backing}-backed: the v6 fixture through erofs: the tree, stat and bytes of nydus-image unpack and of the fusedev view; SIGTERM leaves nothing`, async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'erofs-fixture');
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(join(V6_FIXTURE, 'blobs'), join(ws.dir, 'cache'), { validate: true }));
  const d = erofsDaemon(ws, join(V6_FIXTURE, 'bootstrap'), config, [], backing);
  await d.waitRunning();
  const mount = (await readMounts()).find((m) => m.mountpoint === ws.mnt);
  assert.equal(mount?.fstype, 'erofs', 'the kernel serves the mountpoint');
  if (backing === 'file') assert.equal(mount?.source, join(viewsDirOf(ws.state), '1', 'bootstrap'), 'erofs reads the bootstrap on the views');
  else assert.match(mount?.source ?? '', /^\/dev\/loop\d+$/);

  const expected = expectedTree(V6_FIXTURE);
  assert.deepEqual(await listing(ws.mnt), await listing(expected));
  const want = await sums(expected);
  const readers = await Promise.all(Array.from({ length: 8 }, () => sums(ws.mnt)));
  for (const r of readers) assert.equal(r, want, 'every reader sees the unpacked bytes');

  const fuse = workspace(t, 'erofs-fixture-fusedev');
  const f = fuse.track(new Nydusd(['--mountpoint', fuse.mnt, '--bootstrap', join(V6_FIXTURE, 'bootstrap'), '--config', config, '--state-dir', fuse.state], fuse.mnt));
  await f.waitRunning();
  assert.deepEqual(await listing(ws.mnt), await listing(fuse.mnt), 'the same listing as fusedev');
  const stat = (root: string) => runOk('stat', ['-c', '%n|%f|%h|%s|%u|%g|%X|%Y|%Z', 'lib.rs', 'sync_io.rs'], root);
  assert.equal(await stat(ws.mnt), await stat(fuse.mnt), 'the same stat as fusedev');
  await f.stop();

  const api = d.api();
  const blobs = await api.blobObjects('/');
  api.close();
  const sb = await openBootstrap(join(V6_FIXTURE, 'bootstrap'));
  assert.deepEqual(blobs.map((b) => b.blob_id), sb.blobs.map((b) => b.blobId));
  if (backing === 'file') {
    assert.deepEqual([blobs[0].loop_device, blobs[0].direct_io], [null, false], 'erofs reads the view file, buffered');
    assert.deepEqual(await viewLoops(ws.state), [], 'no loop device');
  } else {
    assert.match(blobs[0].loop_device ?? '', /^\/dev\/loop\d+$/);
    assert.equal(blobs[0].direct_io, true, 'the loop device reads the view with direct I/O');
  }
  assert.ok(blobs[0].cached_bytes > 0 && blobs[0].cached_bytes <= blobs[0].blob_size);
  assert.equal(blobs[0].blob_size % 4096, 0);

  assert.notDeepEqual(await leftovers(ws.mnt, ws.state), []);
  assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null });
  assert.deepEqual(await leftovers(ws.mnt, ws.state), [], 'no erofs mount, loop device or views mount after SIGTERM');
});
}

test('a v5 image is refused in one line naming --fs-driver fusedev, and nothing stays mounted', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'erofs-v5');
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(join(V5_FIXTURE, 'blobs'), join(ws.dir, 'cache')));
  const d = erofsDaemon(ws, join(V5_FIXTURE, 'bootstrap'), config);
  assert.deepEqual(await d.exited, { code: 1, signal: null });
  const errors = d.stderr.split('\n').filter((l) => l.startsWith('nydusd:'));
  assert.equal(errors.length, 1, d.stderr);
  assert.match(errors[0], /RAFS v5, not an EROFS image; serve it with --fs-driver fusedev/);
  assert.deepEqual(await leftovers(ws.mnt, ws.state), []);
});

test('a corrupted chunk is EIO through erofs for its file only; the others read right', async (t) => {
  if (!canMount(t)) return;
  const work = scratch('erofs-corrupt');
  t.after(() => work.cleanup());
  const src = join(work.dir, 'src');
  mkdirSync(src);
  for (let i = 0; i < 4; i++) writeFileSync(join(src, `f${i}.bin`), Buffer.alloc(300_000, 0x41 + i));
  const built = await create(src, join(work.dir, 'img'), ['--compressor', 'none']);
  const sb = await openBootstrap(built.bootstrap);
  const victim = sb.fileChunks(sb.lookup(sb.rootIno, Buffer.from('f2.bin'))!, 0, 1)[0];
  const blobs = join(work.dir, 'blobs');
  mkdirSync(blobs);
  for (const name of readdirSync(built.blobDir)) copyFileSync(join(built.blobDir, name), join(blobs, name));
  const blobFile = join(blobs, sb.blobs[victim.blobIndex].blobId);
  const bytes = readFileSync(blobFile);
  bytes[victim.compressedOffset + 100] ^= 0xff;
  writeFileSync(blobFile, bytes);

  const ws = workspace(t, 'erofs-corrupt');
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(blobs, join(ws.dir, 'cache'), { validate: true }));
  const d = erofsDaemon(ws, built.bootstrap, config);
  await d.waitRunning();
  for (const name of ['f0.bin', 'f1.bin', 'f3.bin']) {
    assert.deepEqual(readFileSync(join(ws.mnt, name)), readFileSync(join(src, name)), name);
  }
  assert.throws(() => readFileSync(join(ws.mnt, 'f2.bin')), (e: NodeJS.ErrnoException) => e.code === 'EIO');
  assert.deepEqual(readFileSync(join(ws.mnt, 'f3.bin')), readFileSync(join(src, 'f3.bin')), 'the mount keeps serving');
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  assert.match(d.stderr, /fs: read failed: .*digest mismatch/, 'the failure is logged');
});

for (const backing of BACKINGS) {
test(`${backing}-backed: kill -9 then the same command line: the new daemon removes the dead one's erofs mount, loop devices and views, and serves`, async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'erofs-crash');
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(join(V6_FIXTURE, 'blobs'), join(ws.dir, 'cache')));
  const first = erofsDaemon(ws, join(V6_FIXTURE, 'bootstrap'), config, [], backing);
  await first.waitRunning();
  await first.stop('SIGKILL');
  assert.notDeepEqual(await leftovers(ws.mnt, ws.state), [], 'a crash leaves the kernel objects behind');
  assert.throws(() => readFileSync(join(ws.mnt, 'lib.rs')));

  const second = erofsDaemon(ws, join(V6_FIXTURE, 'bootstrap'), config, [], backing);
  await second.waitRunning();
  assert.match(second.stderr, /removed what a crashed daemon left: erofs mounts \[".*mnt"\]/);
  assert.equal(await sums(ws.mnt), await sums(expectedTree(V6_FIXTURE)));
  assert.deepEqual(await second.stop(), { code: 0, signal: null });
  assert.deepEqual(await leftovers(ws.mnt, ws.state), []);
});
}

for (const backing of BACKINGS) {
test(`${backing}-backed: without a bootstrap: concurrent API mounts and umounts at <mountpoint>/<path>, blob objects, no file metrics`, async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'erofs-api');
  const sock = join(ws.dir, 'api.sock');
  const d = ws.track(new Nydusd(['--fs-driver', 'erofs', '--mountpoint', ws.mnt, '--state-dir', ws.state, '--apisock', sock], ws.mnt, backingEnv(backing)));
  await d.waitRunning();
  const api = d.api();
  t.after(() => api.close());
  const names = ['a', 'b', 'c', 'd'];
  const cmd = (i: number) => ({ source: join(V6_FIXTURE, 'bootstrap'), fs_type: 'rafs', config: configJson(join(V6_FIXTURE, 'blobs'), join(ws.dir, `cache-${i}`)), prefetch_files: null });
  await Promise.all(names.map((n, i) => api.mount(`/${n}`, cmd(i))));
  const want = await sums(expectedTree(V6_FIXTURE));
  for (const n of names) assert.equal(await sums(join(ws.mnt, n)), want, `/${n}`);
  assert.deepEqual(Object.keys((await api.info()).backend_collection ?? {}).sort(), names.map((n) => `/${n}`));

  const objects = await api.blobObjects('/b');
  assert.equal(objects[0].mountpoint, join(ws.mnt, 'b'));
  assert.equal((await api.request('GET', '/api/v2/blobs', { query: { domain_id: '/nope' } })).status, 500);
  const del = (query: Record<string, string>) => api.request('DELETE', '/api/v2/blobs', { query }).then((r) => r.status);
  assert.equal(await del({ domain_id: '/b' }), 501, 'the blobs of a mounted image are not deleted under it');
  assert.equal(await del({ blob_id: objects[0].blob_id }), 501);
  assert.equal(await del({ domain_id: '/nope' }), 500, "upstream's cache entry not found");
  assert.equal(await del({ blob_id: 'f'.repeat(64) }), 204, 'a blob nobody uses: nothing to cull');
  const fsMetrics = await api.request('GET', '/api/v1/metrics', { query: { id: '/a' } });
  assert.equal(fsMetrics.status, 404, 'the kernel answers file requests: no fs counters, as upstream fscache');
  assert.equal((await api.request('GET', '/api/v1/metrics/backend', { query: { id: '/a' } })).status, 200);

  // A nested mountpoint is refused; a v5 image is refused; neither leaves anything.
  assert.equal((await api.request('POST', '/api/v1/mount', { query: { mountpoint: '/a/x' }, body: cmd(9) })).status, 501);
  const v5 = { ...cmd(8), source: join(V5_FIXTURE, 'bootstrap'), config: configJson(join(V5_FIXTURE, 'blobs'), join(ws.dir, 'cache-v5')) };
  assert.equal((await api.request('POST', '/api/v1/mount', { query: { mountpoint: '/v5' }, body: v5 })).status, 501);

  writeFileSync(join(ws.mnt, 'file'), 'not a directory');
  const onFile = await api.request('POST', '/api/v1/mount', { query: { mountpoint: '/file' }, body: cmd(7) });
  assert.equal(onFile.status, 500);
  assert.match(onFile.text, /not a directory/);
  rmSync(join(ws.mnt, 'file'));
  assert.deepEqual(Object.keys((await api.info()).backend_collection ?? {}).sort(), names.map((n) => `/${n}`), 'refused mounts are not in the table');

  await api.remount('/d', cmd(6));
  assert.equal(await sums(join(ws.mnt, 'd')), want, 'a remount replaces the erofs mount in place');
  // On loops, each image has two: its one blob view and its bootstrap (both files on the views).
  assert.equal((await viewLoops(ws.state)).length, backing === 'loop' ? 2 * names.length : 0, "the replaced image's loop devices went with its erofs mount");
  await Promise.all(names.slice(0, 3).map((n) => api.umount(`/${n}`)));
  await api.mount('/e', cmd(5));
  const left = (await readMounts()).filter((m) => m.mountpoint.startsWith(`${ws.mnt}/`)).map((m) => m.mountpoint).sort();
  assert.deepEqual(left, [join(ws.mnt, 'd'), join(ws.mnt, 'e')]);
  assert.deepEqual(readdirSync(ws.mnt).sort(), ['d', 'e'], 'the directories made for unmounted images are gone');
  assert.equal(await sums(join(ws.mnt, 'e')), want);
  api.close();
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  assert.deepEqual(await leftovers(ws.mnt, ws.state), []);
});
}

test('a Debian minbase root filesystem (v6, zstd) through erofs: identical to the source and to the fusedev view', async (t) => {
  if (!canMount(t)) return;
  const rootfs = await ensureRootfs();
  if (!need(t, rootfs.dir !== undefined, rootfs.reason ?? 'no rootfs')) return;
  const work = scratch('erofs-rootfs');
  t.after(() => work.cleanup());
  const built = await create(rootfs.dir!, join(work.dir, 'img'));
  const ws = workspace(t, 'erofs-rootfs');
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(built.blobDir, join(ws.dir, 'cache'), { validate: true }));
  const d = erofsDaemon(ws, built.bootstrap, config);
  await d.waitRunning();
  assert.deepEqual(compareTrees(rootfs.dir!, ws.mnt, { ignoreRootMtime: true }), []);

  const fuse = workspace(t, 'erofs-rootfs-fusedev');
  const f = fuse.track(new Nydusd(['--mountpoint', fuse.mnt, '--bootstrap', built.bootstrap, '--config', config, '--state-dir', fuse.state], fuse.mnt));
  await f.waitRunning();
  assert.deepEqual(compareTrees(fuse.mnt, ws.mnt, { ignoreRootMtime: true }), [], 'erofs and fusedev show the same tree');
  await f.stop();
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
  assert.deepEqual(await leftovers(ws.mnt, ws.state), []);
});

test('fs_driver in the --config file chooses erofs; an API mount whose config names fusedev is refused', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'erofs-config');
  const config = join(ws.dir, 'config.json');
  const base = JSON.parse(configJson(join(V6_FIXTURE, 'blobs'), join(ws.dir, 'cache'))) as Record<string, unknown>;
  writeFileSync(config, JSON.stringify({ ...base, fs_driver: 'erofs' }));
  const d = ws.track(new Nydusd(['--mountpoint', ws.mnt, '--bootstrap', join(V6_FIXTURE, 'bootstrap'), '--config', config, '--state-dir', ws.state, '--apisock', join(ws.dir, 'api.sock'), '-m', '/one'], ws.mnt));
  await d.waitRunning();
  assert.equal((await readMounts()).find((m) => m.mountpoint === join(ws.mnt, 'one'))?.fstype, 'erofs');
  const api = d.api();
  t.after(() => api.close());
  const other = { source: join(V6_FIXTURE, 'bootstrap'), fs_type: 'rafs', config: JSON.stringify({ ...base, fs_driver: 'fusedev' }), prefetch_files: null };
  const r = await api.request('POST', '/api/v1/mount', { query: { mountpoint: '/two' }, body: other });
  assert.equal(r.status, 501);
  assert.match(r.text, /asks for fs_driver fusedev, but this daemon serves erofs/);
  assert.deepEqual(readdirSync(ws.mnt), ['one'], 'the refused mount left no directory');
});
