// `nydus-image convert --oci-ref` against docker-registry, as a new user runs it: an OCI
// image already in a repository (GNU tar + gzip layers with whiteouts, or an eStargz
// layer made by ctr-remote under a gzip one) becomes a Nydus image under another tag of
// the same repository in one command, and `nydusd --image` serves the layers applied in
// order (compared with overlayfs over the same layers), reading little of them. The
// original layers stay byte for byte; an eStargz layer is only read by range (the
// registry's access log says so). Refusals say what and where in one line and publish
// nothing. One registry serves the whole file.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { clientFor, type DistributionClient } from '../../src/registry/distribution.js';
import { ANNOTATION_NYDUS_BOOTSTRAP, ANNOTATION_NYDUS_REF, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_OCI_INDEX, ociArch, type Descriptor } from '../../src/registry/nydus-manifest.js';
import { parseReference } from '../../src/registry/reference.js';
import { putOciImage, random } from '../helpers/registry-images.js';
import { blobcacheConfig, registryAndImage, startDaemon } from '../helpers/registry-nydusd.js';
import { fileOwner, parseAccessLog, startRegistry, type RegistryServer } from '../helpers/registry-server.js';
import { programArgv } from '../helpers/env.js';
import { runCommand, runProgram } from '../helpers/run.js';
import { estargzImage } from '../builder/estargz-layer.js';
import { scratch } from '../builder/image-helpers.js';
import { mountOverlay, overlayLayer, stampAndTar, writeFiles } from '../builder/layer-helpers.js';
import { compareTrees } from '../builder/tree-helpers.js';

const owner = fileOwner();
const work = scratch('convert');
owner.after(() => work.cleanup());
let registryStarted: Promise<RegistryServer> | undefined;
const registry = (): Promise<RegistryServer> => (registryStarted ??= startRegistry(owner, { kind: 'none' }, { accessLog: true }));

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const RUN_CONFIG = { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'STAGE=original'], Cmd: ['/bin/sh'], WorkingDir: '/' };

/** A layer directory as GNU tar + gzip make it: the .tar.gz, its descriptor and diff id. */
interface GzipLayer {
  dir: string;
  data: Buffer;
  descriptor: Descriptor;
  diffId: string;
}

/** Tars (GNU tar, PAX, distinct mtimes) and gzips (GNU gzip -6) each directory. */
async function gzipLayers(dirs: string[]): Promise<GzipLayer[]> {
  const tars = dirs.map((d) => `${d}.tar`);
  await stampAndTar(dirs, tars);
  const out: GzipLayer[] = [];
  for (const [i, tar] of tars.entries()) {
    const diffId = sha256(readFileSync(tar));
    const r = await runCommand('gzip', ['-6', '-n', tar]);
    assert.equal(r.code, 0, r.stderr);
    const data = readFileSync(`${tar}.gz`);
    out.push({ dir: dirs[i], data, descriptor: { mediaType: MEDIA_TYPE_LAYER_GZIP, digest: sha256(data), size: data.length }, diffId });
  }
  return out;
}

async function pushLayers(client: DistributionClient, layers: readonly GzipLayer[]): Promise<void> {
  for (const l of layers) await client.pushBlob(l.descriptor.digest, l.data.length, () => l.data);
}

const imageConfig = (diffIds: string[]): Record<string, unknown> => ({ architecture: ociArch(), os: 'linux', config: RUN_CONFIG, rootfs: { type: 'layers', diff_ids: diffIds } });

/** `nydus-image convert --oci-ref` with `args`. */
function convert(args: string[]): ReturnType<typeof runProgram> {
  return runProgram('nydus-image', ['convert', '--oci-ref', ...args], { timeoutMs: 600_000 });
}

/** A failed run: exit 1 and exactly one line on stderr matching `message`; nothing under `target`. */
async function assertRefused(r: Awaited<ReturnType<typeof runProgram>>, message: RegExp, client: DistributionClient, target: string): Promise<void> {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, message);
  await assert.rejects(client.getManifest(target), /failed to find manifest/, 'nothing was published');
}

