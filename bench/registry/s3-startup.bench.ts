// Benchmark: lazy start-up through the s3 backend next to the registry backend, same
// image, same run. The Debian minbase image of startup.bench.ts is pushed to a local
// docker-registry and, with `nydus-image push --target s3://`, to s3rver (through the
// tests' SigV4-checking front, as in test/object-storage; reads go to s3rver directly,
// so the front's extra hop is not timed). Each run reads, cold (fresh
// cache directory), through the storage stack: the first 4 KiB of /usr/bin/ls and the
// whole start-up set (what `/bin/sh -c 'ls /'` opens), alternating which backend goes
// first. With --mount (root, /dev/fuse) it also times `chroot <mnt> /bin/sh -c 'ls /'`
// through nydusd for both. Prints medians and s3/registry ratios; --json writes every
// sample. With --mbit and --rtt-ms both servers sit behind the same kind of shaped link.
//
//   node --import tsx bench/registry/s3-startup.bench.ts [--rootfs DIR] [--runs N] [--json FILE]
//        [--mbit N --rtt-ms N] [--mount]
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { normalizeConfig } from '../../src/config/parse.js';
import type { NydusConfig } from '../../src/config/types.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { pushImage } from '../../src/registry/push.js';
import { createStorage } from '../../src/storage/factory.js';
import { resolvePath } from '../../src/storage/prefetch-list.js';
import { isRoot } from '../../test/helpers/env.js';
import { haveNydusd, startDaemon } from '../../test/helpers/registry-nydusd.js';
import { startRegistry } from '../../test/helpers/registry-server.js';
import { runCommand, runProgram } from '../../test/helpers/run.js';
import { startS3, S3RVER_KEYS } from '../../test/helpers/s3-server.js';
import { commonOptions, log, owner, runBench } from './bench-process.js';
import { ensureRootfs, median, startupSet } from './rootfs-trace.js';
import { startShaper } from './shaper.js';

const { values } = parseArgs({
  options: {
    ...commonOptions,
    mount: { type: 'boolean', default: false },
  },
});
const rootfs = values.rootfs!;
const runs = Number(values.runs);
const PREFIX = 'bench/';

