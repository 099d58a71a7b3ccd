// `nydus-image create -t targz-ref` over a Debian minbase root filesystem packed by GNU
// tar and gzip: the data blob is the .tar.gz byte for byte; nydusd (fusedev and erofs)
// serves the tar's tree; reading one small file fetches a small part of the layer; zran
// contexts whose checkpoint is mid-byte (bit offset not 0) are read; a corrupted gzip
// byte is EIO for the files whose chunks need it and nothing else; with
// --blob-inline-meta the bootstrap travels inside the meta blob.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openBootstrap } from '../../src/rafs/index.js';
import { LocalFsBackend } from '../../src/storage/backend/localfs.js';
import { ZranBlobMeta } from '../../src/storage/zran-meta.js';
import { need } from '../helpers/env.js';
import { runOk } from '../conformance/child.js';
import { runProgram } from '../helpers/run.js';
import { Nydusd, canMount, workspace } from '../integration/nydusd-proc.js';
import { scratch } from './image-helpers.js';
import { targzRefImage, type TargzRefImage } from './targz-layer.js';
import { assertCheckAndUnpack, assertOnlyVictimFails, fileChunks, localfsConfig as config, victimByte, writeCorruptedCopy, type FileChunks } from './ref-image-checks.js';
import { compareTrees } from './tree-helpers.js';

type Built = TargzRefImage;

async function image(t: import('node:test').TestContext): Promise<Built | undefined> {
  if (!canMount(t)) return undefined;
  const b = await targzRefImage();
  if (typeof b === 'string') {
    need(t, false, b);
    return undefined;
  }
  return b;
}

async function loadMeta(b: Built): Promise<{ meta: ZranBlobMeta; files: FileChunks[] }> {
  const sb = await openBootstrap(b.bootstrap);
  const backend = new LocalFsBackend({ dir: b.blobDir, alt_dirs: [], blob_file: '' });
  try {
    const meta = await ZranBlobMeta.load(backend, sb.blobs[0]);
    return { meta, files: fileChunks(sb) };
  } finally {
    await backend.close();
  }
}

test('targz-ref: the data blob is the .tar.gz byte for byte, named by its sha256; contexts with a bit offset are used', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const layer = readFileSync(b.layer);
  assert.equal(b.blobId, createHash('sha256').update(layer).digest('hex'));
  assert.ok(readFileSync(join(b.blobDir, b.blobId)).equals(layer), 'the localfs data blob is the layer itself');
  const meta = readFileSync(join(b.blobDir, b.metaId));
  assert.equal(createHash('sha256').update(meta).digest('hex'), b.metaId, 'the meta blob is named by its digest');
  const { meta: zran, files } = await loadMeta(b);
  const midByte = new Set(zran.contexts.flatMap((c, i) => (c.ctxBits !== 0 ? [i] : [])));
  assert.ok(midByte.size > 0, 'some checkpoints are inside a byte');
  const used = files.flatMap((f) => f.chunks).filter((c) => midByte.has(zran.locate(c).index));
  assert.ok(used.length > 0, 'chunks are read from such contexts (the tree comparisons read them all)');
  assert.ok(zran.contexts.every((c) => c.window.length === 0 || c.window.length === 32768));
});

test('targz-ref: nydus-image check verifies every chunk and unpack gives back the tar tree', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const work = scratch('targz-ref-unpack');
  t.after(() => work.cleanup());
  await assertCheckAndUnpack(b.bootstrap, b.blobDir, b.rootfs, work.dir, { ignoreRootMtime: true });
});