/** Bytes the daemon's backend has read. */
async function backendRead(d: Awaited<ReturnType<typeof startDaemon>>): Promise<number> {
  return ((await d.get('/api/v1/metrics/backend')).body as { read_amount_total: number }).read_amount_total;
}

const REPO = 'apps/gzip';
let gzipMade: Promise<{ layers: GzipLayer[]; otherArch: string }> | undefined;

/**
 * Three GNU tar + gzip layers in REPO under tag `multi`, an index: this platform's
 * manifest, and another architecture's whose one layer is zstd. The upper layers delete
 * files and a directory, replace a symlink, and make a directory opaque.
 */
function gzipImage(reg: RegistryServer): Promise<{ layers: GzipLayer[]; otherArch: string }> {
  gzipMade ??= (async () => {
    const dirs = [1, 2, 3].map((n) => join(work.dir, `gzip-layer${n}`));
    writeFiles(dirs[0], {
      'etc/small.conf': 'key=value\n',
      'etc/os-release': 'ID=convert-test\n',
      'bin/big1': random(4 << 20),
      'bin/big2': random(3 << 20),
      a: 'a1',
      'b/c': 'c1',
      'b/d/e': 'e1',
      keep: 'k1',
      'del-dir/x': 'x1',
      'opq/old1': 'o1',
      'opq/sub/old2': 'o2',
      'link-target': 'lt',
      'empty-dir': null,
    });
    linkSync(join(dirs[0], 'link-target'), join(dirs[0], 'hl'));
    symlinkSync('keep', join(dirs[0], 'sym'));
    writeFiles(dirs[1], { '.wh.a': '', 'opq/.wh..wh..opq': '', 'opq/new': 'n2', '.wh.del-dir': '', keep: 'k2', added: 'added2', '.wh.sym': '', 'lib/data': random(2 << 20) });
    writeFiles(dirs[2], { 'a/inner': 'inner3', 'del-dir/y': 'y3', '.wh.added': '', 'bin/.wh.big2': '', 'etc/extra.conf': 'extra=3\n' });
    const layers = await gzipLayers(dirs);
    const client = clientFor(parseReference(`${reg.host}/${REPO}`), {});
    try {
      await pushLayers(client, layers);
      const here = await putOciImage(client, 'multi-here', layers.map((l) => l.descriptor), imageConfig(layers.map((l) => l.diffId)));
      const zstd = Buffer.from('not converted: a zstd layer is refused by its media type\n');
      await client.pushBlob(sha256(zstd), zstd.length, () => zstd);
      const otherArch = ociArch() === 'arm64' ? 'amd64' : 'arm64';
      const other = await putOciImage(client, 'multi-other', [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: sha256(zstd), size: zstd.length }], {
        ...imageConfig([sha256(zstd)]),
        architecture: otherArch,
      });
      const index = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_OCI_INDEX,
        manifests: [
          { ...here, platform: { os: 'linux', architecture: ociArch() } },
          { ...other, platform: { os: 'linux', architecture: otherArch } },
        ],
      };
      await client.putManifest('multi', MEDIA_TYPE_OCI_INDEX, Buffer.from(JSON.stringify(index)));
      return { layers, otherArch };
    } finally {
      await client.close();
    }
  })();
  return gzipMade;
}

/** The target's manifest and config. */
async function published(client: DistributionClient, tag: string): Promise<{ layers: Descriptor[]; config: { config: unknown; architecture: string } }> {
  const m = (await client.getManifest(tag)).json as unknown as { layers: Descriptor[]; config: Descriptor };
  const config = JSON.parse((await client.fetchBlob(m.config.digest, 1 << 20)).toString('utf8')) as { config: unknown; architecture: string };
  return { layers: m.layers, config };
}

/** The prelude of the gzip image's tests: the shared registry with the image in REPO, and a client of REPO; undefined when skipped. */
async function gzipSetup(t: TestContext): Promise<{ reg: RegistryServer; layers: GzipLayer[]; otherArch: string; client: DistributionClient } | undefined> {
  const setup = await registryAndImage(t, async () => true, registry);
  if (setup === undefined) return undefined;
  const image = await gzipImage(setup.reg);
  const client = clientFor(parseReference(`${setup.reg.host}/${REPO}`), {});
  t.after(() => client.close());
  return { reg: setup.reg, ...image, client };
}

