// Cold serving benchmark of nydusd (fusedev and --fs-driver erofs) against squashfuse_ll
// and the kernel's EROFS on the same content: an image is built with `nydus-image create`
// from a ~200 MB tree (parts of /usr/lib, or --source DIR), unpacked again with
// `nydus-image unpack` + GNU tar, and the peers are built from that unpacked tree
// (mksquashfs, mkfs.erofs), all with LZ4. A third peer is the kernel's erofs on the nydus
// image itself with its blobs decompressed to local files on loop devices: the ceiling of
// the erofs driver, whose blob views serve the same bytes through FUSE.
// Three workloads: a cold `find` (every entry's attributes), a cold read of every file by
// one reader, and by 8 readers at once.
// Cold means: page cache dropped, a freshly started daemon or mount, an empty blobcache.
// Prints medians and ratios from the same run; a script, never an assertion.
// Run as root: `node --import tsx bench/serve/cold-serve.bench.ts [--runs N] [--source DIR] [--json FILE]
// [--only NAME,NAME] [--work DIR] [--also DIR]`. `--only` keeps the servers whose name contains one of the
// words (e.g. `fusedev,squashfuse,erofs`); `--work DIR` builds the images into DIR once and
// reuses them on later runs (nothing is deleted); `--also DIR` adds nydusd run from the
// sources of another checkout (a copy of the tree before a change), for before/after comparisons.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { cleanStale, viewsDirOf } from '../../src/daemon/erofs-driver.js';
import { parseConfig } from '../../src/config/parse.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { BlobView } from '../../src/storage/blob-view.js';
import { createStorage } from '../../src/storage/factory.js';
import { isMounted, programArgv } from '../../test/helpers/env.js';

/** Parts of /usr/lib that add up to about 200 MB in about 8000 files on Debian 12. */
const DEFAULT_PARTS = ['python3', 'python3.11', 'postgresql', 'node_modules', 'git-core', 'systemd', 'perf-core'].map((p) => `/usr/lib/${p}`);

interface Mounted {
  unmount(): Promise<void>;
}

interface Server {
  name: string;
  mount(mnt: string, scratch: string): Promise<Mounted>;
}

