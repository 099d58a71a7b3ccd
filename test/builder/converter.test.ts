// nydus-snapshotter's converter (pkg/converter) replayed against this nydus-image: its
// exact command lines, the layer tar written into a FIFO and the blob read back from
// another FIFO as it is produced, `image.boot` pulled out of each blob's tail the way the
// converter does it (ToC first, then tar headers from the end), `merge` with
// --output-json/--blob-digests/--blob-sizes, then this nydusd serving the merged image
// from a localfs directory whose files are named by the blobs' digests. The result must
// equal the layers applied one over the other by GNU tar. `--oci-ref` (packRef) too: the
// original .tar.gz through the FIFO, a targz-ref blob out, merge with --blob-toc-digests.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { decompress as zstdDecompress } from 'zstd-napi';
import { loadImage } from '../../src/builder/from-bootstrap.js';
import { openBootstrap, walk } from '../../src/rafs/index.js';
import { isRoot, need, programArgv } from '../helpers/env.js';
import { runCommand, runProgram } from '../helpers/run.js';
import { compareTrees } from './tree-helpers.js';
import { nydusdMount, scratch } from './image-helpers.js';
import { stampAndTar, writeFiles } from './layer-helpers.js';

const work = scratch('converter');
after(() => work.cleanup());
const layerDirs = [1, 2, 3].map((n) => join(work.dir, `layer${n}`));
const layerTars = [1, 2, 3].map((n) => join(work.dir, `layer${n}.tar`));

/** Bytes that compress poorly, spanning several 1 MiB chunks. */
function noise(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let h = Buffer.from(String(seed));
  for (let off = 0; off < n; off += 32) {
    h = createHash('sha256').update(h).digest();
    h.copy(out, off);
  }
  return out;
}

before(async () => {
  writeFiles(layerDirs[0], { a: 'a1', 'b/c': 'c1', 'b/d/e': 'e1', keep: 'k1', 'del-dir/x': 'x1', big: noise(2_500_000, 1), 'empty-dir': null });
  writeFiles(layerDirs[1], { '.wh.a': '', 'b/.wh..wh..opq': '', 'b/new': 'new2', '.wh.del-dir': '', keep: 'k2', added: 'added2', big2: noise(1_200_000, 2) });
  // A layer of whiteouts only: its blob holds no chunk, only metadata.
  writeFiles(layerDirs[2], { '.wh.added': '', 'b/.wh.new': '' });
  await stampAndTar(layerDirs, layerTars);
});

interface PackedLayer {
  /** sha256 of the whole blob: the layer's registry digest. */
  digest: string;
  size: number;
  blob: string;
  /** `--oci-ref`: the digest of the original .tar.gz layer the blob indexes. */
  original?: string;
}

interface FifoRun {
  code: number | null;
  stderr: string;
  /** What came out of the blob FIFO, and its sha256. */
  partial: string;
  digest: string;
}

/**
 * The builder run the converter's way: `source` copied into one FIFO while the blob is
 * copied out of another into `blobs`, both while `nydus-image create ARGS --blob FIFO FIFO` runs.
 */
async function runThroughFifos(source: string, dir: string, blobs: string, args: string[], stdin?: string): Promise<FifoRun> {
  mkdirSync(dir, { recursive: true });
  const tarFifo = join(dir, 'blob.targz');
  const blobFifo = join(dir, 'blob.rafs');
  for (const f of [tarFifo, blobFifo]) assert.equal((await runCommand('mkfifo', [f])).code, 0);
  const [cmd, ...pre] = programArgv('nydus-image');
  const argv = ['create', '--log-level', 'warn', ...args.map((a) => (a === 'BLOB' ? blobFifo : a)), tarFifo];
  const child = spawn(cmd, [...pre, ...argv], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // packRef gives the builder no input at all; an ended pipe reads the same.
  child.stdin.end(stdin);
  const hash = createHash('sha256');
  const partial = join(blobs, `.partial-${Date.now()}`);
  const out = createWriteStream(partial);
  const copyOut = pipeline(
    createReadStream(blobFifo),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const piece of source) {
        hash.update(piece);
        yield piece;
      }
    },
    out,
  );
  const copyIn = pipeline(createReadStream(source), createWriteStream(tarFifo));
  const [code] = await Promise.all([exited, copyIn, copyOut]);
  return { code, stderr, partial, digest: hash.digest('hex') };
}