/** A directory under /tmp removed when the test ends. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync('/tmp/registry-convert-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('convert --oci-ref: a three-layer GNU tar + gzip image becomes a Nydus image in its repository; nydusd --image serves the layers applied in order, lazily; the layers stay as they were', async (t) => {
  const setup = await gzipSetup(t);
  if (setup === undefined) return;
  const { reg, layers, client } = setup;
  const dir = tempDir(t);

  const json = join(dir, 'out.json');
  const r = await convert(['--source', `${reg.host}/${REPO}:multi`, '--target', `${reg.host}/${REPO}:multi-nydus`, '--work-dir', join(dir, 'work'), '-J', json]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 4, r.stdout);
  layers.forEach((l, i) =>
    assert.match(lines[i], new RegExp(`^layer ${i + 1}/3 ${l.descriptor.digest} targz-ref: ${l.data.length} bytes, downloaded and indexed; bootstrap \\d+ bytes, meta blob \\d+ bytes$`)),
  );
  assert.match(lines[3], new RegExp(`^pushed ${reg.host}/${REPO}:multi-nydus@sha256:[0-9a-f]{64} from ${reg.host}/${REPO}:multi@sha256:[0-9a-f]{64} \\(artifact \\d+ bytes beside \\d+ bytes of original layers\\)$`));
  const out = JSON.parse(readFileSync(json, 'utf8')) as { layers: { digest: string; kind: string }[]; artifact_size: number; manifest_digest: string };
  assert.deepEqual(out.layers.map((l) => [l.digest, l.kind]), layers.map((l) => [l.descriptor.digest, 'targz-ref']));
  assert.deepEqual(readdirSync(join(dir, 'work')), [], 'the scratch directory is removed');

  // The artifact: a meta blob per layer, naming the layer it indexes, in order; the bootstrap; the source's run config.
  const target = await published(client, 'multi-nydus');
  assert.deepEqual(target.layers.slice(0, 3).map((l) => l.annotations?.[ANNOTATION_NYDUS_REF]), layers.map((l) => l.descriptor.digest));
  assert.equal(target.layers[3].annotations?.[ANNOTATION_NYDUS_BOOTSTRAP], 'true');
  assert.deepEqual(target.config.config, RUN_CONFIG);
  assert.equal(target.config.architecture, ociArch());
  const layerBytes = layers.reduce((n, l) => n + l.data.length, 0);
  t.diagnostic(`artifact ${out.artifact_size} B beside ${layerBytes} B of gzip layers (${((100 * out.artifact_size) / layerBytes).toFixed(2)}%)`);
  for (const l of layers) {
    const stored = Buffer.from(await (await fetch(`${reg.url}/v2/${REPO}/blobs/${l.descriptor.digest}`)).arrayBuffer());
    assert.ok(stored.equals(l.data), `layer ${l.descriptor.digest} is unchanged in the registry`);
  }

  const d = await startDaemon(t, ['--image', `${reg.host}/${REPO}:multi-nydus`, '--config', blobcacheConfig(dir)]);
  assert.equal(readFileSync(join(d.mnt, 'etc/small.conf'), 'utf8'), 'key=value\n');
  const read = await backendRead(d);
  t.diagnostic(`one small file: ${read} of ${layerBytes} layer bytes (${((100 * read) / layerBytes).toFixed(2)}%, meta blob included)`);
  assert.ok(read > 0 && read < layerBytes * 0.2);
  const lowers: string[] = [];
  for (const [i, l] of layers.entries()) {
    const o = join(dir, `ovl-layer${i + 1}`);
    await overlayLayer(l.dir, o);
    lowers.unshift(o);
  }
  const ovl = await mountOverlay(lowers, join(dir, 'ovl'));
  try {
    assert.deepEqual(compareTrees(ovl.dir, d.mnt, { ignoreRootMtime: true }), []);
  } finally {
    await ovl.close();
  }
  await d.stop();
});

test('convert --oci-ref refuses, in one line and publishing nothing: a zstd layer (another platform of the index), a missing source, a target outside the layers\' repository, no --oci-ref', async (t) => {
  const setup = await gzipSetup(t);
  if (setup === undefined) return;
  const { reg, otherArch, client } = setup;
  const source = `${reg.host}/${REPO}:multi`;

  const zstd = await convert(['--source', source, '--target', `${reg.host}/${REPO}:other-nydus`, '--platform', `linux/${otherArch}`]);
  await assertRefused(zstd, /^nydus-image: ERR_BUILD_SOURCE: failed to convert layer 1\/1 sha256:[0-9a-f]{64}: media type application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd is zstd; --oci-ref serves gzip and eStargz layers only$/m, client, 'other-nydus');

  const missing = await convert(['--source', `${reg.host}/${REPO}:nope`, '--target', `${reg.host}/${REPO}:nope-nydus`]);
  await assertRefused(missing, new RegExp(`failed to find manifest nope in ${reg.host}/${REPO}`), client, 'nope-nydus');

  const elsewhere = clientFor(parseReference(`${reg.host}/apps/elsewhere`), {});
  t.after(() => elsewhere.close());
  const moved = await convert(['--source', source, '--target', `${reg.host}/apps/elsewhere:nydus`]);
  await assertRefused(
    moved,
    new RegExp(`layer 1/3 sha256:[0-9a-f]{64} is not in ${reg.host}/apps/elsewhere, and the target's bootstrap reads the original layers from the target repository; convert to a tag of ${reg.host}/${REPO}`),
    elsewhere,
    'nydus',
  );

  const same = await convert(['--source', source, '--target', source]);
  assert.equal(same.code, 1);
  assert.match(same.stderr, /^nydus-image: ERR_STORAGE_MANIFEST: failed to convert .*: the target must be another tag \(the source's manifest is what keeps its layers in the repository\)\n$/);
  assert.equal((await client.getManifest('multi')).mediaType, MEDIA_TYPE_OCI_INDEX, 'the source is untouched');
  const usage = await runProgram('nydus-image', ['convert', '--source', source, '--target', `${reg.host}/${REPO}:x`]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /convert needs --oci-ref/);
});

test('convert --oci-ref interrupted by Ctrl-C mid-layer: exit 130, its scratch directory gone, nothing published; the next run converts', async (t) => {
  const setup = await gzipSetup(t);
  if (setup === undefined) return;
  const { reg, client } = setup;
  const dir = tempDir(t);
  const args = ['--source', `${reg.host}/${REPO}:multi`, '--target', `${reg.host}/${REPO}:again`, '--work-dir', dir];
  const [cmd, ...pre] = programArgv('nydus-image');
  const child = spawn(cmd, [...pre, 'convert', '--oci-ref', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    // The first layer is done: the second is being downloaded and indexed.
    if (stdout.includes('layer 1/3 ')) child.kill('SIGINT');
  });
  assert.equal(await exited, 130, stderr);
  assert.doesNotMatch(stdout, /layer 3\/3|pushed/);
  assert.match(stderr, /interrupted by SIGINT, partial outputs removed/);
  assert.deepEqual(readdirSync(dir), [], 'the scratch directory is removed');
  await assert.rejects(client.getManifest('again'), /failed to find manifest/);
  const r = await convert(args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^pushed /m);
});

test('convert --oci-ref: an eStargz layer from ctr-remote under a gzip layer; only the footer and TOC of the eStargz layer are read, by range; nydusd serves both layers; a wrong toc.digest is refused', async (t) => {
  const setup = await registryAndImage(t, estargzImage, registry);
  if (setup === undefined) return;
  const { img, reg } = setup;
  const repo = 'debian/esgz';
  const client = clientFor(parseReference(`${reg.host}/${repo}`), {});
  t.after(() => client.close());
  const dir = tempDir(t);

  // The upper layer deletes a file, makes a directory opaque and adds files.
  const top = join(work.dir, 'esgz-top');
  writeFiles(top, { 'etc/.wh.issue.net': '', 'usr/share/doc/.wh..wh..opq': '', 'usr/share/doc/README': 'converted\n', 'etc/converted.conf': 'x=1\n' });
  const [upper] = await gzipLayers([top]);
  const layerSize = statSync(img.layer).size;
  await client.pushBlob(img.layerDescriptor.digest, layerSize, () => createReadStream(img.layer));
  await pushLayers(client, [upper]);
  const esgzDiffId = (JSON.parse(img.config.toString('utf8')) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids[0];
  const config = imageConfig([esgzDiffId, upper.diffId]);
  await putOciImage(client, 'esgz', [img.layerDescriptor, upper.descriptor], config);
  const wrongToc = { ...img.layerDescriptor, annotations: { ...img.layerDescriptor.annotations, 'containerd.io/snapshot/stargz/toc.digest': sha256(Buffer.from('another TOC')) } };
  await putOciImage(client, 'esgz-wrong-toc', [wrongToc, upper.descriptor], config);

  const before = reg.accessLog().length;
  const r = await convert(['--source', `${reg.host}/${repo}:esgz`, '--target', `${reg.host}/${repo}:esgz-nydus`]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], new RegExp(`^layer 1/2 ${img.layerDescriptor.digest} estargz: ${layerSize} bytes, \\d+ read by range \\(footer and TOC\\); bootstrap \\d+ bytes$`));
  assert.match(lines[1], new RegExp(`^layer 2/2 ${upper.descriptor.digest} targz-ref: `));
  const esgzGets = reg
    .accessLog()
    .slice(before)
    .map(parseAccessLog)
    .filter((e) => e !== undefined && e.method === 'GET' && e.path.endsWith(`/blobs/${img.layerDescriptor.digest}`));
  const got = esgzGets.reduce((n, e) => n + e!.bytes, 0);
  assert.equal(Number(/ (\d+) read by range/.exec(lines[0])?.[1]), got, 'the bytes it says it read are the bytes the registry sent');
  t.diagnostic(`eStargz layer: ${esgzGets.length} GETs, ${got} of ${layerSize} bytes (${((100 * got) / layerSize).toFixed(3)}%)`);
  assert.equal(esgzGets.length, 2, 'the footer and the TOC');
  assert.deepEqual(esgzGets.map((e) => e!.status), [206, 206], 'ranged GETs only');
  assert.ok(got < layerSize * 0.02);
  const stored = createHash('sha256');
  for await (const piece of (await fetch(`${reg.url}/v2/${repo}/blobs/${img.layerDescriptor.digest}`)).body!) stored.update(piece);
  assert.equal(`sha256:${stored.digest('hex')}`, img.layerDescriptor.digest, 'the eStargz layer is unchanged');

  const d = await startDaemon(t, ['--image', `${reg.host}/${repo}:esgz-nydus`, '--config', blobcacheConfig(dir)]);
  assert.equal(readFileSync(join(d.mnt, 'etc/debian_version'), 'utf8'), readFileSync(join(img.rootfs, 'etc/debian_version'), 'utf8'));
  const read = await backendRead(d);
  t.diagnostic(`one small file: ${read} of ${layerSize} eStargz layer bytes`);
  assert.ok(read > 0 && read < layerSize * 0.05);
  const upperOvl = join(dir, 'ovl-upper');
  await overlayLayer(top, upperOvl);
  const ovl = await mountOverlay([upperOvl, img.rootfs], join(dir, 'ovl'));
  try {
    assert.deepEqual(compareTrees(ovl.dir, d.mnt, { ignoreRootMtime: true, mtimeSeconds: true }), []);
  } finally {
    await ovl.close();
  }
  await d.stop();

  const wrong = await convert(['--source', `${reg.host}/${repo}:esgz-wrong-toc`, '--target', `${reg.host}/${repo}:esgz-wrong-toc-nydus`]);
  await assertRefused(
    wrong,
    new RegExp(`failed to verify the TOC of layer 1/2 ${img.layerDescriptor.digest}: its digest is ${img.layerDescriptor.annotations!['containerd.io/snapshot/stargz/toc.digest']}, the manifest's containerd.io/snapshot/stargz/toc.digest annotation says sha256:`),
    client,
    'esgz-wrong-toc-nydus',
  );
});
