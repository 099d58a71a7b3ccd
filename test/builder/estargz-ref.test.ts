// `nydus-image create -t estargz-ref` over an eStargz layer that stargz-snapshotter's
// ctr-remote made from a Debian minbase root filesystem, and `-t estargztoc-ref` from its
// TOC alone: the data blob is the layer byte for byte; check and unpack read it; nydusd
// (fusedev and erofs) serves the tree; reading one small file fetches a small part of
// the layer; a corrupted byte is EIO for the files whose chunks need it and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { openBootstrap } from '../../src/rafs/index.js';
import { need } from '../helpers/env.js';
import { runOk } from '../conformance/child.js';
import { runProgram } from '../helpers/run.js';
import { Nydusd, canMount, workspace } from '../integration/nydusd-proc.js';
import { estargzImage, type EstargzImage } from './estargz-layer.js';
import { scratch } from './image-helpers.js';
import { assertCheckAndUnpack, assertOnlyVictimFails, fileChunks, localfsConfig as config, victimByte, writeCorruptedCopy } from './ref-image-checks.js';
import { compareTrees } from './tree-helpers.js';

interface Built extends EstargzImage {
  blobDir: string;
  bootstrap: string;
}

let built: Promise<Built | string> | undefined;

/** The eStargz layer and its estargz-ref image, made once. */
async function image(t: import('node:test').TestContext): Promise<Built | undefined> {
  if (!canMount(t)) return undefined;
  built ??= (async () => {
    const img = await estargzImage();
    if (typeof img === 'string') return img;
    const work = scratch('estargz-ref');
    process.once('exit', () => work.cleanup());
    const blobDir = join(work.dir, 'blobs');
    mkdirSync(blobDir);
    const bootstrap = join(work.dir, 'bootstrap');
    const r = await runProgram('nydus-image', ['create', '-t', 'estargz-ref', '-D', blobDir, '-B', bootstrap, img.layer]);
    if (r.code !== 0) throw new Error(`nydus-image create -t estargz-ref failed: ${r.stderr}`);
    return { ...img, blobDir, bootstrap };
  })();
  const b = await built;
  if (typeof b === 'string') {
    need(t, false, b);
    return undefined;
  }
  return b;
}

const SAME = { ignoreRootMtime: true, mtimeSeconds: true };

test('estargz-ref: the data blob is the eStargz layer byte for byte; each chunk starts a gzip member of it', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const layer = readFileSync(b.layer);
  assert.equal(b.layerId, createHash('sha256').update(layer).digest('hex'));
  assert.ok(readFileSync(join(b.blobDir, b.layerId)).equals(layer), 'the localfs data blob is the layer itself');
  const sb = await openBootstrap(b.bootstrap);
  assert.equal(sb.blobs.length, 1);
  assert.equal(sb.blobs[0].blobId, b.layerId);
  assert.equal(sb.blobs[0].compressor, 'gzip');
  assert.equal(sb.blobs[0].compressedSize, layer.length);
  const files = fileChunks(sb);
  const chunks = files.flatMap((f) => f.chunks);
  assert.ok(chunks.length > 1000);
  for (const c of chunks) assert.deepEqual([layer[c.compressedOffset], layer[c.compressedOffset + 1]], [0x1f, 0x8b], `chunk ${c.index} starts a gzip member`);
  // The builder read nothing but the TOC: compare one chunk with the file it came from.
  const f = files.find((x) => x.path === 'etc/passwd')!;
  const c = f.chunks[0];
  const inflated = gunzipSync(layer.subarray(c.compressedOffset, c.compressedOffset + c.compressedSize), { finishFlush: 2 }).subarray(0, c.uncompressedSize);
  assert.ok(inflated.equals(readFileSync(join(b.rootfs, 'etc/passwd'))));
});

test('estargz-ref: nydus-image check verifies every chunk and unpack gives back the tree', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const work = scratch('estargz-ref-unpack');
  t.after(() => work.cleanup());
  await assertCheckAndUnpack(b.bootstrap, b.blobDir, b.rootfs, work.dir, SAME);
});

test('estargztoc-ref: the TOC alone with --blob-id and --blob-data-size gives the same tree over the same layer', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const work = scratch('estargztoc-ref');
  t.after(() => work.cleanup());
  // The TOC as a snapshotter keeps it: the one-entry tar in the member the footer points at.
  const layer = readFileSync(b.layer);
  const footer = layer.subarray(layer.length - 51).toString('latin1');
  const tocOffset = parseInt(footer.slice(16, 32), 16);
  const tar = gunzipSync(layer.subarray(tocOffset, layer.length - 51));
  const size = parseInt(tar.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim(), 8);
  const toc = join(work.dir, 'stargz.index.json');
  writeFileSync(toc, tar.subarray(512, 512 + size));
  const boot = join(work.dir, 'toc.boot');
  const r = await runProgram('nydus-image', ['create', '-t', 'estargztoc-ref', '--blob-id', `sha256:${b.layerId}`, '--blob-data-size', String(layer.length), '-B', boot, toc]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`data blobs: \\["${b.layerId}"\\]`));
  const check = await runProgram('nydus-image', ['check', '-B', boot, '-D', b.blobDir]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /0 failed/);
  const out = join(work.dir, 'out.tar');
  assert.equal((await runProgram('nydus-image', ['unpack', boot, '-D', b.blobDir, '--output', out])).code, 0);
  const tree = join(work.dir, 'tree');
  mkdirSync(tree);
  await runOk('tar', ['--numeric-owner', '--xattrs', '-xpf', out, '-C', tree]);
  assert.deepEqual(compareTrees(b.rootfs, tree, SAME), []);
});

