#!/usr/bin/env node
// Bundles nydusd (dist/src/cli/nydusd.js, as tsc wrote it) into that same file plus
// chunks beside it, so a daemon starts by reading a few files instead of resolving and
// compiling ~280 modules: after a crash, a successor's start is most of the time the
// mount waits (bench/upgrade, decision 0016). Run by `npm run build`, after tsc.
// Kept outside: the native addons (loaded through createRequire by their own paths) and
// undici (loaded only for registry images). The bundle sits at the entry's own depth, so
// paths derived from import.meta.url (build-info.json, build/Release) stay right.
import { build } from 'esbuild';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'dist', 'src', 'cli');

await build({
  entryPoints: [join(cli, 'nydusd.js')],
  outdir: cli,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'nydusd-[hash]',
  external: ['fuse-native', 'lz4-napi', 'zstd-napi', 'undici'],
  // CommonJS dependencies require Node's built-ins: give every chunk a real require.
  banner: { js: "import { createRequire as __nydusdRequire } from 'node:module'; const require = __nydusdRequire(import.meta.url);" },
  sourcemap: true,
  logLevel: 'warning',
});
