// `nydus-image create` as a user meets it: blob files named by their id (docs/format.md
// §7.7), byte-identical --repeatable builds, atomic outputs when a build is killed or
// interrupted, prefetch lists from stdin, flag validation, and a progress bar only on a
// terminal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, need, programArgv } from '../helpers/env.js';
import { runCommand, runProgram } from '../helpers/run.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { makeRichTree } from './tree-helpers.js';
import { create, scratch } from './image-helpers.js';

const work = scratch('create-cli');
const src = join(work.dir, 'src');
after(() => work.cleanup());
before(() => {
  if (isRoot()) makeRichTree(src);
  else {
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'd', 'f'), 'file');
  }
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('blob files are named by their id; with blob-toc the id skips the digest array', async () => {
  for (const [tag, args] of [
    ['v5', ['--fs-version', '5']],
    ['v6', []],
    ['v6-toc', ['--features', 'blob-toc']],
  ] as const) {
    const built = await create(src, join(work.dir, `named-${tag}`), [...args]);
    const [id] = built.json.blobs;
    const file = readFileSync(join(built.blobDir, id));
    if (tag !== 'v6-toc') {
      assert.equal(sha256(file), id, tag);
      continue;
    }
    // Locate blob.digest through the ToC (last 512 bytes: tar header; entries before it).
    const sb = await openBootstrap(built.bootstrap);
    const tocSize = sb.blobs[0].blobTocSize - 512;
    const toc = file.subarray(file.length - 512 - tocSize, file.length - 512);
    let digestAt = -1;
    let digestLen = 0;
    for (let e = 0; e < toc.length; e += 128) {
      if (toc.toString('latin1', e + 8, e + 24).replace(/\0+$/, '') === 'blob.digest') {
        digestAt = Number(toc.readBigUInt64LE(e + 56));
        digestLen = Number(toc.readBigUInt64LE(e + 64));
      }
    }
    assert.ok(digestAt > 0, 'blob.digest entry in the ToC');
    assert.equal(sha256(Buffer.concat([file.subarray(0, digestAt), file.subarray(digestAt + digestLen)])), id);
    assert.notEqual(sha256(file), id);
  }
});