test('estargz-ref through nydusd (fusedev): the tree; one small file fetches under 5% of the layer', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const ws = workspace(t, 'estargz-ref');
  const d = ws.track(new Nydusd(['--mountpoint', ws.mnt, '--bootstrap', b.bootstrap, '--config', config(b.blobDir, ws.dir), '--state-dir', ws.state, '--apisock', join(ws.dir, 'api.sock')], ws.mnt));
  await d.waitRunning();
  assert.equal(readFileSync(join(ws.mnt, 'etc/debian_version'), 'utf8'), readFileSync(join(b.rootfs, 'etc/debian_version'), 'utf8'));
  const api = d.api();
  const m = (await api.metrics('backend', { id: '/' })) as { read_amount_total: number };
  api.close();
  const layerSize = statSync(b.layer).size;
  t.diagnostic(`layer ${layerSize} B, fetched for one small file ${m.read_amount_total} B (${((100 * m.read_amount_total) / layerSize).toFixed(3)}%)`);
  assert.ok(m.read_amount_total > 0 && m.read_amount_total < layerSize * 0.05);
  assert.deepEqual(compareTrees(b.rootfs, ws.mnt, SAME), []);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('estargz-ref through nydusd --fs-driver erofs: the tree', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const ws = workspace(t, 'estargz-ref-erofs');
  const d = ws.track(new Nydusd(['--fs-driver', 'erofs', '--mountpoint', ws.mnt, '--bootstrap', b.bootstrap, '--config', config(b.blobDir, ws.dir), '--state-dir', ws.state, '--apisock', join(ws.dir, 'api.sock')], ws.mnt));
  await d.waitRunning();
  assert.deepEqual(compareTrees(b.rootfs, ws.mnt, SAME), []);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('estargz-ref: a corrupted byte is EIO for the files whose chunks hold it, the others read right', async (t) => {
  const b = await image(t);
  if (b === undefined) return;
  const files = fileChunks(await openBootstrap(b.bootstrap));
  const { victim, at } = victimByte(files);
  const ws = workspace(t, 'estargz-ref-corrupt');
  const blobs = join(ws.dir, 'blobs');
  mkdirSync(blobs);
  writeCorruptedCopy(b.layer, at, join(blobs, b.layerId));
  const d = ws.track(new Nydusd(['--mountpoint', ws.mnt, '--bootstrap', b.bootstrap, '--config', config(blobs, ws.dir), '--state-dir', ws.state], ws.mnt));
  await d.waitRunning();
  const untouched = files.filter((f) => f.chunks.every((c) => c.compressedOffset > at || c.compressedOffset + c.compressedSize <= at));
  assert.equal(untouched.length, files.length - 1, 'only the victim has a chunk holding the byte');
  await assertOnlyVictimFails(ws.mnt, b.rootfs, victim.path, untouched);
  assert.deepEqual(await d.stop(), { code: 0, signal: null });
});

test('estargztoc-ref refuses a TOC whose chunks do not fit RAFS chunking, and a layer without a footer', async (t) => {
  const work = scratch('estargz-bad');
  t.after(() => work.cleanup());
  const toc = join(work.dir, 'toc.json');
  const digest = `sha256:${'ab'.repeat(32)}`;
  writeFileSync(toc, JSON.stringify({ version: 1, entries: [
    { name: 'f', type: 'reg', size: 10000, offset: 10, chunkSize: 3000, chunkDigest: digest, digest },
    { name: 'f', type: 'chunk', offset: 100, chunkOffset: 3000, chunkSize: 0, chunkDigest: digest },
  ] }));
  const r = await runProgram('nydus-image', ['create', '-t', 'estargztoc-ref', '--blob-id', 'ab'.repeat(32), '-B', join(work.dir, 'b'), toc]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the chunks of "f" do not fit chunk size 0x2000/);
  assert.ok(!existsSync(join(work.dir, 'b')), 'nothing is written');
  writeFileSync(toc, JSON.stringify({ version: 2, entries: [] }));
  const v = await runProgram('nydus-image', ['create', '-t', 'estargztoc-ref', '--blob-id', 'ab'.repeat(32), '-B', join(work.dir, 'b'), toc]);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /unsupported TOC version 2/);
  const plain = join(work.dir, 'plain.tar.gz');
  await runOk('sh', ['-c', `echo hi > '${work.dir}/x' && tar -C '${work.dir}' -cf - x | gzip > '${plain}'`]);
  const n = await runProgram('nydus-image', ['create', '-t', 'estargz-ref', '-B', join(work.dir, 'b'), plain]);
  assert.equal(n.code, 1);
  assert.match(n.stderr, /no eStargz footer/);
});
