// The library entry point ships its types: a TypeScript program that imports the package
// by name compiles against dist/src/index.d.ts, and a wrong call is a type error there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/env.js';

const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** Type-checks `source` as a module inside the package, so `nydus-ts` resolves to itself. */
function typecheck(source: string): { code: number | null; out: string } {
  const dir = mkdtempSync(join(REPO_ROOT, 'dist', 'types-consumer-'));
  try {
    const file = join(dir, 'consumer.ts');
    writeFileSync(file, source);
    const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck'];
    const r = spawnSync(process.execPath, [TSC, ...flags, file], { cwd: REPO_ROOT, encoding: 'utf8' });
    return { code: r.status, out: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('dist/src/index.d.ts exists beside the entry point', () => {
  assert.ok(existsSync(join(REPO_ROOT, 'dist', 'src', 'index.d.ts')));
});

test('a program importing nydus-ts type-checks, and a wrong call does not', () => {
  const ok = typecheck(`import { parseConfig, NydusError, type NydusConfig } from 'nydus-ts';
const c: NydusConfig = parseConfig('{}');
const e: NydusError | undefined = undefined;
export { c, e };
`);
  assert.equal(ok.code, 0, ok.out);
  const bad = typecheck(`import { parseConfig } from 'nydus-ts';
export const c = parseConfig(42);
`);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /consumer\.ts.*TS2345/);
});
