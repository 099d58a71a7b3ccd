// Benchmark: lazy start-up from a registry versus pulling the whole blob, same run, same
// registry. A Debian minbase root filesystem (debootstrap) is built into a Nydus image
// and pushed to a local docker-registry; the start-up set is what `/bin/sh -c 'ls /'`
// opens and executes in that root (traced with strace under chroot). Each run starts
// cold (fresh cache directory) and measures:
//   - curl: the whole data blob pulled with curl (time to first byte and total);
//   - storage: bootstrap fetch by reference, first 4 KiB of /usr/bin/ls, and the whole
//     start-up set read through the registry backend and blobcache;
//   - nydusd (root, /dev/fuse): `nydusd --image` until RUNNING, `head -c 4096` of
//     /usr/bin/ls through the mount, and `chroot <mnt> /bin/sh -c 'ls /'`.
// The same root filesystem as a GNU tar + gzip layer served unconverted (`targz-ref`,
// zran) goes through the same registry: nydusd's start-up on it is reported next to
// the native image's, as ratios, with the size of the nydus artifact (bootstrap and
// meta blob) against the layer's. Likewise the same tree as an eStargz layer made by
// stargz-snapshotter's ctr-remote (its image pushed as it is), served through
// `estargz-ref` and `push --oci-ref`: the artifact is the bootstrap alone.
// Prints medians and the ratios to the curl baseline; --json writes every sample. With
// --mbit and --rtt-ms every byte (curl's, the backend's, the daemon's) goes through a
// shaping proxy (shaper.ts), so the comparison is over a link like a real network's.
//
//   node --import tsx bench/registry/startup.bench.ts [--rootfs DIR] [--runs N] [--json FILE]
//        [--mbit N --rtt-ms N]
//
// Needs root (chroot, strace, mount), docker-registry, curl, strace, containerd and
// ctr-remote (stargz-snapshotter), and debootstrap (only
// when --rootfs does not exist yet: it is created there, which needs a Debian mirror).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createEstargzRefImage } from '../../src/builder/estargz-ref.js';
import { createTargzRefImage } from '../../src/builder/targz-ref.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { fetchImageBootstrap, imageConfig } from '../../src/registry/pull.js';
import { clientFor } from '../../src/registry/distribution.js';
import { MEDIA_TYPE_OCI_MANIFEST } from '../../src/registry/nydus-manifest.js';
import { pushImage } from '../../src/registry/push.js';
import { parseReference } from '../../src/registry/reference.js';
import { createStorage } from '../../src/storage/factory.js';
import { resolvePath } from '../../src/storage/prefetch-list.js';
import { makeEstargzLayer } from '../../test/builder/estargz-layer.js';
import { isRoot } from '../../test/helpers/env.js';
import { haveNydusd, startDaemon } from '../../test/helpers/registry-nydusd.js';
import { startRegistry } from '../../test/helpers/registry-server.js';
import { runCommand, runProgram } from '../../test/helpers/run.js';
import { commonOptions, log, owner, runBench } from './bench-process.js';
import { ensureRootfs, median, startupSet } from './rootfs-trace.js';
import { startShaper } from './shaper.js';

const { values } = parseArgs({
  options: {
    ...commonOptions,
  },
});
const rootfs = values.rootfs!;
const runs = Number(values.runs);


async function curlBlob(url: string): Promise<{ ttfb: number; total: number; bytes: number }> {
  const r = await runCommand('curl', ['-sS', '-o', '/dev/null', '-w', '%{time_starttransfer} %{time_total} %{size_download}', url]);
  if (r.code !== 0) throw new Error(`curl failed: ${r.stderr}`);
  const [ttfb, total, bytes] = r.stdout.trim().split(' ').map(Number);
  return { ttfb: ttfb * 1000, total: total * 1000, bytes };
}

/**
 * One cold `nydusd --image` start: until RUNNING, `head -c 4096` of /usr/bin/ls, then
 * `chroot sh -c 'ls /'`, and the bytes fetched; samples go under `<prefix>.*`.
 */
