#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js, and the examples' own tests in
// dist/examples/**/*.test.js) with node's own test runner. A path argument narrows the
// run: `node scripts/run-tests.mjs test/rafs examples`.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const filters = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [...walk(join(dist, 'test')), ...walk(join(dist, 'examples'))].filter(
  (f) => filters.length === 0 || filters.some((x) => relative(dist, f).startsWith(x)),
);
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const r = spawnSync(
  process.execPath,
  // A hung test (a FUSE deadlock, a server that never answers) fails after 5 minutes
  // instead of holding CI until its own limit.
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(r.status ?? 1);