test('--repeatable builds are byte-identical across runs (directory and tar, v5 and v6)', async () => {
  const tar = join(work.dir, 'src.tar');
  assert.equal((await runCommand('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '-cf', tar, '-C', src, '.'])).code, 0);
  for (const [source, type] of [
    [src, 'dir-rafs'],
    [tar, 'tar-rafs'],
  ]) {
    for (const version of ['5', '6']) {
      const runs = [];
      for (const n of [1, 2]) runs.push(await create(source, join(work.dir, `rep-${type}-${version}-${n}`), ['--repeatable', '--type', type, '--fs-version', version]));
      assert.deepEqual(readFileSync(runs[0].bootstrap), readFileSync(runs[1].bootstrap), `${type} v${version} bootstrap`);
      assert.deepEqual(runs[0].json.blobs, runs[1].json.blobs);
      const [id] = runs[0].json.blobs;
      assert.deepEqual(readFileSync(join(runs[0].blobDir, id)), readFileSync(join(runs[1].blobDir, id)));
    }
  }
});

test('a gzip-compressed layer (targz-rafs) builds the same image as the plain tar', async () => {
  const tar = join(work.dir, 'layer.tar');
  assert.equal((await runCommand('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '-cf', tar, '-C', src, '.'])).code, 0);
  assert.equal((await runCommand('gzip', ['-k', tar])).code, 0);
  const plain = await create(tar, join(work.dir, 'gz-plain'), ['--type', 'tar-rafs', '--repeatable']);
  const gz = await create(`${tar}.gz`, join(work.dir, 'gz-gz'), ['--type', 'targz-rafs', '--repeatable']);
  assert.deepEqual(readFileSync(gz.bootstrap), readFileSync(plain.bootstrap));
  assert.deepEqual(gz.json.blobs, plain.json.blobs);
});

test('--blob FILE writes the blob there instead of naming it by its id', async () => {
  const out = join(work.dir, 'single-blob');
  mkdirSync(out);
  const r = await runProgram('nydus-image', ['create', src, '-B', join(out, 'bootstrap'), '--blob', join(out, 'the-blob')]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['bootstrap', 'the-blob']);
  const sb = await openBootstrap(join(out, 'bootstrap'));
  assert.equal(sb.blobs[0].compressedSize, statSync(join(out, 'the-blob')).size);
  const u = await runProgram('nydus-image', ['unpack', join(out, 'bootstrap'), '--blob', join(out, 'the-blob'), '--output', join(out, 'x.tar')]);
  assert.equal(u.code, 0, u.stderr);
});

async function bigSource(): Promise<string> {
  const dir = join(work.dir, 'big-src');
  if (existsSync(dir)) return dir;
  mkdirSync(dir);
  // Random data: slow to compress, so that a signal lands mid-build.
  const r = await runCommand('sh', ['-c', `for i in 1 2 3 4 5 6; do head -c 50331648 /dev/urandom > ${dir}/f$i; done`]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

for (const signal of ['SIGKILL', 'SIGINT'] as const) {
  test(`a build stopped by ${signal} leaves no output that looks finished`, async () => {
    const source = await bigSource();
    const out = join(work.dir, `sig-${signal}`);
    mkdirSync(join(out, 'blobs'), { recursive: true });
    const [cmd, ...pre] = programArgv('nydus-image');
    const child = spawn(cmd, [...pre, 'create', source, '-B', join(out, 'bootstrap'), '-D', join(out, 'blobs')], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Wait until the blob is being written, then stop the build.
    for (let i = 0; i < 600; i++) {
      const names = readdirSync(join(out, 'blobs'));
      if (names.some((n) => n.includes('.partial') && statSync(join(out, 'blobs', n)).size > 0)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(readdirSync(join(out, 'blobs')).some((n) => n.includes('.partial')), 'the build had started writing');
    child.kill(signal);
    const code = await exited;
    assert.ok(!existsSync(join(out, 'bootstrap')), 'no bootstrap');
    const left = readdirSync(join(out, 'blobs'));
    assert.ok(left.every((n) => n.startsWith('.') && n.includes('.partial-')), `only hidden partial files: ${left}`);
    if (signal === 'SIGINT') {
      assert.equal(code, 130);
      assert.deepEqual(left, [], 'SIGINT removes the partial files');
    }
  });
}

test('--prefetch-policy fs: the listed paths form the prefetch table and their data comes first', async (t) => {
  if (!need(t, isRoot(), 'needs the rich tree')) return;
  const built = await create(src, join(work.dir, 'prefetch'), ['--prefetch-policy', 'fs'], '/dir/sub\nrelative/ignored\n/big.bin\n/dir/sub/deeper\n/missing\n');
  assert.match(built.run.stderr, /ignoring prefetch pattern "relative\/ignored"/);
  assert.match(built.run.stderr, /ignoring prefetch pattern "\/dir\/sub\/deeper": covered/);
  const sb = await openBootstrap(built.bootstrap);
  const dir = sb.lookup(sb.lookup(sb.rootIno, Buffer.from('dir')) as number, Buffer.from('sub')) as number;
  const big = sb.lookup(sb.rootIno, Buffer.from('big.bin')) as number;
  assert.deepEqual(sb.prefetchList(), [dir, big]);
  // Blob order: /dir/sub's files (another-hardlink = small.txt, then deeper/leaf), then
  // /big.bin, then everything else.
  const offset = (ino: number): number => sb.fileChunks(ino, 0, 1)[0].compressedOffset;
  const small = sb.lookup(dir, Buffer.from('another-hardlink')) as number;
  const leaf = sb.lookup(sb.lookup(dir, Buffer.from('deeper')) as number, Buffer.from('leaf')) as number;
  const other = sb.lookup(sb.rootIno, Buffer.from('suid')) as number;
  assert.equal(offset(small), 0);
  assert.ok(offset(small) < offset(leaf) && offset(leaf) < offset(big) && offset(big) < offset(other));
});

test('flags are validated with clear messages', async () => {
  const out = join(work.dir, 'flags');
  mkdirSync(join(out, 'blobs'), { recursive: true });
  const run = (args: string[]) => runProgram('nydus-image', ['create', src, '-B', join(out, 'b'), '-D', join(out, 'blobs'), ...args]);
  for (const [args, code, pattern] of [
    [['--chunk-size', '0x3000'], 1, /chunk size 0x3000 must be a power of two/],
    [['--chunk-size', '0x2000000'], 1, /chunk size 0x2000000/],
    [['--chunk-size', 'big'], 2, /invalid chunk size "big"/],
    [['--fs-version', '5', '--features', 'blob-toc'], 1, /blob-toc needs --fs-version 6/],
    [['--type', 'estargz-rafs'], 2, /conversion type estargz-rafs is not supported/],
    [['--type', 'estargz-ref'], 1, /not a regular file/],
    [['--type', 'estargz-ref', '--blob-id', 'a'.repeat(64)], 2, /--blob-id \(the layer's digest is its id\) is not supported with --type estargz-ref/],
    [['--type', 'estargztoc-ref'], 2, /--blob-id \(the layer's sha256\) is required with --type estargztoc-ref/],
    [['--type', 'estargztoc-ref', '--blob-id', 'zz'], 2, /--blob-dir \(only the bootstrap is written\) is not supported/],
    [['--blob-data-size', '10'], 2, /--blob-data-size is only for --type estargztoc-ref/],
    [['--type', 'targz-ref'], 1, /not a regular file/],
    [['--type', 'targz-ref', '--fs-version', '5'], 2, /--fs-version 5 is not supported with --type targz-ref/],
    [['--type', 'targz-ref', '--blob-inline-meta'], 1, /--bootstrap conflicts with --blob-inline-meta for targz-ref/],
    [['--type', 'targz-ref', '--features', 'blob-toc'], 1, /--features blob-toc with --type targz-ref needs --blob-inline-meta$/m],
    [['--type', 'targz-ref', '--features', 'blob-digest'], 2, /argument 'blob-digest' is invalid/],
    [['--type', 'zip-rafs'], 2, /invalid/],
    [['--compressor', 'gzip'], 2, /invalid/],
    [['--encrypt'], 2, /not supported/],
  ] as const) {
    const r = await run([...args]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  const plain = join(out, 'plain.tar');
  writeFileSync(plain, Buffer.alloc(1024));
  const notGzip = await runProgram('nydus-image', ['create', '-t', 'targz-ref', '-B', join(out, 'b'), '-D', join(out, 'blobs'), plain]);
  assert.equal(notGzip.code, 1);
  assert.match(notGzip.stderr, /not a gzip stream \(targz-ref indexes a \.tar\.gz/);
  const nothing = await runProgram('nydus-image', ['create', src]);
  assert.equal(nothing.code, 1);
  assert.match(nothing.stderr, /both --blob and --blob-dir are missing/);
  for (const [size, want] of [
    ['0x10000', 0x10000],
    ['4096', 4096],
  ] as const) {
    const r = await run(['--chunk-size', size]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await openBootstrap(join(out, 'b'))).chunkSize, want);
  }
  assert.deepEqual(readdirSync(join(out, 'blobs')).filter((n) => n.startsWith('.')), []);
});

test('progress: a bar on a terminal, nothing when not a terminal', async (t) => {
  const quiet = await create(src, join(work.dir, 'quiet'), []);
  assert.doesNotMatch(quiet.run.stderr, /entries|\/s/);
  const script = await runCommand('sh', ['-c', 'command -v script']);
  if (!need(t, script.code === 0, 'needs script(1) for a pseudo-terminal')) return;
  const out = join(work.dir, 'tty');
  mkdirSync(join(out, 'blobs'), { recursive: true });
  const cmdline = [...programArgv('nydus-image'), 'create', src, '-B', join(out, 'b'), '-D', join(out, 'blobs')].map((a) => `'${a}'`).join(' ');
  const r = await runCommand('script', ['-qec', cmdline, '/dev/null']);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /entries \| .*B.* \| .*B\/s/);
});