async function mountedStartup(reference: string, prefix: string, add: (k: string, v: number) => void): Promise<void> {
  const work = mkdtempSync('/tmp/registry-bench-mount-');
  owner.after(() => rmSync(work, { recursive: true, force: true }));
  const config = join(work, 'config.json');
  writeFileSync(config, JSON.stringify({ version: 2, cache: { type: 'blobcache', filecache: { work_dir: join(work, 'cache') } } }));
  const m0 = performance.now();
  const d = await startDaemon(owner, ['--image', reference, '--config', config]);
  const m1 = performance.now();
  const headRun = await runCommand('head', ['-c', '4096', join(d.mnt, 'usr/bin/ls')]);
  const m2 = performance.now();
  const shell = await runCommand('chroot', [d.mnt, '/bin/sh', '-c', 'ls /']);
  const m3 = performance.now();
  if (headRun.code !== 0 || shell.code !== 0) throw new Error(`through the mount of ${reference}: ${headRun.stderr}${shell.stderr}`);
  const fetched = ((await d.get('/api/v1/metrics/backend')).body as { read_amount_total: number }).read_amount_total;
  add(`${prefix}.running_ms`, m1 - m0);
  add(`${prefix}.ttfb_ms`, m2 - m1);
  add(`${prefix}.sh_ls_ms`, m3 - m2);
  add(`${prefix}.fetched_bytes`, fetched);
  await d.stop();
  rmSync(work, { recursive: true, force: true });
}

