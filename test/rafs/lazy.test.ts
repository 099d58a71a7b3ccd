// Opening is O(tables): a synthetic image of 100k inodes opens without decoding inode
// records, shown by overwriting every record but the root's with 0xff bytes (the open
// still succeeds; the first use of a damaged record fails). The clean images are then
// used normally: lookups by path, a full validation with its counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBootstrap, RafsV5Super, RafsV6Super, validateMetadata, type RafsSuper } from '../../src/rafs/index.js';
import type { SynthNode } from './helpers/synth.js';
import { buildV5 } from './helpers/synth-v5.js';
import { buildV6 } from './helpers/synth-v6.js';

const DIRS = 100;
const FILES = 1000;

function bigTree(): SynthNode {
  return {
    name: '',
    type: 'dir',
    children: Array.from({ length: DIRS }, (_, d) => ({
      name: `dir-${d}`,
      type: 'dir' as const,
      children: Array.from({ length: FILES }, (_, f) => ({ name: `file-${f}`, type: 'file' as const, size: f % 5 })),
    })),
  };
}

function resolve(sb: RafsSuper, path: string): number | undefined {
  let ino: number | undefined = sb.rootIno;
  for (const part of path.split('/').filter(Boolean)) ino = ino === undefined ? undefined : sb.lookup(ino, Buffer.from(part));
  return ino;
}

function timed<T>(t: import('node:test').TestContext, what: string, fn: () => T): T {
  const start = process.hrtime.bigint();
  const out = fn();
  t.diagnostic(`${what}: ${Number(process.hrtime.bigint() - start) / 1e6} ms`);
  return out;
}

test('v5: 100k inodes open without touching inode records', { timeout: 120_000 }, async (t) => {
  const image = buildV5(bigTree());
  const inodes = 1 + DIRS + DIRS * FILES;
  assert.equal(image.nodes.length, inodes);
  const damaged = Buffer.from(image.bytes);
  damaged.fill(0xff, image.offsets[1]);
  const sb = timed(t, `open ${damaged.length} bytes`, () => parseBootstrap(damaged));
  assert.ok(sb instanceof RafsV5Super);
  assert.equal(sb.indexCount, inodes);
  assert.equal(sb.getAttr(1).nlink, 2 + DIRS);
  assert.throws(() => sb.getAttr(2), { code: 'ERR_RAFS_CORRUPT' });
  assert.throws(() => sb.lookup(1, Buffer.from('dir-7')), { code: 'ERR_RAFS_CORRUPT' });

  const clean = parseBootstrap(image.bytes);
  const ino = resolve(clean, '/dir-42/file-999');
  assert.equal(ino, image.nodes.find((n) => n.path === '/dir-42/file-999')!.index);
  assert.equal(clean.getAttr(ino!).size, 999 % 5);
  assert.equal(resolve(clean, '/dir-42/file-1000'), undefined);
  const counts = await validateMetadata(clean);
  assert.deepEqual([counts.inodes, counts.dirs, counts.files], [inodes, 1 + DIRS, DIRS * FILES]);
});

test('v6: 100k inodes open without touching inodes or directories', { timeout: 120_000 }, (t) => {
  const image = buildV6(bigTree());
  const probe = parseBootstrap(image.bytes);
  assert.ok(probe instanceof RafsV6Super);
  const root = probe.node(probe.rootIno);
  // Everything after the root inode and its inline directory tail, up to the chunk table.
  const from = root.offset + root.inodeSize + root.xattrSize + (root.inode.size % 4096);
  const damaged = Buffer.from(image.bytes);
  damaged.fill(0xff, from, probe.superblockExt.chunkTableOffset);
  const sb = timed(t, `open ${damaged.length} bytes`, () => parseBootstrap(damaged));
  assert.equal(sb.getAttr(sb.rootIno).nlink, 2 + DIRS);
  const dir = sb.lookup(sb.rootIno, Buffer.from('dir-7'));
  assert.equal(dir, image.nids[image.nodes.find((n) => n.path === '/dir-7')!.index - 1]);
  assert.throws(() => sb.getAttr(dir!), (err: Error & { code?: string }) => /^ERR_RAFS_(CORRUPT|UNSUPPORTED)$/.test(err.code ?? ''));

  const clean = parseBootstrap(image.bytes);
  const ino = resolve(clean, '/dir-99/file-0');
  assert.equal(ino, image.nids[image.nodes.find((n) => n.path === '/dir-99/file-0')!.index - 1]);
  assert.equal(clean.childCount(resolve(clean, '/dir-3')!), FILES);
  assert.equal(clean.inodeCount, 1 + DIRS + DIRS * FILES);
});
