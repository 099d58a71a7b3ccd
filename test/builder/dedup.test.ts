// Chunk deduplication and what `create -J` and `stat` report about it: inside one build,
// against a parent image, against a chunk dictionary; blobs hold each chunk once and every
// image still reads back its exact tree.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, need } from '../helpers/env.js';
import { runCommand, runProgram } from '../helpers/run.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { compareTrees } from './tree-helpers.js';
import { create, scratch, unpackTo } from './image-helpers.js';

const work = scratch('dedup');
after(() => work.cleanup());
const MiB = 1 << 20;

/** Deterministic incompressible-ish bytes. */
function bytes(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

const A = bytes(1, MiB);
const Bc = bytes(2, MiB);
const C = bytes(3, MiB);
const D = bytes(4, MiB);
const base = join(work.dir, 'base');
const upper = join(work.dir, 'upper');

before(() => {
  mkdirSync(base);
  // 5 chunks of file data, 3 distinct (A twice, B twice).
  writeFileSync(join(base, 'ab'), Buffer.concat([A, Bc]));
  writeFileSync(join(base, 'a-again'), A);
  writeFileSync(join(base, 'b-and-tail'), Buffer.concat([Bc, C.subarray(0, 1000)]));
  mkdirSync(upper);
  // Shares A and B with base; C (full) and D are new.
  writeFileSync(join(upper, 'ab-copy'), Buffer.concat([A, Bc]));
  writeFileSync(join(upper, 'cd'), Buffer.concat([C, D]));
});

test('chunks repeated inside one build are stored once', async () => {
  const built = await create(base, join(work.dir, 'within'), ['--compressor', 'none']);
  const d = built.json.dedup;
  assert.equal(d.chunks, 5);
  assert.equal(d.unique_chunks, 3);
  assert.equal(d.dedup_within_build, 2);
  assert.equal(d.bytes_saved, 2 * MiB);
  assert.equal(d.file_bytes, 4 * MiB + 1000);
  assert.equal(d.stored_bytes, 2 * MiB + 1000);
  const sb = await openBootstrap(built.bootstrap);
  assert.equal(sb.blobs[0].chunkCount, 3);
  assert.match(built.run.stdout, /chunks: 5, unique: 3, deduplicated: 2, bytes saved: 2097152/);
});

for (const version of ['5', '6']) {
  test(`v${version}: --parent-bootstrap reuses the parent's chunks; the image reads back whole`, async (t) => {
    if (!need(t, isRoot(), 'needs root (tar -p)')) return;
    const parent = await create(base, join(work.dir, `parent-v${version}`), ['--fs-version', version]);
    const child = await create(upper, join(work.dir, `child-v${version}`), ['--fs-version', version, '--parent-bootstrap', parent.bootstrap]);
    const d = child.json.dedup;
    assert.equal(d.chunks, 4);
    assert.equal(d.dedup_from_parent, 2);
    assert.equal(d.unique_chunks, 2);
    assert.equal(d.bytes_saved, 2 * MiB);
    assert.deepEqual(child.json.blobs, [...parent.json.blobs, ...child.json.blobs.slice(1)]);
    assert.equal(child.json.blobs.length, 2);
    // Parent files and upper files together, read through both blobs.
    const blobs = join(work.dir, `all-v${version}`);
    mkdirSync(blobs);
    for (const dir of [parent.blobDir, child.blobDir]) for (const f of readdirSync(dir)) cpSync(join(dir, f), join(blobs, f));
    const merged = join(work.dir, `merged-src-v${version}`);
    assert.equal((await runCommand('cp', ['-a', base, merged])).code, 0);
    for (const f of readdirSync(upper)) assert.equal((await runCommand('cp', ['-a', join(upper, f), merged])).code, 0);
    const dest = join(work.dir, `child-out-v${version}`);
    await unpackTo(child.bootstrap, blobs, dest);
    assert.deepEqual(compareTrees(merged, dest, { ignoreRootMtime: true }), []);
  });
}

test('--chunk-dict: dictionary chunks are referenced, and only used dictionary blobs join the table', async () => {
  const dict = await create(base, join(work.dir, 'dict'), []);
  const unrelatedDict = await create(upper, join(work.dir, 'dict2'), []);
  const built = await create(upper, join(work.dir, 'with-dict'), ['--chunk-dict', `bootstrap=${dict.bootstrap}`]);
  const d = built.json.dedup;
  assert.equal(d.dedup_from_chunk_dict, 2);
  assert.equal(d.unique_chunks, 2);
  assert.deepEqual(built.json.blobs[0], dict.json.blobs[0]);
  assert.equal(built.json.blobs.length, 2);
  // A dictionary nothing new is found in adds no blob.
  const other = join(work.dir, 'other');
  mkdirSync(other);
  writeFileSync(join(other, 'fresh'), bytes(99, 3 * MiB));
  const none = await create(other, join(work.dir, 'unused-dict'), ['--chunk-dict', unrelatedDict.bootstrap]);
  assert.equal(none.json.blobs.length, 1);
  assert.equal(none.json.dedup.dedup_from_chunk_dict, 0);
  // Reading through both blobs verifies every chunk digest.
  const blobs = join(work.dir, 'dict-blobs');
  mkdirSync(blobs);
  for (const dir of [dict.blobDir, built.blobDir]) for (const f of readdirSync(dir)) cpSync(join(dir, f), join(blobs, f));
  const check = await runProgram('nydus-image', ['check', built.bootstrap, '--blob-dir', blobs]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /4 chunks verified, 0 failed|chunks verified, 0 failed/);
});

test('incompatible parents and dictionaries are refused', async () => {
  const v5 = await create(base, join(work.dir, 'v5-parent'), ['--fs-version', '5']);
  const out = join(work.dir, 'bad-parent');
  mkdirSync(join(out, 'blobs'), { recursive: true });
  const r = await runProgram('nydus-image', ['create', upper, '-B', join(out, 'b'), '-D', join(out, 'blobs'), '--parent-bootstrap', v5.bootstrap]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ERR_BUILD_SOURCE: failed to use parent bootstrap .*RAFS v5 \(want v6\)/);
  const r2 = await runProgram('nydus-image', ['create', upper, '-B', join(out, 'b'), '-D', join(out, 'blobs'), '--chunk-dict', v5.bootstrap, '--fs-version', '5', '--digester', 'sha256']);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /digester blake3 \(want sha256\)/);
  assert.deepEqual(readdirSync(join(out, 'blobs')), []);
});