function must(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

async function until(cond: () => boolean, what: string, alive: () => boolean = () => true): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (!alive() || i > 1200) throw new Error(`${what} did not happen`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function nydusd(name: string, bootstrap: string, blobDir: string, opts: { impl: string; cache: boolean; argv?: string[]; driver?: string; env?: NodeJS.ProcessEnv }): Server {
  return {
    name,
    async mount(mnt, scratch) {
      const config = join(scratch, 'config.json');
      const cache = opts.cache ? { type: 'blobcache', filecache: { work_dir: join(scratch, 'cache') } } : { type: '' };
      writeFileSync(config, JSON.stringify({ version: 2, backend: { type: 'localfs', localfs: { dir: blobDir } }, cache, rafs: { mode: 'direct' } }));
      const [cmd, ...pre] = opts.argv ?? programArgv('nydusd');
      const args = ['-M', mnt, '-B', bootstrap, '-C', config, '--state-dir', join(scratch, 'state'), '--fuse-impl', opts.impl, ...(opts.driver === undefined ? [] : ['--fs-driver', opts.driver]), '--log-level', 'warn'];
      const child = spawn(cmd, [...pre, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...opts.env } });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      // RUNNING: the root answers (a fusedev session stays paused until START).
      await until(() => isMounted(mnt) && spawnSync('stat', [mnt]).status === 0, `${name} mount`, () => child.exitCode === null);
      return {
        async unmount() {
          child.kill('SIGTERM');
          await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
          await cleanStale(mnt, viewsDirOf(join(scratch, 'state')));
          if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
        },
      };
    },
  };
}

function squashfuse(name: string, image: string): Server {
  return {
    name,
    async mount(mnt) {
      const child = spawn('squashfuse_ll', ['-f', image, mnt], { stdio: 'ignore' });
      await until(() => isMounted(mnt), `${name} mount`, () => child.exitCode === null);
      return {
        async unmount() {
          spawnSync('umount', [mnt]);
          child.kill('SIGTERM');
        },
      };
    },
  };
}

function kernelErofs(name: string, image: string): Server {
  return {
    name,
    async mount(mnt) {
      must('mount', ['-t', 'erofs', '-o', 'ro,loop', image, mnt]);
      return {
        async unmount() {
          spawnSync('umount', [mnt]);
        },
      };
    },
  };
}

/** The nydus bootstrap mounted by the kernel with each blob's view, decompressed to a local file, on a loop device. */
function kernelErofsLocalBlobs(name: string, bootstrap: string, viewDir: string, blobIds: string[]): Server {
  return {
    name,
    async mount(mnt) {
      const loops = blobIds.map((id) => must('losetup', ['-f', '--show', '-r', '--direct-io=on', join(viewDir, id)]));
      try {
        must('mount', ['-t', 'erofs', '-o', ['ro', ...loops.map((l) => `device=${l}`)].join(','), bootstrap, mnt]);
      } catch (err) {
        for (const l of loops) spawnSync('losetup', ['-d', l]);
        throw err;
      }
      return {
        async unmount() {
          spawnSync('umount', [mnt]);
          for (const l of loops) spawnSync('losetup', ['-d', l]);
        },
      };
    },
  };
}

const WORKLOADS: Record<string, string> = {
  'cold find': "find MNT -printf '%s %m %u %T@\\n' | wc -l",
  'cold read of every file': 'find MNT -type f -print0 | xargs -0 -P 1 cat | wc -c',
  'cold read of every file, 8 readers': 'find MNT -type f -print0 | xargs -0 -P 8 -n 64 cat | wc -c',
};

async function measure(s: Server, work: string, script: string): Promise<{ secs: number; out: string }> {
  const scratch = mkdtempSync(join(work, 'run-'));
  const mnt = join(scratch, 'mnt');
  mkdirSync(mnt);
  const m = await s.mount(mnt, scratch);
  try {
    spawnSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    const t = process.hrtime.bigint();
    const out = must('sh', ['-c', script.replaceAll('MNT', mnt)]);
    return { secs: Number(process.hrtime.bigint() - t) / 1e9, out };
  } finally {
    await m.unmount();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const runs = Number(arg(argv, '--runs') ?? 3) || 3;
  const keep = arg(argv, '--work');
  if (keep !== undefined) mkdirSync(keep, { recursive: true });
  const work = keep ?? mkdtempSync(join(tmpdir(), 'bench-serve-'));
  try {
    const built = join(work, 'built.json');
    const images = existsSync(built) ? (JSON.parse(readFileSync(built, 'utf8')) as { files: number; bytes: number; blobIds: string[] }) : await buildImages(argv, work);
    if (keep !== undefined) writeFileSync(built, JSON.stringify(images));
    const { files, bytes } = images;
    const blobDir = join(work, 'blobs');
    const bootstrap = join(work, 'image.boot');
    const sqfs = join(work, 'lz4.sqfs');
    const erofs = join(work, 'lz4hc.erofs');
    const only = arg(argv, '--only')?.split(',');
    const servers: Server[] = [
      nydusd('nydusd fusedev, blobcache', bootstrap, blobDir, { impl: 'fusedev', cache: true }),
      nydusd('nydusd fusedev, no cache', bootstrap, blobDir, { impl: 'fusedev', cache: false }),
      nydusd('nydusd fuse-native, blobcache', bootstrap, blobDir, { impl: 'fuse-native', cache: true }),
      nydusd('nydusd erofs, blobcache', bootstrap, blobDir, { impl: 'fusedev', cache: true, driver: 'erofs' }),
      nydusd('nydusd erofs, no cache', bootstrap, blobDir, { impl: 'fusedev', cache: false, driver: 'erofs' }),
      nydusd('nydusd erofs on loops, no cache', bootstrap, blobDir, { impl: 'fusedev', cache: false, driver: 'erofs', env: { NYDUSD_EROFS_BACKING: 'loop' } }),
      squashfuse('squashfuse_ll (lz4)', sqfs),
      kernelErofs('kernel erofs (lz4hc)', erofs),
      kernelErofsLocalBlobs('kernel erofs, nydus image on local blob files', bootstrap, join(work, 'views'), images.blobIds),
    ];
    const other = arg(argv, '--also');
    if (other !== undefined) {
      const argvOf = [process.execPath, '--import', 'tsx', join(other, 'src', 'cli', 'nydusd.ts')];
      servers.push(nydusd(`nydusd fusedev, blobcache (${basename(other)})`, bootstrap, blobDir, { impl: 'fusedev', cache: true, argv: argvOf }));
    }
    const picked = servers.filter((s) => only === undefined || only.some((w) => s.name.includes(w)));
    const results: { server: string; workload: string; secs: number; runs: number[]; out: string }[] = [];
    for (const [workload, script] of Object.entries(WORKLOADS)) {
      for (const s of picked) {
        const times: number[] = [];
        let out = '';
        for (let i = 0; i < runs; i++) {
          const r = await measure(s, work, script);
          times.push(r.secs);
          out = r.out;
        }
        const sorted = [...times].sort((a, b) => a - b);
        results.push({ server: s.name, workload, secs: sorted[Math.floor(sorted.length / 2)], runs: times, out });
      }
    }
    for (const workload of Object.keys(WORKLOADS)) {
      const of = (name: string) => results.find((r) => r.workload === workload && r.server.startsWith(name))?.secs ?? NaN;
      const sq = of('squashfuse_ll');
      const ek = of('kernel erofs (lz4hc)');
      const local = of('kernel erofs, nydus image');
      console.log(`\n${workload}: median of ${runs} cold runs`);
      console.log(`${'server'.padEnd(48)}${'seconds'.padStart(9)}${'vs squashfuse_ll'.padStart(18)}${'vs kernel erofs'.padStart(17)}${'vs local blobs'.padStart(16)}   runs`);
      for (const r of results.filter((x) => x.workload === workload)) {
        const all = r.runs.map((x) => x.toFixed(2)).join(' ');
        console.log(`${r.server.padEnd(48)}${r.secs.toFixed(3).padStart(9)}${(r.secs / sq).toFixed(2).padStart(17)}x${(r.secs / ek).toFixed(2).padStart(16)}x${(r.secs / local).toFixed(2).padStart(15)}x   ${all}  (${r.out})`);
      }
    }
    const jsonOut = arg(argv, '--json');
    if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ runs, files, bytes, results }, null, 2) + '\n');
  } finally {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const mp = line.split(' ')[4];
      if (mp?.startsWith(work)) spawnSync('umount', ['-l', mp]);
    }
    if (keep === undefined) rmSync(work, { recursive: true, force: true });
  }
}

