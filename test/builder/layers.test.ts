// OCI layer tars with whiteouts: each layer built with `create --type tar-rafs`, then
// stacked by `merge` (and, separately, by `create --parent-bootstrap`), gives exactly the
// tree overlayfs shows for the same layers. The whiteout spec decides how a single layer
// records whiteouts. Hostile tars are refused and leave nothing behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, need } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';
import { openBootstrap, walk } from '../../src/rafs/index.js';
import { encodeTarHeader, padding, tarTrailer, type TarEntry } from '../../src/util/tar-header.js';
import { compareTrees } from './tree-helpers.js';
import { create, kernelMount, scratch, type KernelMount } from './image-helpers.js';
import { mountOverlay, overlayLayer, stampAndTar, writeFiles } from './layer-helpers.js';

const work = scratch('layers');
after(() => work.cleanup());
const layerDirs = [1, 2, 3].map((n) => join(work.dir, `layer${n}`));
const layerTars = [1, 2, 3].map((n) => join(work.dir, `layer${n}.tar`));

before(async () => {
  if (!isRoot()) return;
  writeFiles(layerDirs[0], { a: 'a1', 'b/c': 'c1', 'b/d/e': 'e1', keep: 'k1', 'del-dir/x': 'x1', 'link-target': 'lt', 'empty-dir': null });
  linkSync(join(layerDirs[0], 'link-target'), join(layerDirs[0], 'hl'));
  symlinkSync('keep', join(layerDirs[0], 'sym'));
  writeFiles(layerDirs[1], { '.wh.a': '', 'b/.wh..wh..opq': '', 'b/new': 'new2', '.wh.del-dir': '', keep: 'k2', added: 'added2', '.wh.sym': '', 'empty-dir/.wh.nothing': '' });
  writeFiles(layerDirs[2], { 'a/inner': 'inner3', 'del-dir/y': 'y3', 'b/d2/f': 'f3', '.wh.added': '' });
  await stampAndTar(layerDirs, layerTars);
});

async function overlayMount(): Promise<{ dir: string; close(): Promise<void> }> {
  const lowers: string[] = [];
  for (const [i, dir] of layerDirs.entries()) {
    const o = join(work.dir, `ovl-layer${i + 1}`);
    if (!existsSync(o)) await overlayLayer(dir, o);
    lowers.unshift(o);
  }
  return mountOverlay(lowers, join(work.dir, `ovl-mnt-${Date.now()}`));
}

async function buildLayers(tag: string, extra: string[] = []): Promise<string[]> {
  const boots: string[] = [];
  for (const [i, tar] of layerTars.entries()) {
    const b = await create(tar, join(work.dir, `${tag}-l${i + 1}`), ['--type', 'tar-rafs', '--compressor', 'none', ...extra]);
    boots.push(b.bootstrap);
  }
  return boots;
}

async function compareWithOverlay(bootstrap: string, blobDirs: string[], tag: string): Promise<void> {
  const blobDir = join(work.dir, `${tag}-allblobs`);
  mkdirSync(blobDir, { recursive: true });
  for (const d of blobDirs) for (const f of readdirSync(d)) cpSync(join(d, f), join(blobDir, f));
  const ovl = await overlayMount();
  let img: KernelMount | undefined;
  try {
    img = await kernelMount(bootstrap, blobDir, join(work.dir, `${tag}-mnt`));
    assert.deepEqual(compareTrees(ovl.dir, img.dir, { ignoreRootMtime: true }), []);
  } finally {
    await img?.close();
    await ovl.close();
  }
}

test('a single OCI layer keeps its whiteouts as .wh. entries', async (t) => {
  if (!need(t, isRoot(), 'needs root')) return;
  const [, l2] = await buildLayers('single');
  const names = [...walk(await openBootstrap(l2))].map((e) => e.path.toString());
  for (const n of ['/.wh.a', '/b/.wh..wh..opq', '/.wh.del-dir', '/empty-dir/.wh.nothing']) assert.ok(names.includes(n), n);
});

test('merge of OCI layers equals overlayfs over the same layers', async (t) => {
  if (!need(t, isRoot(), 'needs root (mount)')) return;
  const boots = await buildLayers('oci');
  const r = await runProgram('nydus-image', ['merge', ...boots, '-B', join(work.dir, 'merged.boot')]);
  assert.equal(r.code, 0, r.stderr);
  const names = [...walk(await openBootstrap(join(work.dir, 'merged.boot')))].map((e) => e.path.toString());
  assert.ok(!names.some((n) => n.includes('.wh.')), `no whiteout left: ${names.join(' ')}`);
  await compareWithOverlay(join(work.dir, 'merged.boot'), boots.map((b) => join(b, '..', 'blobs')), 'oci');
});

test('create --parent-bootstrap, layer by layer, equals overlayfs too', async (t) => {
  if (!need(t, isRoot(), 'needs root (mount)')) return;
  let parent: string | undefined;
  const blobDirs: string[] = [];
  for (const [i, tar] of layerTars.entries()) {
    const b = await create(tar, join(work.dir, `chain-l${i + 1}`), ['--type', 'tar-rafs', '--compressor', 'none', ...(parent ? ['--parent-bootstrap', parent] : [])]);
    parent = b.bootstrap;
    blobDirs.push(b.blobDir);
    assert.equal(b.json.blobs.length, i + 1, 'the parent blobs come first, then this layer\'s');
  }
  await compareWithOverlay(parent as string, blobDirs, 'chain');
});