/** A successful `runThroughFifos`, its blob named by its digest in `blobs`. */
async function packThroughFifos(source: string, dir: string, blobs: string, args: string[], stdin?: string): Promise<PackedLayer> {
  const r = await runThroughFifos(source, dir, blobs, args, stdin);
  assert.equal(r.code, 0, r.stderr);
  const blob = join(blobs, r.digest);
  rmSync(blob, { force: true });
  await runCommand('mv', [r.partial, blob]);
  return { digest: r.digest, size: statSync(blob).size, blob };
}

/** `tool.Pack` as `packFromTar` runs it for a layer tar. */
function packLayer(tar: string, dir: string, blobs: string, extra: string[] = []): Promise<PackedLayer> {
  const args = ['--prefetch-policy', 'fs', '--blob', 'BLOB', '--whiteout-spec', 'none', '--fs-version', '6'];
  args.push('--type', 'tar-rafs', '--blob-inline-meta', '--features', 'blob-toc', ...extra);
  return packThroughFifos(tar, dir, blobs, args, '/');
}

/** `tool.packRef`'s arguments (`--oci-ref`): the original .tar.gz in, a RAFS blob that indexes it out. */
const PACK_REF_ARGS = ['--type', 'targz-ref', '--blob-inline-meta', '--features', 'blob-toc', '--blob', 'BLOB'];

async function packRefLayer(tgz: string, dir: string, blobs: string): Promise<PackedLayer> {
  const original = createHash('sha256').update(readFileSync(tgz)).digest('hex');
  return { ...(await packThroughFifos(tgz, dir, blobs, PACK_REF_ARGS)), original };
}

interface TarSection {
  name: string;
  offset: number;
  size: number;
}

/** The converter's `tar.Reader.Next` on the 512 bytes before `end`. */
function headerBefore(blob: Buffer, end: number): TarSection {
  const h = blob.subarray(end - 512, end);
  const name = h.toString('latin1', 0, 100).replace(/\0.*$/s, '');
  const size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim(), 8);
  assert.ok(h.toString('latin1', 257, 262) === 'ustar' && Number.isSafeInteger(size), `no tar header before ${end}`);
  return { name, offset: end - 512 - size, size };
}

/** `seekFileByTarHeader`: walk the headers from the end of the blob. */
function seekByTarHeader(blob: Buffer, target: string): Buffer | undefined {
  for (let end = blob.length; end >= 512; ) {
    const s = headerBefore(blob, end);
    assert.ok(s.offset >= 0, `section ${s.name} does not fit`);
    if (s.name === target) return blob.subarray(s.offset, s.offset + s.size);
    end = s.offset;
  }
  return undefined;
}

/** `seekFileByTOC`: the ToC entry's bytes, zstd-decoded when flagged. */
async function seekByToc(blob: Buffer, target: string): Promise<Buffer | undefined> {
  const toc = seekByTarHeader(blob, 'rafs.blob.toc');
  if (!toc) return undefined;
  assert.equal(toc.length % 128, 0);
  for (let at = 0; at < toc.length; at += 128) {
    const e = toc.subarray(at, at + 128);
    if (e.toString('latin1', 8, 24).replace(/\0.*$/s, '') !== target) continue;
    const flags = e.readUInt32LE(0);
    const off = Number(e.readBigUInt64LE(56));
    const data = blob.subarray(off, off + Number(e.readBigUInt64LE(64)));
    if (flags === 0x2) return zstdDecompress(data);
    assert.equal(flags, 0x1, `compressor flags 0x${flags.toString(16)}`);
    return data;
  }
  return undefined;
}

