#!/usr/bin/env node
// Writes docs/lifecycle.mmd and docs/lifecycle.md from the lifecycle machine
// (machines/daemon.ts through src/daemon/diagram.ts). Run it through tsx:
//   node --import tsx scripts/gen-lifecycle-docs.mjs          write the files
//   node --import tsx scripts/gen-lifecycle-docs.mjs --check  exit 1 when they are stale
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderLifecycleDocs } from '../src/daemon/diagram.ts';

const docs = join(import.meta.dirname, '..', 'docs');
const { mmd, md } = renderLifecycleDocs();
const files = [
  [join(docs, 'lifecycle.mmd'), mmd],
  [join(docs, 'lifecycle.md'), md],
];
if (process.argv.includes('--check')) {
  const stale = files.filter(([path, text]) => {
    try {
      return readFileSync(path, 'utf8') !== text;
    } catch {
      return true;
    }
  });
  for (const [path] of stale) console.error(`stale: ${path}`);
  process.exit(stale.length === 0 ? 0 : 1);
}
for (const [path, text] of files) {
  writeFileSync(path, text);
  console.log(`wrote ${path}`);
}