test('--whiteout-spec overlayfs records 0:0 devices and opaque xattrs, and merges the same', async (t) => {
  if (!need(t, isRoot(), 'needs root (mount)')) return;
  const boots = await buildLayers('ovlspec', ['--whiteout-spec', 'overlayfs']);
  const sb = await openBootstrap(boots[1]);
  const a = sb.lookup(sb.rootIno, Buffer.from('a')) as number;
  assert.equal(sb.getAttr(a).mode, 0o020000);
  assert.equal(sb.getAttr(a).rdev, 0);
  const b = sb.lookup(sb.rootIno, Buffer.from('b')) as number;
  assert.deepEqual(sb.getXattr(b, Buffer.from('trusted.overlay.opaque')), Buffer.from('y'));
  const r = await runProgram('nydus-image', ['merge', '--whiteout-spec', 'overlayfs', ...boots, '-B', join(work.dir, 'ovlspec.boot')]);
  assert.equal(r.code, 0, r.stderr);
  await compareWithOverlay(join(work.dir, 'ovlspec.boot'), boots.map((x) => join(x, '..', 'blobs')), 'ovlspec');
});

test('merge per-layer lists rename and resize each layer\'s blob; -J and prefetch work', async (t) => {
  if (!need(t, isRoot(), 'needs root')) return;
  const boots = await buildLayers('lists');
  const ids = ['a', 'b', 'c'].map((c) => c.repeat(64));
  // Sizes must still cover every chunk (the merged image is validated): the real ones + 1000.
  const sizes: number[] = [];
  for (const b of boots) sizes.push((await openBootstrap(b)).blobs[0].compressedSize + 1000);
  const json = join(work.dir, 'lists.json');
  const r = await runProgram(
    'nydus-image',
    ['merge', ...boots, '-B', join(work.dir, 'lists.boot'), '-J', json, '--original-blob-ids', ids.join(','), '--blob-sizes', sizes.join(','), '--prefetch-policy', 'fs'],
    { input: '/b\n/keep\n' },
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(readFileSync(json, 'utf8')) as { bootstrap: string; blobs: string[]; version: string };
  assert.deepEqual(out.blobs, ids);
  assert.equal(out.bootstrap, join(work.dir, 'lists.boot'));
  const sb = await openBootstrap(join(work.dir, 'lists.boot'));
  assert.deepEqual(sb.blobs.map((b) => b.compressedSize), sizes);
  assert.deepEqual(sb.prefetchList(), [sb.lookup(sb.rootIno, Buffer.from('b')), sb.lookup(sb.rootIno, Buffer.from('keep'))]);
  const bad = await runProgram('nydus-image', ['merge', ...boots, '-B', join(work.dir, 'bad.boot'), '--blob-sizes', '1,2']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /2 blob size entries for 3 sources/);
  assert.ok(!existsSync(join(work.dir, 'bad.boot')));
});

function tarOf(entries: (TarEntry & { data?: Buffer })[], cut = 0): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(encodeTarHeader({ ...e, size: data.length }), data, Buffer.alloc(padding(data.length)));
  }
  parts.push(tarTrailer());
  const all = Buffer.concat(parts);
  return cut ? all.subarray(0, all.length - cut) : all;
}

const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1, mtimeNsec: 0 };
const B = Buffer.from;

for (const [name, tar, pattern] of [
  ['a "../" path', tarOf([{ ...base, kind: 'file', path: B('../evil'), data: B('x') }]), /ERR_BUILD_UNSAFE_PATH.*escapes the root/],
  ['a nested "../" path', tarOf([{ ...base, kind: 'dir', path: B('a') }, { ...base, kind: 'file', path: B('a/../../evil'), data: B('x') }]), /ERR_BUILD_UNSAFE_PATH/],
  ['an absolute path', tarOf([{ ...base, kind: 'file', path: B('/etc/evil'), data: B('x') }]), /ERR_BUILD_UNSAFE_PATH.*absolute path/],
  ['a path through a symlink', tarOf([{ ...base, kind: 'symlink', path: B('link'), linkname: B('/etc') }, { ...base, kind: 'file', path: B('link/passwd'), data: B('x') }]), /ERR_BUILD_UNSAFE_PATH.*non-directory/],
  ['a hard link out of the root', tarOf([{ ...base, kind: 'hardlink', path: B('hl'), linkname: B('../../etc/passwd') }]), /ERR_BUILD_UNSAFE_PATH/],
  ['a hard link to nothing', tarOf([{ ...base, kind: 'hardlink', path: B('hl'), linkname: B('missing') }]), /ERR_BUILD_SOURCE.*not found/],
  ['a truncated member', tarOf([{ ...base, kind: 'file', path: B('f'), data: Buffer.alloc(5000, 1) }], 4000), /ERR_BUILD_SOURCE.*ends inside/],
  ['a name longer than 255 bytes', tarOf([{ ...base, kind: 'file', path: B('n'.repeat(256)), data: B('x') }]), /ERR_BUILD_LIMIT/],
] as const) {
  test(`a tar with ${name} is refused and leaves no output`, async (t) => {
    if (!need(t, isRoot(), 'needs root')) return;
    const dir = join(work.dir, `hostile-${name.replace(/\W+/g, '-')}`);
    mkdirSync(join(dir, 'blobs'), { recursive: true });
    writeFileSync(join(dir, 'layer.tar'), tar);
    const r = await runProgram('nydus-image', ['create', '-t', 'tar-rafs', join(dir, 'layer.tar'), '-B', join(dir, 'bootstrap'), '-D', join(dir, 'blobs')]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, pattern);
    assert.deepEqual(readdirSync(join(dir, 'blobs')), []);
    assert.ok(!existsSync(join(dir, 'bootstrap')));
    assert.ok(!existsSync(join(work.dir, 'evil')) && !existsSync('/etc/evil'));
  });
}