/** `UnpackEntry(ra, "image.boot", w)`: by the ToC, else by the tar headers. */
async function unpackEntry(blobPath: string, target: string): Promise<Buffer> {
  const blob = readFileSync(blobPath);
  const found = (await seekByToc(blob, target)) ?? seekByTarHeader(blob, target);
  assert.ok(found, `${target} not found in ${blobPath}`);
  return found;
}

/** The layers applied in order by GNU tar, OCI whiteouts honoured between layers. */
async function applyWithTar(tars: string[], dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true });
  for (const tar of tars) {
    const list = await runCommand('tar', ['-tf', tar]);
    assert.equal(list.code, 0, list.stderr);
    for (const entry of list.stdout.split('\n').filter(Boolean)) {
      const path = entry.replace(/^\.\//, '');
      const slash = path.lastIndexOf('/');
      const dir = slash < 0 ? '' : path.slice(0, slash);
      const name = path.slice(slash + 1);
      if (name === '.wh..wh..opq') {
        for (const c of readdirSync(join(dest, dir))) rmSync(join(dest, dir, c), { recursive: true, force: true });
      } else if (name.startsWith('.wh.')) {
        rmSync(join(dest, dir, name.slice(4)), { recursive: true, force: true });
      }
    }
    const x = await runCommand('tar', ['-xpf', tar, '--numeric-owner', '--same-owner', '--exclude=.wh.*', '-C', dest]);
    assert.equal(x.code, 0, x.stderr);
  }
}

/** `calcBlobTOCDigest`: sha256 of the ToC section's payload (its entries). */
function tocDigest(blobPath: string): string {
  const toc = seekByTarHeader(readFileSync(blobPath), 'rafs.blob.toc');
  assert.ok(toc, `no ToC in ${blobPath}`);
  return createHash('sha256').update(toc).digest('hex');
}

/**
 * The converter's `Merge`: each layer's image.boot extracted into a file named by its
 * digest (an `--oci-ref` layer's: by its original layer's), then `merge`, with the
 * per-layer lists (--blob-digests/--blob-sizes, and --blob-toc-digests for `--oci-ref`)
 * unless `opts.lists` is false (the tar-rafs path), and its `--chunk-dict` when given.
 */