/** Builds the nydus image and, from its unpacked content, the squashfs and erofs peers. */
async function buildImages(argv: string[], work: string): Promise<{ files: number; bytes: number; blobIds: string[] }> {
  let source = arg(argv, '--source');
  const copied = source === undefined;
  if (source === undefined) {
    source = join(work, 'source');
    mkdirSync(source);
    for (const p of DEFAULT_PARTS.filter(existsSync)) must('cp', ['-a', p, join(source, basename(p))]);
  }
  const [img, ...imgPre] = programArgv('nydus-image');
  const blobDir = join(work, 'blobs');
  mkdirSync(blobDir);
  const bootstrap = join(work, 'image.boot');
  let t = Date.now();
  must(img, [...imgPre, 'create', source, '-B', bootstrap, '-D', blobDir, '--compressor', 'lz4_block']);
  console.log(`nydus-image create: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const tar = join(work, 'image.tar');
  must(img, [...imgPre, 'unpack', '-B', bootstrap, '-D', blobDir, '--output', tar]);
  const content = join(work, 'content');
  mkdirSync(content);
  must('tar', ['-xpf', tar, '-C', content, '--numeric-owner']);
  rmSync(tar);
  const files = Number(must('sh', ['-c', `find '${content}' -type f | wc -l`]));
  const bytes = Number(must('sh', ['-c', `find '${content}' -type f -print0 | du -cb --files0-from=- | tail -1 | cut -f1`]));
  console.log(`content: ${files} files, ${(bytes / 2 ** 20).toFixed(1)} MiB (unpacked from the image)`);
  const sqfs = join(work, 'lz4.sqfs');
  t = Date.now();
  must('mksquashfs', [content, sqfs, '-noappend', '-quiet', '-no-progress', '-comp', 'lz4', '-Xhc']);
  console.log(`mksquashfs: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const erofs = join(work, 'lz4hc.erofs');
  must('mkfs.erofs', ['--quiet', '-zlz4hc', erofs, content]);
  const size = (p: string) => (Number(must('du', ['-sb', p]).split('\t')[0]) / 2 ** 20).toFixed(1);
  console.log(`image sizes: nydus ${size(blobDir)} MiB blob + ${size(bootstrap)} MiB bootstrap, squashfs ${size(sqfs)} MiB, erofs ${size(erofs)} MiB`);
  rmSync(content, { recursive: true, force: true });
  if (copied) rmSync(source, { recursive: true, force: true });
  const blobIds = await writeViews(bootstrap, blobDir, join(work, 'views'));
  return { files, bytes, blobIds };
}

/** Each blob's uncompressed address space as a local file (what the erofs driver's views serve), named by blob id. */
async function writeViews(bootstrap: string, blobDir: string, out: string): Promise<string[]> {
  mkdirSync(out);
  const sb = await openBootstrap(bootstrap);
  const storage = await createStorage(parseConfig(JSON.stringify({ version: 2, backend: { type: 'localfs', localfs: { dir: blobDir } }, rafs: { validate: true } })), sb);
  try {
    for (const b of sb.blobs) {
      const view = new BlobView(b, sb.blobChunks(b.index), storage.reader);
      const bytes = Buffer.alloc(view.size);
      await view.read(0, bytes);
      writeFileSync(join(out, b.blobId), bytes);
    }
  } finally {
    await storage.close();
  }
  return sb.blobs.map((b) => b.blobId);
}

await main();
