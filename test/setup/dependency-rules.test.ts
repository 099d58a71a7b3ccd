// The dependency rules of docs/architecture.md hold: dependency-cruiser checks src/ and
// machines/ against .dependency-cruiser.cjs (layers, and no cycles). The rules themselves
// are checked too: a small tree that breaks two of them must be refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/env.js';

const DEPCRUISE = join(REPO_ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const CONFIG = join(REPO_ROOT, '.dependency-cruiser.cjs');

function depcruise(cwd: string, paths: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [DEPCRUISE, ...paths, '--config', CONFIG, '--output-type', 'err'], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('src/ and machines/ keep the layer rules and have no import cycle', () => {
  const r = depcruise(REPO_ROOT, ['src', 'machines']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /no dependency violations found \(\d+ modules/);
});

test('the rules refuse storage importing rafs and a cycle, type-only imports included', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dep-rules-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(REPO_ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'));
  mkdirSync(join(dir, 'src', 'storage'), { recursive: true });
  mkdirSync(join(dir, 'src', 'rafs'));
  writeFileSync(join(dir, 'src', 'storage', 'reader.ts'), "import type { Super } from '../rafs/super.js';\nexport type Reader = { sb: Super };\n");
  writeFileSync(join(dir, 'src', 'rafs', 'super.ts'), "import type { Reader } from '../storage/reader.js';\nexport type Super = { r?: Reader };\n");
  const r = depcruise(dir, ['src']);
  assert.notEqual(r.code, 0, r.out);
  assert.match(r.out, /storage-below-rafs: src\/storage\/reader\.ts → src\/rafs\/super\.ts/);
  assert.match(r.out, /no-circular/);
});
