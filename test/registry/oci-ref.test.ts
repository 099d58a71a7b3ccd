// Unconverted images served lazily from docker-registry, the way a user turns one into a
// Nydus image without rewriting its layers: the original image is in the repository;
// `nydus-image create -t estargz-ref` (or targz-ref) and `nydus-image push --oci-ref`
// add only the small artifact beside it (nydusify's `--oci-ref` shape); `nydusd --image`
// mounts it and reads the original layer lazily.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientFor } from '../../src/registry/distribution.js';
import { ANNOTATION_NYDUS_BOOTSTRAP, ANNOTATION_NYDUS_REF, MEDIA_TYPE_NYDUS_BLOB, MEDIA_TYPE_OCI_MANIFEST } from '../../src/registry/nydus-manifest.js';
import { parseReference } from '../../src/registry/reference.js';
import { blobcacheConfig, registryAndImage, startDaemon } from '../helpers/registry-nydusd.js';
import { runProgram } from '../helpers/run.js';
import { estargzImage } from '../builder/estargz-layer.js';
import { targzRefImage } from '../builder/targz-layer.js';
import { compareTrees } from '../builder/tree-helpers.js';

interface Manifest {
  layers: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[];
}

async function manifestOf(url: string, repo: string, tag: string): Promise<Manifest> {
  const r = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { headers: { accept: MEDIA_TYPE_OCI_MANIFEST } });
  assert.equal(r.status, 200);
  return (await r.json()) as Manifest;
}

function workDir(t: import('node:test').TestContext): string {
  const dir = mkdtempSync('/tmp/registry-oci-ref-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('eStargz from ctr-remote in a registry: estargz-ref + push --oci-ref add only a bootstrap; nydusd --image serves the tree lazily (fusedev and erofs)', async (t) => {
  const setup = await registryAndImage(t, estargzImage);
  if (setup === undefined) return;
  const { img, reg } = setup;
  const repo = 'debian/minbase';
  // The eStargz image as its producer made it, under its own tag.
  const client = clientFor(parseReference(`${reg.host}/${repo}`), {});
  t.after(() => client.close());
  const layer = readFileSync(img.layer);
  await client.pushBlob(img.layerDescriptor.digest, layer.length, () => layer);
  await client.pushBlob(`sha256:${createHash('sha256').update(img.config).digest('hex')}`, img.config.length, () => img.config);
  await client.putManifest('esgz', MEDIA_TYPE_OCI_MANIFEST, img.manifest);

  const dir = workDir(t);
  const bootstrap = join(dir, 'image.boot');
  const create = await runProgram('nydus-image', ['create', '-t', 'estargz-ref', '-B', bootstrap, img.layer]);
  assert.equal(create.code, 0, create.stderr);
  const ref = `${reg.host}/${repo}:esgz-nydus`;
  const push = await runProgram('nydus-image', ['push', '--oci-ref', bootstrap, '--target', ref]);
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stderr, new RegExp(`original layer ${img.layerDescriptor.digest}: referenced`));
  const m = await manifestOf(reg.url, repo, 'esgz-nydus');
  assert.equal(m.layers.length, 1, 'only the bootstrap layer: the eStargz layer is referenced, not listed');
  assert.equal(m.layers[0].annotations?.[ANNOTATION_NYDUS_BOOTSTRAP], 'true');
  const artifact = m.layers[0].size;
  t.diagnostic(`artifact (bootstrap layer) ${artifact} B for a ${layer.length}-byte eStargz layer (${((100 * artifact) / layer.length).toFixed(2)}%)`);
  const stored = Buffer.from(await (await fetch(`${reg.url}/v2/${repo}/blobs/${img.layerDescriptor.digest}`)).arrayBuffer());
  assert.ok(stored.equals(layer), 'the layer in the registry is unchanged');

  for (const driver of ['fusedev', 'erofs']) {
    const run = join(dir, driver);
    mkdirSync(run);
    const d = await startDaemon(t, ['--fs-driver', driver, '--image', ref, '--config', blobcacheConfig(run)]);
    assert.equal(readFileSync(join(d.mnt, 'etc/debian_version'), 'utf8'), readFileSync(join(img.rootfs, 'etc/debian_version'), 'utf8'));
    const read = ((await d.get('/api/v1/metrics/backend')).body as { read_amount_total: number }).read_amount_total;
    t.diagnostic(`${driver}: one small file through the registry: ${read} of ${layer.length} layer bytes (${((100 * read) / layer.length).toFixed(3)}%)`);
    assert.ok(read > 0 && read < layer.length * 0.05);
    assert.deepEqual(compareTrees(img.rootfs, d.mnt, { ignoreRootMtime: true, mtimeSeconds: true }), []);
    await d.stop();
  }
});

