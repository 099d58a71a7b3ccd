// The images the fuzzer mutates: both upstream fixtures and a v6 image built here with
// small chunks and nested directories (a chunk table, dirents of subdirectories).
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';
import type { FuzzBase } from './fuzz-worker.js';

function fixtureBase(name: string, dir: string): FuzzBase {
  const blobDir = join(dir, 'blobs');
  const blobSize = Math.max(...readdirSync(blobDir).map((f) => statSync(join(blobDir, f)).size));
  return { name, bootstrap: join(dir, 'bootstrap'), blobDir, blobSize };
}

/** Builds the v6 image in `work` and returns the three bases. */
export async function fuzzBases(work: string): Promise<FuzzBase[]> {
  const src = join(work, 'src');
  for (const d of ['a/b/c', 'a/d', 'e']) mkdirSync(join(src, d), { recursive: true });
  writeFileSync(join(src, 'a/b/c/big'), Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 7) & 0xff)));
  writeFileSync(join(src, 'a/d/small'), 'small file\n');
  writeFileSync(join(src, 'e/text'), 'some text '.repeat(900));
  writeFileSync(join(src, 'top'), 'top\n');
  const blobDir = join(work, 'built');
  mkdirSync(blobDir);
  const bootstrap = join(work, 'built.boot');
  const r = await runProgram('nydus-image', ['create', '--chunk-size', '0x1000', '--blob-dir', blobDir, '--bootstrap', bootstrap, src]);
  if (r.code !== 0) throw new Error(`nydus-image create failed: ${r.stderr}`);
  const blobSize = Math.max(...readdirSync(blobDir).map((f) => statSync(join(blobDir, f)).size));
  return [fixtureBase('v5-fixture', V5_FIXTURE), fixtureBase('v6-fixture', V6_FIXTURE), { name: 'v6-built', bootstrap, blobDir, blobSize }];
}
