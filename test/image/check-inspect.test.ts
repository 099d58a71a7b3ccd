// nydus-image check and inspect as a user runs them: summaries of the fixtures, every
// chunk verified, corrupted blobs and bootstraps reported with one line and exit 1.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { haveFixtures, need, V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';

const work = mkdtempSync(join(tmpdir(), 'nydus-check-'));
after(() => rmSync(work, { recursive: true, force: true }));

const V5_BLOB = '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00';
const V6_BLOB = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';

test('check v5 and v6 fixtures: summary JSON and every chunk verified', async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
  for (const [fixture, blob, expect] of [
    [V5_FIXTURE, V5_BLOB, { fs_version: '5', compressor: 'none', digester: 'sha256', chunks: 23, dirs: 24, files: 21, symlinks: 7 }],
    [V6_FIXTURE, V6_BLOB, { fs_version: '6', compressor: 'zstd', digester: 'blake3', chunks: 2, dirs: 1, files: 2, symlinks: 0 }],
  ] as const) {
    const json = join(work, `${expect.fs_version}.json`);
    const r = await runProgram('nydus-image', ['check', '--bootstrap', join(fixture, 'bootstrap'), '--blob-dir', join(fixture, 'blobs'), '--output-json', json]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(s.fs_version, expect.fs_version);
    assert.equal(s.compressor, expect.compressor);
    assert.equal(s.digester, expect.digester);
    assert.equal(s.chunk_size, 0x100000);
    assert.deepEqual(s.blobs, [blob]);
    assert.equal(s.chunks_verified, expect.chunks);
    assert.deepEqual(s.chunk_failures, []);
    assert.equal(s.counts.dirs, expect.dirs);
    assert.equal(s.counts.files, expect.files);
    assert.equal(s.counts.symlinks, expect.symlinks);
    assert.match(r.stdout, new RegExp(`${expect.chunks} chunks verified, 0 failed`));
  }
});

test('check reports a corrupted blob: one line, exit 1, the bad chunk named', async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
  for (const [fixture, blob] of [
    [V5_FIXTURE, V5_BLOB],
    [V6_FIXTURE, V6_BLOB],
  ]) {
    const dir = join(work, `bad-${blob.slice(0, 6)}`);
    mkdirSync(dir);
    const bytes = readFileSync(join(fixture, 'blobs', blob));
    bytes[100] ^= 0x5a; // inside the first chunk of both blobs
    writeFileSync(join(dir, blob), bytes);
    const r = await runProgram('nydus-image', ['check', join(fixture, 'bootstrap'), '-D', dir]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /^nydus-image: ERR_STORAGE_DIGEST_MISMATCH: image check failed: 1 chunk\(s\) bad, first: ERR_STORAGE_(DIGEST_MISMATCH|DECOMPRESS): .+\n$/);
    assert.match(r.stdout, /FAILED [0-9a-f]{64}#0: /);
  }
});

test('check refuses corrupt bootstraps with one line and exit 1', async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
  const orig = readFileSync(join(V5_FIXTURE, 'bootstrap'));
  const cases: Array<[string, Buffer]> = [
    ['truncated', orig.subarray(0, 9000)],
    ['zeroed-superblock', Buffer.concat([Buffer.alloc(64), orig.subarray(64)])],
    ['zeroed-inodes', Buffer.concat([orig.subarray(0, 8600), Buffer.alloc(orig.length - 8600)])],
    ['empty', Buffer.alloc(0)],
  ];
  for (const [name, bytes] of cases) {
    const p = join(work, `boot-${name}`);
    writeFileSync(p, bytes);
    const r = await runProgram('nydus-image', ['check', p]);
    assert.equal(r.code, 1, `${name}: ${r.stdout}`);
    assert.match(r.stderr, /^nydus-image: ERR_RAFS_[A-Z_]+: [^\n]+\n$/, name);
  }
});

test('inspect answers stats, blobs and prefetch as JSON', async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
  const ask = async (fixture: string, req: string) => {
    const r = await runProgram('nydus-image', ['inspect', join(fixture, 'bootstrap'), '--request', req]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const v5 = await ask(V5_FIXTURE, 'stats');
  assert.equal(v5.inodes_count, 51);
  assert.equal(v5.fs_version, 5);
  const v6 = await ask(V6_FIXTURE, 'stats');
  assert.equal(v6.inodes_count, 3);
  assert.equal(v6.root_inode, 128);
  const blobs = await ask(V6_FIXTURE, 'blobs');
  assert.deepEqual(blobs.map((b: { blob_id: string }) => b.blob_id), [V6_BLOB]);
  assert.equal(blobs[0].compressed_size, 14554);
  assert.equal(blobs[0].decompressed_size, 36864);
  assert.deepEqual(await ask(V5_FIXTURE, 'prefetch'), []);
  const bad = await runProgram('nydus-image', ['inspect', join(V5_FIXTURE, 'bootstrap'), '-R', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^nydus-image: ERR_CLI_USAGE: unknown inspect request "nope"/);
});

test('a bootstrap copied next to other files is only read, never written', async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
  const dir = join(work, 'ro');
  mkdirSync(dir);
  copyFileSync(join(V6_FIXTURE, 'bootstrap'), join(dir, 'bootstrap'));
  copyFileSync(join(V6_FIXTURE, 'blobs', V6_BLOB), join(dir, V6_BLOB));
  const r = await runProgram('nydus-image', ['check', join(dir, 'bootstrap'), '--blob-dir', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(dir).sort(), ['bootstrap', V6_BLOB].sort(), 'no cache files written by check');
});

test("inspect -R ls, stat, icheck, chunk: upstream's text, then upstream's null", async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
  const ask = async (req: string): Promise<string> => {
    const r = await runProgram('nydus-image', ['inspect', join(V6_FIXTURE, 'bootstrap'), '-R', req]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.endsWith('null'), r.stdout);
    return r.stdout.slice(0, -4);
  };
  assert.equal(await ask('ls'), '-    133      "lib.rs"\n-    136      "sync_io.rs"\n');
  const stat = await ask('stat lib.rs');
  assert.ok(stat.startsWith('\nInode Number:       133\nName:               "lib.rs"\nSize:               16931\nParent:             128\nMode:               0x81A4\nPermissions:        100644\n'), stat);
  assert.match(stat, /^  Chunk list:\n        0 ->\n        file offset: 0, chunk index: 0\n        compressed size: 4828, decompressed size: 16931\n/m);
  assert.match(stat, new RegExp(`^        blob id: ${V6_BLOB}$`, 'm'));
  const icheck = await ask('icheck 136');
  assert.ok(icheck.startsWith('/sync_io.rs\n\nInode Number:       136\nName:               "sync_io.rs"\n'), icheck);
  const chunk = await ask('chunk 4828');
  assert.ok(chunk.startsWith(`\nFile: ${'sync_io.rs'.padEnd(32)} Parent Path: ${'/'.padEnd(32)}\nCompressed Offset: 4828, Compressed Size: 2974\n`), chunk);
  assert.match(chunk, new RegExp(`^Blob ID: ${V6_BLOB}$`, 'm'));
  assert.equal(await ask('chunk 1'), '');
  for (const bad of ['icheck', 'icheck x', 'ls extra', 'nope']) {
    const r = await runProgram('nydus-image', ['inspect', join(V6_FIXTURE, 'bootstrap'), '-R', bad]);
    assert.equal(r.code, 2, bad);
    assert.match(r.stderr, /^nydus-image: ERR_CLI_USAGE: /);
  }
});
