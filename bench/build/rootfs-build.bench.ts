// Build benchmark: time and output size of a real root filesystem (Debian bookworm
// minbase, cached by test/builder/rootfs.ts) turned into an image by `nydus-image create`
// (several settings), `mkfs.erofs --chunksize` and `mksquashfs`, all in the same run, with
// ratios. Page cache warm (one untimed build first), median of N runs. Recorded, never
// asserted. Run compiled: `npm run build && node dist/bench/build/rootfs-build.bench.js
// [--runs N] [--json FILE]`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { programArgv } from '../../test/helpers/env.js';
import { ensureRootfs } from '../../test/builder/rootfs.js';

interface Case {
  name: string;
  /** Command line building into `out` (an empty directory). */
  argv(src: string, out: string): string[];
}

const nydus = (extra: string[]): Case['argv'] => (src, out) => [...programArgv('nydus-image'), 'create', src, '-B', join(out, 'bootstrap'), '-D', out, ...extra];

const CASES: Case[] = [
  { name: 'nydus-image v6 zstd (default)', argv: nydus([]) },
  { name: 'nydus-image v6 none', argv: nydus(['--compressor', 'none']) },
  { name: 'nydus-image v6 lz4_block', argv: nydus(['--compressor', 'lz4_block']) },
  { name: 'nydus-image v5 zstd', argv: nydus(['--fs-version', '5']) },
  { name: 'mkfs.erofs --chunksize=1M (blobdev)', argv: (src, out) => ['mkfs.erofs', '--quiet', '--chunksize=1048576', `--blobdev=${join(out, 'blob')}`, join(out, 'meta'), src] },
  { name: 'mksquashfs (gzip, default)', argv: (src, out) => ['mksquashfs', src, join(out, 'img.sqfs'), '-noappend', '-quiet', '-no-progress'] },
  { name: 'mksquashfs -comp zstd', argv: (src, out) => ['mksquashfs', src, join(out, 'img.sqfs'), '-noappend', '-quiet', '-no-progress', '-comp', 'zstd'] },
];

function dirSize(dir: string): number {
  return readdirSync(dir).reduce((s, n) => s + statSync(join(dir, n)).size, 0);
}

function runOnce(c: Case, src: string, work: string): { secs: number; bytes: number } {
  const out = join(work, `out-${Date.now()}`);
  mkdirSync(out);
  const [cmd, ...args] = c.argv(src, out);
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${c.name} failed: ${r.stderr}`);
  const bytes = dirSize(out);
  rmSync(out, { recursive: true, force: true });
  return { secs, bytes };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const runs = Number(argv[argv.indexOf('--runs') + 1] ?? 3) || 3;
  const jsonOut = argv.includes('--json') ? argv[argv.indexOf('--json') + 1] : undefined;
  const rootfs = await ensureRootfs();
  if (!rootfs.dir) throw new Error(`no root filesystem: ${rootfs.reason}`);
  const src = rootfs.dir;
  const work = mkdtempSync(join(existsShm() ? '/dev/shm' : tmpdir(), 'bench-build-'));
  const results: { name: string; secs: number; bytes: number; runs: number[] }[] = [];
  try {
    for (const c of CASES) {
      runOnce(c, src, work); // warm-up: page cache, JIT, first-touch of the output fs
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < runs; i++) {
        const r = runOnce(c, src, work);
        times.push(r.secs);
        bytes = r.bytes;
      }
      const sorted = [...times].sort((a, b) => a - b);
      results.push({ name: c.name, secs: sorted[Math.floor(sorted.length / 2)], bytes, runs: times });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const erofs = results.find((r) => r.name.startsWith('mkfs.erofs')) as (typeof results)[0];
  const squash = results.find((r) => r.name.startsWith('mksquashfs (gzip')) as (typeof results)[0];
  const srcBytes = Number(spawnSync('du', ['-sb', src], { encoding: 'utf8' }).stdout.split('\t')[0]);
  console.log(`source: ${src}, ${srcBytes} bytes; median of ${runs} warm runs`);
  console.log('case'.padEnd(40) + 'time s'.padStart(8) + '  x erofs' + '  x sqfs' + '      bytes' + '  x erofs' + '  x sqfs');
  for (const r of results) {
    console.log(
      r.name.padEnd(40) +
        r.secs.toFixed(2).padStart(8) +
        (r.secs / erofs.secs).toFixed(2).padStart(9) +
        (r.secs / squash.secs).toFixed(2).padStart(8) +
        String(r.bytes).padStart(11) +
        (r.bytes / erofs.bytes).toFixed(2).padStart(9) +
        (r.bytes / squash.bytes).toFixed(2).padStart(8),
    );
  }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ source: src, sourceBytes: srcBytes, runs, results }, null, 2) + '\n');
}

function existsShm(): boolean {
  try {
    return statSync('/dev/shm').isDirectory();
  } catch {
    return false;
  }
}

await main();