async function main(): Promise<void> {
  ensureRootfs(rootfs, log);
  const set = isRoot() ? startupSet(rootfs) : ['/bin/sh', '/usr/bin/ls'];
  const dir = mkdtempSync('/tmp/s3-bench-');
  owner.after(() => rmSync(dir, { recursive: true, force: true }));
  const bootstrap = join(dir, 'image.boot');
  const blobDir = join(dir, 'blobs');
  mkdirSync(blobDir);
  const built = await runProgram('nydus-image', ['create', '--bootstrap', bootstrap, '--blob-dir', blobDir, rootfs], { timeoutMs: 900_000 });
  if (built.code !== 0) throw new Error(built.stderr);

  const reg = await startRegistry(owner);
  await pushImage({ bootstrap, blobDir, target: `${reg.host}/bench/rootfs:v1` });
  const s3 = await startS3(owner);
  const s3Keys = JSON.stringify({ endpoint: s3.endpoint, scheme: 'http', access_key_id: S3RVER_KEYS.id, access_key_secret: S3RVER_KEYS.secret });
  const pushed = await runProgram('nydus-image', ['push', bootstrap, '--blob-dir', blobDir, '--target', `s3://${s3.bucket}/${PREFIX}`, '--backend-config', s3Keys]);
  if (pushed.code !== 0) throw new Error(pushed.stderr);

  let regHost = reg.host;
  let s3Endpoint = `127.0.0.1:${s3.port}`;
  let link = 'loopback';
  if (values.mbit !== undefined) {
    const shaping = { mbit: Number(values.mbit), rttMs: Number(values['rtt-ms']) };
    const a = await startShaper(reg.port, shaping);
    const b = await startShaper(s3.port, shaping);
    owner.after(() => a.close());
    owner.after(() => b.close());
    regHost = a.host;
    s3Endpoint = b.host;
    link = `${values.mbit} Mbit/s, ${values['rtt-ms']} ms RTT`;
  }
  const sb = await openBootstrap(bootstrap);
  const blobBytes = sb.blobs.reduce((n, b) => n + b.compressedSize, 0);
  const setBytes = set.reduce((n, p) => n + sb.getAttr(resolvePath(sb, p)!).size, 0);
  log(`image: ${sb.inodeCount} inodes, ${blobBytes} blob bytes; start-up set ${set.length} files, ${setBytes} bytes`);

  const configs: Record<'registry' | 's3', (work: string) => NydusConfig> = {
    registry: (work) =>
      normalizeConfig({
        version: 2,
        backend: { type: 'registry', registry: { scheme: 'http', host: regHost, repo: 'bench/rootfs', timeout: 30 } },
        cache: { type: 'blobcache', filecache: { work_dir: work } },
      }),
    s3: (work) =>
      normalizeConfig({
        version: 2,
        backend: { type: 's3', s3: { ...JSON.parse(s3Keys), endpoint: s3Endpoint, bucket_name: s3.bucket, object_prefix: PREFIX, timeout: 30 } },
        cache: { type: 'blobcache', filecache: { work_dir: work } },
      }),
  };
  const samples: Record<string, number[]> = {};
  const add = (k: string, v: number): void => void (samples[k] ??= []).push(v);
  const canMount = values.mount && isRoot() && haveNydusd() && existsSync('/dev/fuse');

  for (let run = 0; run < runs; run++) {
    const order: ('registry' | 's3')[] = run % 2 === 0 ? ['registry', 's3'] : ['s3', 'registry'];
    for (const kind of order) {
      const work = mkdtempSync('/tmp/s3-bench-cache-');
      const storage = await createStorage(configs[kind](work), sb);
      const t0 = performance.now();
      const ls = resolvePath(sb, '/usr/bin/ls')!;
      await storage.reader.readRange(sb.fileChunks(ls, 0, 4096), 0, Buffer.alloc(4096));
      const t1 = performance.now();
      for (const p of set) {
        const ino = resolvePath(sb, p)!;
        const out = Buffer.alloc(sb.getAttr(ino).size);
        await storage.reader.readRange(sb.fileChunks(ino, 0, out.length), 0, out);
      }
      const t2 = performance.now();
      add(`${kind}.ttfb_ms`, t1 - t0);
      add(`${kind}.startup_set_ms`, t2 - t0);
      add(`${kind}.fetched_bytes`, storage.backend.metrics.readAmountTotal);
      add(`${kind}.requests`, storage.backend.metrics.readCount);
      await storage.close();
      rmSync(work, { recursive: true, force: true });

      if (canMount) {
        const mwork = mkdtempSync('/tmp/s3-bench-mount-');
        const config = join(mwork, 'config.json');
        writeFileSync(config, JSON.stringify(configs[kind](join(mwork, 'cache'))));
        const d = await startDaemon(owner, ['--bootstrap', bootstrap, '--config', config]);
        const m0 = performance.now();
        const shell = await runCommand('chroot', [d.mnt, '/bin/sh', '-c', 'ls /']);
        const m1 = performance.now();
        if (shell.code !== 0) throw new Error(`${kind} through the mount: ${shell.stderr}`);
        add(`${kind}.nydusd_sh_ls_ms`, m1 - m0);
        await d.stop();
        rmSync(mwork, { recursive: true, force: true });
      }
    }
    log(`run ${run + 1}/${runs} done`);
  }

  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  const pair = (k: string, digits = 1): string => {
    const [r, s] = [med[`registry.${k}`], med[`s3.${k}`]];
    return `${r.toFixed(digits)} / ${s.toFixed(digits)} (s3/registry ${(s / r).toFixed(3)})`;
  };
  const rows: [string, string][] = [
    ['blob size (bytes)', String(blobBytes)],
    ['start-up set', `${set.length} files, ${setBytes} bytes`],
    ['first 4 KiB of /usr/bin/ls (ms), registry / s3', pair('ttfb_ms')],
    ['start-up set (ms), registry / s3', pair('startup_set_ms')],
    ['backend requests, registry / s3', pair('requests', 0)],
    ['bytes fetched, registry / s3', pair('fetched_bytes', 0)],
  ];
  if (canMount) rows.push(["nydusd: chroot sh -c 'ls /' (ms), registry / s3", pair('nydusd_sh_ls_ms')]);
  process.stdout.write(`s3 vs registry start-up benchmark (${link}), medians of ${runs} cold runs each\n`);
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(52)} ${v}\n`);
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ link, blobBytes, startupSet: set, samples, medians: med }, null, 2) + '\n');
}

await runBench(main);