async function mergeLayers(layers: PackedLayer[], dir: string, opts: { lists?: boolean; chunkDict?: string } = {}): Promise<{ bootstrap: string; blobs: string[] }> {
  mkdirSync(dir, { recursive: true });
  const sources: string[] = [];
  for (const l of layers) {
    const path = join(dir, l.original ?? l.digest);
    writeFileSync(path, await unpackEntry(l.blob, 'image.boot'));
    sources.push(path);
  }
  const lists: string[] = [];
  if (opts.lists !== false) {
    lists.push('--blob-digests', layers.map((l) => l.digest).join(','));
    if (layers.every((l) => l.original !== undefined)) lists.push('--blob-toc-digests', layers.map((l) => tocDigest(l.blob)).join(','));
    lists.push('--blob-sizes', layers.map((l) => String(l.size)).join(','));
  }
  const bootstrap = join(dir, 'bootstrap');
  const json = join(dir, 'merge-output.json');
  const r = await runProgram(
    'nydus-image',
    [
      'merge',
      '--log-level',
      'warn',
      '--prefetch-policy',
      'fs',
      '--output-json',
      json,
      '--bootstrap',
      bootstrap,
      ...(opts.chunkDict === undefined ? [] : ['--chunk-dict', `bootstrap=${opts.chunkDict}`]),
      ...sources,
      ...lists,
    ],
    { input: '/' },
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(readFileSync(json, 'utf8')) as { blobs: string[] };
  return { bootstrap, blobs: out.blobs };
}

const ready = (): boolean => isRoot() && existsSync('/dev/fuse');

/** A test's own directory under the scratch dir, with an empty `blobs` directory in it. */
function testDirs(name: string): { out: string; blobs: string } {
  const out = join(work.dir, name);
  const blobs = join(out, 'blobs');
  mkdirSync(blobs, { recursive: true });
  return { out, blobs };
}

/** Serves `bootstrap` with nydusd from `blobs` and checks the tree against `expected`. */
async function expectServed(bootstrap: string, blobs: string, out: string, expected: string, more?: (mnt: string) => void): Promise<void> {
  const m = await nydusdMount(bootstrap, blobs, join(out, 'mnt'), join(out, 'state'));
  try {
    assert.deepEqual(compareTrees(expected, m.dir, { ignoreRootMtime: true }), []);
    more?.(m.dir);
  } finally {
    await m.close();
  }
}

for (const [count, extra] of [
  [1, []],
  [3, []],
  [3, ['--compressor', 'none']],
] as const) {
  test(`converter replay, ${count} layer(s) ${extra.join(' ')}: FIFOs, image.boot from the blob tail, merge, nydusd = GNU tar`, async (t) => {
    if (!need(t, ready(), 'needs root and /dev/fuse')) return;
    const { out, blobs } = testDirs(`replay-${count}${extra.join('')}`);
    const layers: PackedLayer[] = [];
    for (let i = 0; i < count; i++) layers.push(await packLayer(layerTars[i], join(out, `pack${i}`), blobs, [...extra]));
    // Each blob ends with the ToC; its id in create's JSON is the registry digest.
    for (const l of layers) {
      const blob = readFileSync(l.blob);
      assert.equal(headerBefore(blob, l.size).name, 'rafs.blob.toc');
      // Walking every header back to the data section agrees with the ToC.
      const data = seekByTarHeader(blob, 'image.blob');
      assert.ok(data);
      assert.deepEqual(data, await seekByToc(blob, 'image.blob'));
    }
    const merged = await mergeLayers(layers, join(out, 'merge'));
    assert.deepEqual(merged.blobs, layers.map((l) => l.digest));
    const expected = join(out, 'expected');
    await applyWithTar(layerTars.slice(0, count), expected);
    await expectServed(merged.bootstrap, blobs, out, expected);
  });
}

test('create -J names an inline-meta blob by the sha256 of the whole file, through FIFOs', async () => {
  const { out, blobs } = testDirs('json');
  const json = join(out, 'create.json');
  const l = await packLayer(layerTars[0], join(out, 'pack'), blobs, ['--output-json', json]);
  const j = JSON.parse(readFileSync(json, 'utf8')) as { blobs: string[]; bootstrap: string; version: string };
  assert.deepEqual(j.blobs, [l.digest]);
  assert.equal(j.bootstrap, '');
  // The bootstrap found by the tar headers alone equals the one the ToC gives.
  const blob = readFileSync(l.blob);
  const byToc = await seekByToc(blob, 'image.boot');
  const raw = seekByTarHeader(blob, 'image.boot');
  assert.ok(byToc && raw);
  assert.deepEqual(raw.length === byToc.length ? raw : zstdDecompress(raw), byToc);
  // check and unpack take the blob itself as the bootstrap, as upstream does.
  const check = await runProgram('nydus-image', ['check', '--bootstrap', l.blob, '-D', blobs]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /chunk data: 8 chunks verified, 0 failed/);
  const tarOut = join(out, 'unpacked.tar');
  const unpack = await runProgram('nydus-image', ['unpack', '--log-level', 'warn', '--bootstrap', l.blob, '--output', tarOut, '--blob', l.blob]);
  assert.equal(unpack.code, 0, unpack.stderr);
  const listed = await runCommand('tar', ['-tf', tarOut]);
  assert.match(listed.stdout, /big/);
  // The converter's Unpack: image.boot and image.blob pulled out of the blob, then unpack.
  const boot = join(out, 'image.boot');
  const data = join(out, 'image.blob');
  writeFileSync(boot, await unpackEntry(l.blob, 'image.boot'));
  writeFileSync(data, await unpackEntry(l.blob, 'image.blob'));
  const tarConv = join(out, 'unpacked-conv.tar');
  const conv = await runProgram('nydus-image', ['unpack', '--log-level', 'warn', '--bootstrap', boot, '--output', tarConv, '--blob', data]);
  assert.equal(conv.code, 0, conv.stderr);
  assert.deepEqual(readFileSync(tarConv), readFileSync(tarOut));
  // The older form of the converter's unpack: the backend's JSON config on the command line.
  const tarOld = join(out, 'unpacked-old.tar');
  const old = await runProgram('nydus-image', [
    'unpack',
    '--log-level',
    'warn',
    '--bootstrap',
    l.blob,
    '--output',
    tarOld,
    '--backend-type',
    'localfs',
    '--backend-config',
    JSON.stringify({ dir: blobs }),
  ]);
  assert.equal(old.code, 0, old.stderr);
  assert.deepEqual(readFileSync(tarOld), readFileSync(tarOut));
  const bad = await runProgram('nydus-image', ['unpack', '--bootstrap', l.blob, '--output', join(out, 'x.tar'), '--backend-type', 'localfs', '--backend-config', '{nope']);
  assert.equal(bad.code, 2, 'a malformed flag value is a usage error');
  assert.match(bad.stderr, /^nydus-image: ERR_CLI_USAGE: invalid --backend-config JSON/);
});

test('the older directory form: --source-type directory --inline-bootstrap, v5 and v6, bootstrap by tar headers', async (t) => {
  if (!need(t, ready(), 'needs root and /dev/fuse')) return;
  for (const version of ['5', '6']) {
    const { out, blobs } = testDirs(`dir-v${version}`);
    const tmp = join(out, 'blob');
    const args = ['create', '--log-level', 'warn', '--prefetch-policy', 'fs', '--blob', tmp, '--source-type', 'directory'];
    const r = await runProgram('nydus-image', [...args, '--whiteout-spec', 'none', '--fs-version', version, '--inline-bootstrap', layerDirs[0]], { input: '/' });
    assert.equal(r.code, 0, r.stderr);
    const digest = createHash('sha256').update(readFileSync(tmp)).digest('hex');
    await runCommand('mv', [tmp, join(blobs, digest)]);
    const blob = readFileSync(join(blobs, digest));
    assert.equal(headerBefore(blob, blob.length).name, 'image.boot', 'no ToC without --features blob-toc');
    const merged = await mergeLayers([{ digest, size: blob.length, blob: join(blobs, digest) }], join(out, 'merge'));
    // The builder records the root's mtime as 0: a v6 root shows it as the kernel's
    // erofs does; a v5 root shows the daemon's start time, as upstream nydusd does.
    await expectServed(merged.bootstrap, blobs, out, layerDirs[0], (mnt) => {
      const rootMtime = statSync(mnt).mtimeMs;
      if (version === '6') assert.equal(rootMtime, 0);
      else assert.ok(rootMtime > Date.now() - 3_600_000);
    });
  }
});

/** Names of the ToC entries of a blob, in order. */
function tocNames(blob: Buffer): string[] {
  const toc = seekByTarHeader(blob, 'rafs.blob.toc');
  assert.ok(toc);
  const names: string[] = [];
  for (let at = 0; at < toc.length; at += 128) names.push(toc.toString('latin1', at + 8, at + 24).replace(/\0.*$/s, ''));
  return names;
}

test('packRef replay (--oci-ref), 3 layers: .tar.gz into a FIFO, the RAFS blob out of one, merge with the OCIRef lists, nydusd serves GNU tar\'s tree from the original layers', async (t) => {
  if (!need(t, ready(), 'needs root and /dev/fuse')) return;
  const { out, blobs } = testDirs('packref');
  const layers: PackedLayer[] = [];
  for (const [i, tar] of layerTars.entries()) {
    const tgz = join(out, `layer${i}.tar.gz`);
    assert.equal((await runCommand('sh', ['-c', `gzip -c < '${tar}' > '${tgz}'`])).code, 0);
    const original = readFileSync(tgz);
    const l = await packRefLayer(tgz, join(out, `pack${i}`), blobs);
    assert.ok(readFileSync(tgz).equals(original), 'the original layer is untouched');
    assert.equal(l.original, createHash('sha256').update(original).digest('hex'));
    // The registry keeps the original layer under its digest, beside the converter's blob.
    writeFileSync(join(blobs, l.original), original);
    // Upstream's zran RAFS blob: the blob meta, the chunk digests (none for a layer of
    // whiteouts only), the bootstrap and the ToC; no copy of the layer's data.
    const blob = readFileSync(l.blob);
    assert.equal(headerBefore(blob, l.size).name, 'rafs.blob.toc');
    const digests = i === 2 ? [] : ['blob.digest'];
    assert.deepEqual(tocNames(blob), ['blob.meta', 'blob.meta.header', ...digests, 'image.boot']);
    assert.equal(seekByTarHeader(blob, 'image.blob'), undefined);
    assert.ok(l.size < original.length / 4 || i === 2, `${l.size} bytes for a ${original.length}-byte layer`);
    // A regular file as the source gives the same bytes as the FIFO.
    const fromFile = join(out, `from-file${i}.blob`);
    const r = await runProgram('nydus-image', ['create', '--log-level', 'warn', '--type', 'targz-ref', '--blob-inline-meta', '--features', 'blob-toc', '--blob', fromFile, tgz]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(fromFile).equals(blob), 'the blob built from the file equals the one built through FIFOs');
    layers.push(l);
  }
  const merged = await mergeLayers(layers, join(out, 'merge'));
  // Each blob is the original layer; its meta blob is the converter's blob, by digest and size.
  assert.deepEqual(merged.blobs, layers.map((l) => l.original));
  const table = (await loadImage(merged.bootstrap, 'merged bootstrap')).blobs;
  assert.deepEqual(
    table.map((b) => [b.blobId, b.blobMetaDigest.toString('hex'), b.blobMetaSize, b.blobTocDigest.toString('hex')]),
    layers.map((l) => [l.original, l.digest, l.size, tocDigest(l.blob)]),
  );
  const expected = join(out, 'expected');
  await applyWithTar(layerTars, expected);
  await expectServed(merged.bootstrap, blobs, out, expected);
});

test('packRef on a bad layer: a clear error, and the blob FIFO ends (empty) instead of leaving its reader waiting', { timeout: 120_000 }, async () => {
  const { out, blobs } = testDirs('packref-bad');
  const truncated = join(out, 'truncated.tar.gz');
  assert.equal((await runCommand('sh', ['-c', `gzip -c < '${layerTars[0]}' | head -c 100000 > '${truncated}'`])).code, 0);
  for (const [source, message] of [
    [layerTars[2], /not a gzip stream \(targz-ref indexes a \.tar\.gz; a plain tar builds with tar-rafs\)/],
    [truncated, /failed to index the gzip stream: the stream ends inside a gzip member at offset 100000/],
  ] as const) {
    const r = await runThroughFifos(source, join(out, `pack-${source === truncated ? 'truncated' : 'plain'}`), blobs, PACK_REF_ARGS);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(statSync(r.partial).size, 0, 'nothing was written into the blob FIFO');
  }
});

test('nydusd serves an inline-meta blob given as its own bootstrap, named by its digest', async (t) => {
  if (!need(t, ready(), 'needs root and /dev/fuse')) return;
  const { out, blobs } = testDirs('direct');
  const l = await packLayer(layerTars[0], join(out, 'pack'), blobs);
  await expectServed(l.blob, blobs, out, layerDirs[0]);
});

test('tar-rafs with --blob-inline-meta records the same tree as dir-rafs from the directory', async () => {
  const { out, blobs } = testDirs('same-tree');
  const l = await packLayer(layerTars[0], join(out, 'pack'), blobs);
  const dirBoot = join(out, 'dir.boot');
  const r = await runProgram('nydus-image', ['create', '--type', 'dir-rafs', '--blob-dir', blobs, '--bootstrap', dirBoot, layerDirs[0]]);
  assert.equal(r.code, 0, r.stderr);
  const describe = async (path: string): Promise<string[]> => {
    const sb = await openBootstrap(path);
    const lines: string[] = [];
    for (const e of walk(sb)) {
      if (e.depth === 0) continue;
      const a = e.attr;
      const chunks = (a.mode & 0o170000) === 0o100000 ? sb.fileChunks(e.ino, 0, a.size).map((c) => c.digest.toString('hex')).join(',') : '';
      lines.push(`${e.path.toString()} ${a.mode.toString(8)} ${a.uid}:${a.gid} ${a.mtime}.${a.mtimeNsec} ${a.size} ${a.nlink} ${chunks}`);
    }
    return lines;
  };
  assert.deepEqual(await describe(l.blob), await describe(dirBoot));
});

test('converter with --chunk-dict bootstrap=P: a layer fully deduplicated against a dictionary', async (t) => {
  if (!need(t, ready(), 'needs root and /dev/fuse')) return;
  const { out, blobs } = testDirs('chunk-dict');
  const dictLayer = await packLayer(layerTars[0], join(out, 'pack-dict'), blobs);
  // The dictionary is a bootstrap named by its blob's digest, as the converter keeps them.
  mkdirSync(join(out, 'dict'));
  const dict = join(out, 'dict', dictLayer.digest);
  writeFileSync(dict, await unpackEntry(dictLayer.blob, 'image.boot'));
  const layer = await packLayer(layerTars[0], join(out, 'pack'), blobs, ['--chunk-dict', `bootstrap=${dict}`]);
  // Every chunk is in the dictionary: the new blob carries metadata only.
  assert.ok(layer.size < dictLayer.size / 10, `${layer.size} bytes`);
  const merged = await mergeLayers([layer], join(out, 'merge'), { lists: false, chunkDict: dict });
  assert.deepEqual(merged.blobs.sort(), [dictLayer.digest, layer.digest].sort());
  await expectServed(merged.bootstrap, blobs, out, layerDirs[0]);
});

test("create -h passes the converter's feature probe: --type tar-rafs yes, --batch-size no", async () => {
  const r = await runProgram('nydus-image', ['create', '-h']);
  assert.equal(r.code, 0, r.stderr);
  // detectFeature: the whole string, or both of its words.
  assert.ok(r.stdout.includes('--type') && r.stdout.includes('tar-rafs'));
  assert.ok(r.stdout.includes('--blob-inline-meta'));
  // Only --batch-size 0 is supported, so the converter must not think it can pass one.
  assert.ok(!r.stdout.includes('--batch-size'));
});

test('a gzip-compressed layer streams from a FIFO too (gzip found in the first bytes read)', async () => {
  const { out, blobs } = testDirs('gzip-fifo');
  const tgz = join(out, 'layer.tar.gz');
  assert.equal((await runCommand('sh', ['-c', `gzip -c < '${layerTars[0]}' > '${tgz}'`])).code, 0);
  const fifo = join(out, 'layer.fifo');
  assert.equal((await runCommand('mkfifo', [fifo])).code, 0);
  const boot = join(out, 'boot');
  const [r] = await Promise.all([
    runProgram('nydus-image', ['create', '--type', 'targz-rafs', '--blob-dir', blobs, '--bootstrap', boot, fifo]),
    pipeline(createReadStream(tgz), createWriteStream(fifo)),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const check = await runProgram('nydus-image', ['check', boot, '-D', blobs]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /chunk data: 8 chunks verified, 0 failed/);
});
