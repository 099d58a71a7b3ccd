// An eStargz layer from a real producer, made once per process for the eStargz tests:
// the Debian minbase root filesystem as a gzip OCI image (GNU tar, gzip), imported into a
// private containerd (own root, state and socket in a scratch directory) and converted by
// stargz-snapshotter's `ctr-remote image optimize --no-optimize --oci`, then exported.
// containerd runs only for the conversion. The result is cached beside the root
// filesystem (ROOTFS_DIR.estargz, tied to the rootfs's completion marker) so that each
// test process does not convert again; a lock directory serialises the first conversion.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { runCommand } from '../helpers/run.js';
import { scratch } from './image-helpers.js';
import { ensureRootfs, ROOTFS_DIR } from './rootfs.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface EstargzImage {
  /** The tree the layer was made from. */
  rootfs: string;
  /** The eStargz layer (a valid .tar.gz), as ctr-remote wrote it. */
  layer: string;
  /** Its sha256 (hex). */
  layerId: string;
  /** The converted image's manifest and config (bytes as exported). */
  manifest: Buffer;
  config: Buffer;
  /** The manifest's layer descriptor (with the TOC digest annotation). */
  layerDescriptor: Descriptor;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const NAMESPACE = 'nydus-ts';

/** Runs a program to success; a converter on a loaded 2-core machine may take minutes. */
async function must(cmd: string, args: string[]): Promise<string> {
  const r = await runCommand(cmd, args, { timeoutMs: 15 * 60_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Writes `data` as an OCI layout blob; returns its descriptor fields. */
function putBlob(dir: string, data: Buffer, mediaType: string): Descriptor {
  const digest = sha256(data);
  writeFileSync(join(dir, 'blobs', 'sha256', digest), data);
  return { mediaType, digest: `sha256:${digest}`, size: data.length };
}

/** A one-layer OCI image layout around `layer` (a .tar.gz), as a tar. */
async function ociImageTar(work: string, layer: string): Promise<string> {
  const dir = join(work, 'oci');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const gz = readFileSync(layer);
  const diffId = sha256(gunzipSync(gz, { maxOutputLength: 2 ** 31 }));
  const layerDesc = putBlob(dir, gz, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] }, config: {} };
  const configDesc = putBlob(dir, Buffer.from(JSON.stringify(config)), 'application/vnd.oci.image.config.v1+json');
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: [layerDesc] };
  const manifestDesc = putBlob(dir, Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
  const index = { schemaVersion: 2, manifests: [{ ...manifestDesc, annotations: { 'io.containerd.image.name': 'nydus-ts.test/minbase:gzip' } }] };
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const tar = join(work, 'image.tar');
  await must('tar', ['-C', dir, '-cf', tar, '.']);
  return tar;
}

/** Runs a private containerd for `fn`, then stops it. */
async function withContainerd<T>(work: string, fn: (ctr: (args: string[]) => Promise<string>) => Promise<T>): Promise<T> {
  const dir = join(work, 'containerd');
  mkdirSync(dir);
  const sock = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      `[grpc]\n  address = "${sock}"`,
      `[ttrpc]\n  address = "${sock}.ttrpc"`,
      `[debug]\n  address = "${sock}.debug"`,
    ].join('\n') + '\n',
  );
  let log = '';
  const daemon = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  daemon.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  try {
    const ctr = (args: string[]): Promise<string> => must('ctr-remote', ['--address', sock, '--namespace', NAMESPACE, ...args]);
    for (let i = 0; ; i++) {
      if (existsSync(sock) && (await runCommand('ctr-remote', ['--address', sock, 'version'])).code === 0) break;
      if (i === 100 || daemon.exitCode !== null) throw new Error(`containerd did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return await fn(ctr);
  } finally {
    daemon.kill('SIGTERM');
    await exited;
  }
}

/** The eStargz layer ctr-remote makes of `rootfs` (work files under `workDir`). */
export async function makeEstargzLayer(rootfs: string, workDir: string): Promise<Omit<EstargzImage, 'rootfs'>> {
  const gzipLayer = join(workDir, 'layer.tar.gz');
  await must('sh', ['-c', `tar --numeric-owner --xattrs -C '${rootfs}' -cf - . | gzip -6 > '${gzipLayer}'`]);
  const imageTar = await ociImageTar(workDir, gzipLayer);
  const out = join(workDir, 'export');
  mkdirSync(out);
  await withContainerd(workDir, async (ctr) => {
    await ctr(['images', 'import', '--no-unpack', imageTar]);
    await ctr(['images', 'optimize', '--no-optimize', '--oci', 'nydus-ts.test/minbase:gzip', 'nydus-ts.test/minbase:esgz']);
    await ctr(['images', 'export', join(workDir, 'esgz.tar'), 'nydus-ts.test/minbase:esgz']);
  });
  await must('tar', ['-C', out, '-xf', join(workDir, 'esgz.tar')]);
  const blob = (d: string): string => join(out, 'blobs', 'sha256', d.replace(/^sha256:/, ''));
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const manifest = readFileSync(blob(index.manifests[0].digest));
  const m = JSON.parse(manifest.toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
  const layerDescriptor = m.layers[0];
  const layer = join(workDir, 'layer.estargz');
  renameSync(blob(layerDescriptor.digest), layer);
  if (statSync(layer).size !== layerDescriptor.size) throw new Error('the exported eStargz layer does not match its descriptor');
  return {
    layer,
    layerId: layerDescriptor.digest.replace(/^sha256:/, ''),
    manifest,
    config: readFileSync(blob(m.config.digest)),
    layerDescriptor,
  };
}

const CACHE = `${ROOTFS_DIR}.estargz`;
const LOCK = `${CACHE}.lock`;

/** The cached conversion of the rootfs whose marker reads `stamp`, if there is one. */
function cached(stamp: string): Omit<EstargzImage, 'rootfs'> | undefined {
  const done = join(CACHE, 'complete');
  if (!existsSync(done) || readFileSync(done, 'utf8') !== stamp) return undefined;
  const manifest = readFileSync(join(CACHE, 'manifest.json'));
  const layerDescriptor = (JSON.parse(manifest.toString('utf8')) as { layers: Descriptor[] }).layers[0];
  return { layer: join(CACHE, 'layer.estargz'), layerId: layerDescriptor.digest.replace(/^sha256:/, ''), manifest, config: readFileSync(join(CACHE, 'config.json')), layerDescriptor };
}

let made: Promise<EstargzImage | string> | undefined;

/** The eStargz layer of the test root filesystem and its image, or why they cannot be made here. */
export function estargzImage(): Promise<EstargzImage | string> {
  made ??= (async () => {
    const rootfs = await ensureRootfs();
    if (rootfs.dir === undefined) return rootfs.reason ?? 'no rootfs';
    if (process.getuid?.() !== 0) return 'containerd needs root';
    const stamp = readFileSync(`${ROOTFS_DIR}.complete`, 'utf8');
    for (;;) {
      const hit = cached(stamp);
      if (hit) return { rootfs: rootfs.dir, ...hit };
      try {
        mkdirSync(LOCK);
        break;
      } catch {
        // Another process converts: wait for it, or take over a stale lock.
        if (Date.now() - statSync(LOCK).mtimeMs > 10 * 60_000) rmSync(LOCK, { recursive: true, force: true });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    const work = scratch('estargz');
    try {
      const img = await makeEstargzLayer(rootfs.dir, work.dir);
      const tmp = `${CACHE}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp);
      copyFileSync(img.layer, join(tmp, 'layer.estargz'));
      writeFileSync(join(tmp, 'manifest.json'), img.manifest);
      writeFileSync(join(tmp, 'config.json'), img.config);
      writeFileSync(join(tmp, 'complete'), stamp);
      rmSync(CACHE, { recursive: true, force: true });
      renameSync(tmp, CACHE);
      return { rootfs: rootfs.dir, ...(cached(stamp) as Omit<EstargzImage, 'rootfs'>) };
    } finally {
      work.cleanup();
      rmSync(LOCK, { recursive: true, force: true });
    }
  })();
  return made;
}
