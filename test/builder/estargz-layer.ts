// An eStargz layer from a real producer, made once per process for the eStargz tests:
// the Debian minbase root filesystem as a gzip OCI image (GNU tar, gzip), imported into a
// private containerd (own root, state and socket in a scratch directory) and converted by
// stargz-snapshotter's `ctr-remote image optimize --no-optimize --oci`, then exported.
// containerd runs only for the conversion.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { runOk } from '../conformance/child.js';
import { runCommand } from '../helpers/run.js';
import { scratch } from './image-helpers.js';
import { ensureRootfs } from './rootfs.js';

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
  /** The original gzip layer (GNU tar + gzip) the conversion started from. */
  gzipLayer: string;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const NAMESPACE = 'nydus-ts';

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
  await runOk('tar', ['-C', dir, '-cf', tar, '.'], work);
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
    const ctr = (args: string[]): Promise<string> => runOk('ctr-remote', ['--address', sock, '--namespace', NAMESPACE, ...args], work);
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
  await runOk('sh', ['-c', `tar --numeric-owner --xattrs -C '${rootfs}' -cf - . | gzip -6 > '${gzipLayer}'`], workDir);
  const imageTar = await ociImageTar(workDir, gzipLayer);
  const out = join(workDir, 'export');
  mkdirSync(out);
  await withContainerd(workDir, async (ctr) => {
    await ctr(['images', 'import', '--no-unpack', imageTar]);
    await ctr(['images', 'optimize', '--no-optimize', '--oci', 'nydus-ts.test/minbase:gzip', 'nydus-ts.test/minbase:esgz']);
    await ctr(['images', 'export', join(workDir, 'esgz.tar'), 'nydus-ts.test/minbase:esgz']);
  });
  await runOk('tar', ['-C', out, '-xf', join(workDir, 'esgz.tar')], workDir);
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
    gzipLayer,
  };
}

let made: Promise<EstargzImage | string> | undefined;

/** The eStargz layer of the test root filesystem and its image, or why they cannot be made here. */
export function estargzImage(): Promise<EstargzImage | string> {
  made ??= (async () => {
    const rootfs = await ensureRootfs();
    if (rootfs.dir === undefined) return rootfs.reason ?? 'no rootfs';
    if (process.getuid?.() !== 0) return 'containerd needs root';
    const work = scratch('estargz');
    process.once('exit', () => work.cleanup());
    return { rootfs: rootfs.dir, ...(await makeEstargzLayer(rootfs.dir, work.dir)) };
  })();
  return made;
}