test('targz-ref through nydusd (fusedev): the tar tree; one small file fetches under 5% of the layer', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const ws = workspace(t, 'targz-ref');
  const cfg = config(b.blobDir, ws.dir);
  const sock = join(ws.dir, 'api.sock');
  const args = ['--mountpoint', ws.mnt, '--bootstrap', b.bootstrap, '--config', cfg, '--state-dir', ws.state, '--apisock', sock];
  const d = ws.track(new Nydusd(args, ws.mnt));
  await d.waitRunning();
  assert.equal(readFileSync(join(ws.mnt, 'etc/debian_version'), 'utf8'), readFileSync(join(b.rootfs, 'etc/debian_version'), 'utf8'));
  const api = d.api();
  const m = (await api.metrics('backend', { id: '/' })) as { read_amount_total: number };
  api.close();
  const layerSize = statSync(b.layer).size;
  const metaSize = statSync(join(b.blobDir, b.metaId)).size;
  const data = m.read_amount_total - metaSize;
  t.diagnostic(`layer ${layerSize} B, meta blob ${metaSize} B, fetched for one small file ${m.read_amount_total} B`);
  assert.ok(m.read_amount_total >= metaSize, 'the blob meta was fetched through the backend');
  assert.ok(data > 0 && data < layerSize * 0.05, `one small file read ${data} bytes of the ${layerSize}-byte layer (meta blob ${metaSize} bytes)`);
  assert.deepEqual(compareTrees(b.rootfs, ws.mnt, { ignoreRootMtime: true }), []);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('targz-ref through nydusd --fs-driver erofs: the tar tree', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const ws = workspace(t, 'targz-ref-erofs');
  const cfg = config(b.blobDir, ws.dir);
  const d = ws.track(new Nydusd(['--fs-driver', 'erofs', '--mountpoint', ws.mnt, '--bootstrap', b.bootstrap, '--config', cfg, '--state-dir', ws.state, '--apisock', join(ws.dir, 'api.sock')], ws.mnt));
  await d.waitRunning();
  assert.deepEqual(compareTrees(b.rootfs, ws.mnt, { ignoreRootMtime: true }), []);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('targz-ref: a corrupted gzip byte is EIO for the files that need it, the others read right', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const { meta, files } = await loadMeta(b);
  const { victim, at } = victimByte(files);
  const ws = workspace(t, 'targz-ref-corrupt');
  const blobs = join(ws.dir, 'blobs');
  mkdirSync(blobs);
  copyFileSync(join(b.blobDir, b.metaId), join(blobs, b.metaId));
  writeCorruptedCopy(b.layer, at, join(blobs, b.blobId));
  const d = ws.track(new Nydusd(['--mountpoint', ws.mnt, '--bootstrap', b.bootstrap, '--config', config(blobs, ws.dir), '--state-dir', ws.state], ws.mnt));
  await d.waitRunning();

  // Untouched: every chunk either starts its context after the byte or ends before it.
  const untouched = files.filter((f) => f.chunks.every((c) => meta.locate(c).ctx.inOffset > at || c.compressedOffset + c.compressedSize <= at));
  assert.ok(untouched.length > files.length / 2, `${untouched.length} of ${files.length} files do not need the byte`);
  await assertOnlyVictimFails(ws.mnt, b.rootfs, victim.path, untouched);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('targz-ref layers merge into one image whose blobs keep their meta blobs; check verifies it and unpack gives both layers', async (t) => {
  const work = scratch('targz-ref-merge');
  t.after(() => work.cleanup());
  const blobs = join(work.dir, 'blobs');
  mkdirSync(blobs);
  const boots: string[] = [];
  for (const [name, body] of [['lower', 'from the lower layer\n'], ['upper', 'from the upper layer\n'.repeat(50_000)]] as const) {
    const src = join(work.dir, name);
    mkdirSync(join(src, name), { recursive: true });
    writeFileSync(join(src, name, 'file.txt'), body);
    await runOk('sh', ['-c', `tar -C '${src}' -cf - . | gzip > '${src}.tar.gz'`]);
    const boot = join(work.dir, `${name}.boot`);
    const r = await runProgram('nydus-image', ['create', '-t', 'targz-ref', '-B', boot, '-D', blobs, `${src}.tar.gz`]);
    assert.equal(r.code, 0, r.stderr);
    boots.push(boot);
  }
  const merged = join(work.dir, 'merged.boot');
  const m = await runProgram('nydus-image', ['merge', '-B', merged, ...boots]);
  assert.equal(m.code, 0, m.stderr);
  const check = await runProgram('nydus-image', ['check', '-B', merged, '-D', blobs]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /blobs: 2/);
  assert.match(check.stdout, /0 failed/);
  const tar = join(work.dir, 'out.tar');
  assert.equal((await runProgram('nydus-image', ['unpack', merged, '-D', blobs, '--output', tar])).code, 0);
  const tree = join(work.dir, 'tree');
  mkdirSync(tree);
  await runOk('tar', ['-xf', tar, '-C', tree]);
  assert.equal(readFileSync(join(tree, 'lower/file.txt'), 'utf8'), 'from the lower layer\n');
  assert.equal(readFileSync(join(tree, 'upper/file.txt'), 'utf8'), 'from the upper layer\n'.repeat(50_000));
});

test('targz-ref --blob-inline-meta: the meta blob carries the bootstrap; check, nydusd and merge read it', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const ws = workspace(t, 'targz-ref-inline');
  const blobs = join(ws.dir, 'blobs');
  mkdirSync(blobs);
  const json = join(ws.dir, 'out.json');
  const r = await runProgram('nydus-image', ['create', '-t', 'targz-ref', '--blob-inline-meta', '-D', blobs, '-J', json, b.layer]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(readFileSync(json, 'utf8')) as { bootstrap: string; blobs: string[]; blob_meta: string };
  assert.equal(out.bootstrap, '', 'no bootstrap file: it is inlined');
  assert.deepEqual(out.blobs, [b.blobId]);
  const inline = join(blobs, out.blob_meta);
  assert.equal(createHash('sha256').update(readFileSync(inline)).digest('hex'), out.blob_meta, 'the meta blob is named by its digest');
  const sb = await openBootstrap(inline);
  assert.equal(sb.blobs[0].metaBlobId, out.blob_meta, 'the meta blob is named after the file it was read from');

  const check = await runProgram('nydus-image', ['check', '-B', inline, '-D', blobs]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /chunk data: \d+ chunks verified, 0 failed/);
  const d = ws.track(new Nydusd(['--mountpoint', ws.mnt, '--bootstrap', inline, '--config', config(blobs, ws.dir), '--state-dir', ws.state], ws.mnt));
  await d.waitRunning();
  assert.deepEqual(compareTrees(b.rootfs, ws.mnt, { ignoreRootMtime: true }), []);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });

  // A registry keeps no file name: push asks for the bootstrap written out first.
  const push = await runProgram('nydus-image', ['push', inline, '-D', blobs, '--target', '127.0.0.1:1/x/y:z']);
  assert.equal(push.code, 1);
  assert.match(push.stderr, /the bootstrap is inlined in the meta blob of [0-9a-f]{64}; write it out with `nydus-image merge -B FILE /);
  // Merged into a bootstrap of its own, the blob names its meta blob by digest again.
  const merged = join(ws.dir, 'merged.boot');
  assert.equal((await runProgram('nydus-image', ['merge', '-B', merged, inline])).code, 0);
  const msb = await openBootstrap(merged);
  assert.equal(msb.blobs[0].metaBlobId, out.blob_meta);
  const mcheck = await runProgram('nydus-image', ['check', '-B', merged, '-D', blobs]);
  assert.equal(mcheck.code, 0, mcheck.stderr);
  assert.match(mcheck.stdout, /0 failed/);
});