test('targz-ref push --oci-ref: the manifest lists the meta blob annotated with the layer it indexes; the layer is referenced, not uploaded', async (t) => {
  const setup = await registryAndImage(t, targzRefImage);
  if (setup === undefined) return;
  const { img, reg } = setup;
  const dir = workDir(t);
  // Only the artifact is at hand: a blob directory with the meta blob and no layer.
  const blobs = join(dir, 'blobs');
  mkdirSync(blobs);
  writeFileSync(join(blobs, img.metaId), readFileSync(join(img.blobDir, img.metaId)));

  const missing = await runProgram('nydus-image', ['push', '--oci-ref', img.bootstrap, '-D', blobs, '--target', `${reg.host}/debian/gzip:nydus`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, new RegExp(`the original layer sha256:${img.blobId} is not in ${reg.host}/debian/gzip; push the original image there first`));
  assert.equal((await fetch(`${reg.url}/v2/debian/gzip/manifests/nydus`)).status, 404, 'nothing was published');

  const layer = readFileSync(img.layer);
  const client = clientFor(parseReference(`${reg.host}/debian/gzip`), {});
  t.after(() => client.close());
  await client.pushBlob(`sha256:${img.blobId}`, layer.length, () => layer);
  const push = await runProgram('nydus-image', ['push', '--oci-ref', img.bootstrap, '-D', blobs, '--target', `${reg.host}/debian/gzip:nydus`]);
  assert.equal(push.code, 0, push.stderr);
  const m = await manifestOf(reg.url, 'debian/gzip', 'nydus');
  assert.equal(m.layers.length, 2);
  assert.deepEqual(
    { mediaType: m.layers[0].mediaType, digest: m.layers[0].digest, ref: m.layers[0].annotations?.[ANNOTATION_NYDUS_REF] },
    { mediaType: MEDIA_TYPE_NYDUS_BLOB, digest: `sha256:${img.metaId}`, ref: `sha256:${img.blobId}` },
  );
  assert.equal(m.layers[1].annotations?.[ANNOTATION_NYDUS_BOOTSTRAP], 'true');
  const artifact = m.layers[0].size + m.layers[1].size;
  t.diagnostic(`artifact (meta blob + bootstrap layer) ${artifact} B for a ${layer.length}-byte layer (${((100 * artifact) / layer.length).toFixed(2)}%)`);
  assert.ok(artifact < layer.length * 0.1);

  const d = await startDaemon(t, ['--image', `${reg.host}/debian/gzip:nydus`, '--config', blobcacheConfig(dir)]);
  assert.equal(readFileSync(join(d.mnt, 'etc/debian_version'), 'utf8'), readFileSync(join(img.rootfs, 'etc/debian_version'), 'utf8'));
  assert.deepEqual(compareTrees(img.rootfs, d.mnt, { ignoreRootMtime: true }), []);
  await d.stop();

  // A native RAFS image has no original layer to refer to.
  const native = join(dir, 'native');
  mkdirSync(join(native, 'src'), { recursive: true });
  writeFileSync(join(native, 'src', 'f'), 'x');
  assert.equal((await runProgram('nydus-image', ['create', '-B', join(native, 'boot'), '-D', native, join(native, 'src')])).code, 0);
  const refused = await runProgram('nydus-image', ['push', '--oci-ref', join(native, 'boot'), '-D', native, '--target', `${reg.host}/debian/gzip:native`]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /is a RAFS data blob, not an original layer \(build with -t targz-ref or estargz-ref\)/);
  assert.ok(statSync(img.layer).size === layer.length);
});