test('stat reports per-image and cross-image deduplication', async () => {
  const dir = join(work.dir, 'stat');
  mkdirSync(dir);
  const one = await create(base, join(dir, 'x'), []);
  const two = await create(upper, join(dir, 'y'), []);
  const boots = join(dir, 'boots');
  mkdirSync(boots);
  cpSync(one.bootstrap, join(boots, 'one'));
  cpSync(two.bootstrap, join(boots, 'two'));
  const json = join(dir, 'stat.json');
  const r = await runProgram('nydus-image', ['stat', '-D', boots, '-J', json]);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(s.dedup_enabled, true);
  assert.equal(s.base_image.files, 5);
  assert.equal(s.base_image.chunks, 9);
  // Distinct chunks per image: 3 + 4; across images A and B are shared: 5 distinct.
  assert.equal(s.base_image.own_chunks, 7);
  assert.equal(s.base_image.dedup_chunks, 5);
  assert.equal(s.dedup_info[1].threshold, 2);
  assert.equal(s.dedup_info[1].raw_chunks, 7);
  const shared = s.dedup_info[1];
  assert.equal(shared.dedup_chunks, 2 + 3);
  const target = join(dir, 'target.json');
  const r2 = await runProgram('nydus-image', ['stat', '-B', join(boots, 'one'), '--target', join(boots, 'two'), '-J', target]);
  assert.equal(r2.code, 0, r2.stderr);
  const t2 = JSON.parse(readFileSync(target, 'utf8'));
  assert.equal(t2.target_image.ref_chunks, 2);
  assert.equal(t2.target_image.own_chunks, 2);
  const text = await runProgram('nydus-image', ['stat', '-B', join(boots, 'one')]);
  assert.match(text.stdout, /Base Image Statistics:\nDirectories: +1\nFiles: +3/);
  assert.ok(statSync(json).size > 0);
});
