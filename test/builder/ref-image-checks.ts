// Checks shared by the tests of images over unconverted layers (targz-ref, eStargz):
// `check` and `unpack` give back the source tree, and a corrupted byte of the layer is
// EIO for the one file whose chunk holds it and nothing else.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { walk, type AnyRafsSuper } from '../../src/rafs/index.js';
import type { ChunkInfo } from '../../src/storage/types.js';
import { run, runOk } from '../conformance/child.js';
import { configJson } from '../fs/helpers.js';
import { runProgram } from '../helpers/run.js';
import { compareTrees, type CompareOptions } from './tree-helpers.js';

/** A localfs config over `blobDir` with a blobcache in `dir`, written to `dir`/config.json. */
export function localfsConfig(blobDir: string, dir: string): string {
  const path = join(dir, 'config.json');
  writeFileSync(path, configJson(blobDir, join(dir, 'cache')));
  return path;
}

/** `nydus-image check` verifies every chunk, and `unpack` (then GNU tar, in `work`) gives back `rootfs`. */
export async function assertCheckAndUnpack(bootstrap: string, blobDir: string, rootfs: string, work: string, same: CompareOptions): Promise<void> {
  const check = await runProgram('nydus-image', ['check', '-B', bootstrap, '-D', blobDir]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /chunk data: \d+ chunks verified, 0 failed/);
  const tar = join(work, 'out.tar');
  const unpack = await runProgram('nydus-image', ['unpack', bootstrap, '-D', blobDir, '--output', tar]);
  assert.equal(unpack.code, 0, unpack.stderr);
  const tree = join(work, 'tree');
  mkdirSync(tree);
  await runOk('tar', ['--numeric-owner', '--xattrs', '-xpf', tar, '-C', tree]);
  assert.deepEqual(compareTrees(rootfs, tree, same), []);
}

/** A non-empty regular file of an image (path relative to the root) and its chunks. */
export interface FileChunks {
  path: string;
  chunks: ChunkInfo[];
}

/** Every non-empty regular file of `sb` with its chunks. */
export function fileChunks(sb: AnyRafsSuper): FileChunks[] {
  return [...walk(sb)]
    .filter((e) => (e.attr.mode & 0o170000) === 0o100000 && e.attr.size > 0)
    .map((e) => ({ path: e.path.toString().replace(/^\//, ''), chunks: sb.fileChunks(e.ino, 0, e.attr.size) }));
}

/**
 * The first file with a chunk stored over more than 64 KiB, and the byte in the middle of
 * that chunk's stored span: one the chunk cannot be decoded right without.
 */
export function victimByte(files: readonly FileChunks[]): { victim: FileChunks; at: number } {
  const victim = files.find((f) => f.chunks.some((c) => c.compressedSize > 64 << 10));
  assert.ok(victim, 'the rootfs has a file with a large chunk');
  const big = victim.chunks.find((c) => c.compressedSize > 64 << 10)!;
  return { victim, at: big.compressedOffset + Math.floor(big.compressedSize / 2) };
}

/** Writes `layer` to `dest` with the byte at `at` flipped. */
export function writeCorruptedCopy(layer: string, at: number, dest: string): void {
  const bytes = readFileSync(layer);
  bytes[at] ^= 0x5a;
  writeFileSync(dest, bytes);
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** After a corrupted byte: `victim` is EIO through `mnt`, every `untouched` file reads as in `rootfs`; paths are relative. */
export async function assertOnlyVictimFails(mnt: string, rootfs: string, victim: string, untouched: readonly { path: string }[]): Promise<void> {
  const bad = await run('cat', [victim], { cwd: mnt });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /Input\/output error/);
  for (const f of untouched) assert.equal(sha256(join(mnt, f.path)), sha256(join(rootfs, f.path)), f.path);
  assert.ok(existsSync(join(mnt, victim)), 'the damaged file is still listed');
}