async function main(): Promise<void> {
  if (!isRoot()) throw new Error('run as root (chroot, strace, FUSE)');
  ensureRootfs(rootfs, log);
  const set = startupSet(rootfs);
  log(`start-up set: ${set.length} files: ${set.join(' ')}`);
  const dir = mkdtempSync('/tmp/registry-bench-');
  owner.after(() => rmSync(dir, { recursive: true, force: true }));
  const bootstrap = join(dir, 'image.boot');
  const blobDir = join(dir, 'blobs');
  execFileSync('mkdir', ['-p', blobDir]);
  const built = await runProgram('nydus-image', ['create', '--bootstrap', bootstrap, '--blob-dir', blobDir, rootfs], { timeoutMs: 900_000 });
  if (built.code !== 0) throw new Error(built.stderr);
  const reg = await startRegistry(owner);
  const pushed = await pushImage({ bootstrap, blobDir, target: `${reg.host}/bench/rootfs:v1` });
  // The targz-ref image of the same tree: the layer as GNU tar + gzip make it.
  const layer = join(dir, 'layer.tar.gz');
  execFileSync('sh', ['-c', `tar --numeric-owner --xattrs -C '${rootfs}' -cf - . | gzip -6 > '${layer}'`]);
  const refBoot = join(dir, 'targz-ref.boot');
  const refBlobs = join(dir, 'targz-ref-blobs');
  execFileSync('mkdir', ['-p', refBlobs]);
  const ref = await createTargzRefImage({ source: layer, bootstrap: refBoot, blobDir: refBlobs });
  await pushImage({ bootstrap: refBoot, blobDir: refBlobs, target: `${reg.host}/bench/rootfs:targz-ref` });
  const artifactBytes = statSync(refBoot).size + statSync(ref.metaPath).size;
  // The eStargz image of the same tree, as ctr-remote makes it, and its estargz-ref artifact.
  const esgzDir = join(dir, 'estargz');
  execFileSync('mkdir', ['-p', esgzDir]);
  log('converting the layer to eStargz with ctr-remote');
  const esgz = await makeEstargzLayer(rootfs, esgzDir);
  const esgzClient = clientFor(parseReference(`${reg.host}/bench/rootfs`), {});
  owner.after(() => esgzClient.close());
  const esgzLayerBytes = statSync(esgz.layer).size;
  await esgzClient.pushBlob(esgz.layerDescriptor.digest, esgzLayerBytes, () => createReadStream(esgz.layer));
  await esgzClient.pushBlob(`sha256:${createHash('sha256').update(esgz.config).digest('hex')}`, esgz.config.length, () => esgz.config);
  await esgzClient.putManifest('esgz', MEDIA_TYPE_OCI_MANIFEST, esgz.manifest);
  const esgzBoot = join(dir, 'estargz-ref.boot');
  await createEstargzRefImage({ source: esgz.layer, bootstrap: esgzBoot });
  const esgzPushed = await pushImage({ bootstrap: esgzBoot, target: `${reg.host}/bench/rootfs:esgz-nydus`, ociRef: true });
  const esgzArtifactBytes = esgzPushed.manifest.layers.reduce((n, l) => n + l.size, 0);
  let host = reg.host;
  let link = 'loopback';
  if (values.mbit !== undefined) {
    const shaper = await startShaper(reg.port, { mbit: Number(values.mbit), rttMs: Number(values['rtt-ms']) });
    owner.after(() => shaper.close());
    host = shaper.host;
    link = `${values.mbit} Mbit/s, ${values['rtt-ms']} ms RTT`;
  }
  const reference = `${host}/bench/rootfs:v1`;
  const refReference = `${host}/bench/rootfs:targz-ref`;
  const esgzReference = `${host}/bench/rootfs:esgz-nydus`;
  const sb = await openBootstrap(bootstrap);
  const blobs = sb.blobs.map((b) => ({ id: b.blobId, size: b.compressedSize }));
  const blobBytes = blobs.reduce((n, b) => n + b.size, 0);
  const setBytes = set.reduce((n, p) => n + sb.getAttr(resolvePath(sb, p)!).size, 0);
  log(`image: ${sb.inodeCount} inodes, ${blobs.length} blob(s) of ${blobBytes} bytes, manifest ${pushed.manifestDigest}; start-up set ${setBytes} bytes`);

  const samples: Record<string, number[]> = {};
  const add = (k: string, v: number): void => void (samples[k] ??= []).push(v);
  const canMount = haveNydusd() && existsSync('/dev/fuse');
  for (let run = 0; run < runs; run++) {
    let curlTotal = 0;
    for (const b of blobs) {
      const c = await curlBlob(`http://${host}/v2/bench/rootfs/blobs/sha256:${b.id}`);
      add('curl.ttfb_ms', c.ttfb);
      curlTotal += c.total;
    }
    add('curl.total_ms', curlTotal);

    const work = mkdtempSync('/tmp/registry-bench-cache-');
    owner.after(() => rmSync(work, { recursive: true, force: true }));
    const t0 = performance.now();
    const pulled = await fetchImageBootstrap({ reference, workDir: work });
    const t1 = performance.now();
    const storage = await createStorage(imageConfig(pulled.reference, work, undefined, { plainHttp: true }), sb);
    const ls = resolvePath(sb, '/usr/bin/ls')!;
    const head = Buffer.alloc(4096);
    await storage.reader.readRange(sb.fileChunks(ls, 0, 4096), 0, head);
    const t2 = performance.now();
    for (const p of set) {
      const ino = resolvePath(sb, p)!;
      const out = Buffer.alloc(sb.getAttr(ino).size);
      await storage.reader.readRange(sb.fileChunks(ino, 0, out.length), 0, out);
    }
    const t3 = performance.now();
    add('storage.bootstrap_ms', t1 - t0);
    add('storage.ttfb_ms', t2 - t1);
    add('storage.startup_set_ms', t3 - t1);
    add('storage.fetched_bytes', storage.backend.metrics.readAmountTotal);
    await storage.close();
    rmSync(work, { recursive: true, force: true });

    if (canMount) {
      await mountedStartup(reference, 'nydusd', add);
      await mountedStartup(refReference, 'targz_ref', add);
      await mountedStartup(esgzReference, 'estargz', add);
    }
    log(`run ${run + 1}/${runs} done`);
  }

  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  const ratio = (k: string): string => (med[k] / med['curl.total_ms']).toFixed(3);
  const rows: [string, string][] = [
    ['blob size (bytes)', String(blobBytes)],
    ['start-up set', `${set.length} files, ${setBytes} bytes`],
    ['curl whole blob: first byte / total (ms)', `${med['curl.ttfb_ms'].toFixed(1)} / ${med['curl.total_ms'].toFixed(1)}`],
    ['storage: bootstrap fetch (ms)', med['storage.bootstrap_ms'].toFixed(1)],
    ['storage: first 4 KiB of /usr/bin/ls (ms)', `${med['storage.ttfb_ms'].toFixed(1)} (ratio to curl total ${ratio('storage.ttfb_ms')})`],
    ['storage: start-up set (ms)', `${med['storage.startup_set_ms'].toFixed(1)} (ratio ${ratio('storage.startup_set_ms')})`],
    ['storage: bytes fetched', `${med['storage.fetched_bytes']} (${((med['storage.fetched_bytes'] / blobBytes) * 100).toFixed(2)}% of the blob)`],
  ];
  if (canMount) {
    rows.push(
      ['nydusd --image until RUNNING (ms)', med['nydusd.running_ms'].toFixed(1)],
      ['nydusd: head -c 4096 /usr/bin/ls (ms)', `${med['nydusd.ttfb_ms'].toFixed(1)} (ratio ${ratio('nydusd.ttfb_ms')})`],
      ["nydusd: chroot sh -c 'ls /' (ms)", `${med['nydusd.sh_ls_ms'].toFixed(1)} (ratio ${ratio('nydusd.sh_ls_ms')})`],
      ['nydusd: bytes fetched', `${med['nydusd.fetched_bytes']} (${((med['nydusd.fetched_bytes'] / blobBytes) * 100).toFixed(2)}% of the blob)`],
      ['targz-ref: layer / nydus artifact (bytes)', `${ref.compressedSize} / ${artifactBytes} (${((artifactBytes / ref.compressedSize) * 100).toFixed(2)}%)`],
      ['targz-ref: nydusd --image until RUNNING (ms)', `${med['targz_ref.running_ms'].toFixed(1)} (native ${med['nydusd.running_ms'].toFixed(1)})`],
      ['targz-ref: head -c 4096 /usr/bin/ls (ms)', `${med['targz_ref.ttfb_ms'].toFixed(1)} (ratio to native ${(med['targz_ref.ttfb_ms'] / med['nydusd.ttfb_ms']).toFixed(3)})`],
      [
        "targz-ref: chroot sh -c 'ls /' (ms)",
        `${med['targz_ref.sh_ls_ms'].toFixed(1)} (ratio to native ${(med['targz_ref.sh_ls_ms'] / med['nydusd.sh_ls_ms']).toFixed(3)})`,
      ],
      ['targz-ref: bytes fetched', `${med['targz_ref.fetched_bytes']} (${((med['targz_ref.fetched_bytes'] / ref.compressedSize) * 100).toFixed(2)}% of the layer)`],
      ['eStargz: layer / nydus artifact (bytes)', `${esgzLayerBytes} / ${esgzArtifactBytes} (${((esgzArtifactBytes / esgzLayerBytes) * 100).toFixed(2)}%)`],
      ['eStargz: nydusd --image until RUNNING (ms)', `${med['estargz.running_ms'].toFixed(1)} (native ${med['nydusd.running_ms'].toFixed(1)})`],
      ['eStargz: head -c 4096 /usr/bin/ls (ms)', `${med['estargz.ttfb_ms'].toFixed(1)} (ratio to native ${(med['estargz.ttfb_ms'] / med['nydusd.ttfb_ms']).toFixed(3)})`],
      ["eStargz: chroot sh -c 'ls /' (ms)", `${med['estargz.sh_ls_ms'].toFixed(1)} (ratio to native ${(med['estargz.sh_ls_ms'] / med['nydusd.sh_ls_ms']).toFixed(3)})`],
      ['eStargz: bytes fetched', `${med['estargz.fetched_bytes']} (${((med['estargz.fetched_bytes'] / esgzLayerBytes) * 100).toFixed(2)}% of the layer)`],
    );
  }
  process.stdout.write(`registry start-up benchmark (${link}), medians of ${runs} cold runs\n`);
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(44)} ${v}\n`);
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ link, blobBytes, layerBytes: ref.compressedSize, artifactBytes, esgzLayerBytes, esgzArtifactBytes, startupSet: set, samples, medians: med }, null, 2) + '\n');
}

await runBench(main);
