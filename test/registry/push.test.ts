// Getting images into a registry and back: `nydus-image push` of an image built with
// `nydus-image create`, the manifest in nydus-snapshotter's conventions (media types,
// annotations, diff ids), pushing again uploads nothing, the bootstrap fetched by
// reference equals the pushed one and is cached, references and index selection, the
// upstream v5 fixture pushes while a blob not named by its sha256 is refused, and push
// with token auth where the password comes from stdin and never shows in the output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { encodeAuth } from '../../src/http/auth.js';
import { DistributionClient } from '../../src/registry/distribution.js';
import { findBootstrapLayer, pickFromIndex, OS_FEATURE_NYDUS } from '../../src/registry/nydus-manifest.js';
import { fetchImageBootstrap, imageConfig } from '../../src/registry/pull.js';
import { pushImage } from '../../src/registry/push.js';
import { formatReference, parseReference } from '../../src/registry/reference.js';
import { haveFixtures, need, V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { buildImage, pushTo, random, textLike } from '../helpers/registry-images.js';
import { haveRegistry, startRegistry } from '../helpers/registry-server.js';
import { startTokenIssuer } from '../helpers/registry-token-issuer.js';
import { runProgram } from '../helpers/run.js';

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('image references parse as docker writes them', () => {
  assert.deepEqual(parseReference('localhost:5000/library/app:nydus'), { host: 'localhost:5000', repo: 'library/app', tag: 'nydus' });
  assert.deepEqual(parseReference('127.0.0.1:5000/a/b'), { host: '127.0.0.1:5000', repo: 'a/b', tag: 'latest' });
  assert.deepEqual(parseReference('ubuntu'), { host: 'registry-1.docker.io', repo: 'library/ubuntu', tag: 'latest' });
  assert.deepEqual(parseReference('org/app:1.2'), { host: 'registry-1.docker.io', repo: 'org/app', tag: '1.2' });
  const d = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(parseReference(`reg.io/x/y@${d}`), { host: 'reg.io', repo: 'x/y', digest: d });
  assert.equal(formatReference(parseReference(`reg.io/x/y:t@${d}`)), `reg.io/x/y:t@${d}`);
  for (const bad of ['reg.io/Upper/case', 'reg.io/a/b:bad tag', `reg.io/a@sha256:xyz`, 'reg.io/a//b', '']) {
    assert.throws(() => parseReference(bad), (err) => codeOf(err) === 'ERR_STORAGE_MANIFEST', bad);
  }
});

test('an index resolves to the Nydus manifest for this platform', () => {
  const m = (digit: string, platform: Record<string, unknown>) => ({ mediaType: 'x', digest: `sha256:${digit.repeat(64)}`, size: 1, platform });
  const index = {
    manifests: [m('1', { os: 'linux', architecture: 'amd64' }), m('2', { os: 'linux', architecture: 'amd64', 'os.features': [OS_FEATURE_NYDUS] }), m('3', { os: 'linux', architecture: 'arm64' })],
  };
  assert.equal(pickFromIndex(index, { os: 'linux', architecture: 'amd64' }).digest, `sha256:${'2'.repeat(64)}`);
  assert.equal(pickFromIndex(index, { os: 'linux', architecture: 'arm64' }).digest, `sha256:${'3'.repeat(64)}`);
  assert.throws(() => pickFromIndex(index, { os: 'linux', architecture: 's390x' }), (err) => codeOf(err) === 'ERR_STORAGE_MANIFEST');
  assert.throws(() => findBootstrapLayer({ layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'4'.repeat(64)}`, size: 1 }] }), /not a Nydus image/);
});

test('nydus-image push publishes a built image in the snapshotter conventions; the bootstrap comes back by reference', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const reg = await startRegistry(t);
  const image = await buildImage(t, { 'bin/tool': random(300_000), 'etc/motd': 'hello nydus\n', 'usr/share/doc.txt': textLike(2_000_000) });
  const target = `${reg.host}/apps/tool:v1`;
  const out = join(mkdtempSync('/tmp/registry-push-'), 'push.json');
  t.after(() => rmSync(join(out, '..'), { recursive: true, force: true }));
  const r = await runProgram('nydus-image', ['push', image.bootstrap, '--blob-dir', image.blobDir, '--target', target, '--plain-http', '-J', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^pushed ${target.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64} \\(${image.blobIds.length + 2} uploaded, 0 already present\\)`));
  const result = JSON.parse(readFileSync(out, 'utf8'));

  const client = new DistributionClient({ host: reg.host, repo: 'apps/tool', scheme: 'http' });
  t.after(() => client.close());
  const fetched = await client.getManifest('v1');
  assert.equal(fetched.digest, result.manifest_digest);
  const manifest = fetched.json as { mediaType: string; config: { mediaType: string; digest: string }; layers: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[] };
  assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(manifest.layers.length, image.blobIds.length + 1);
  image.blobIds.forEach((id, i) => {
    assert.deepEqual(manifest.layers[i], {
      mediaType: 'application/vnd.oci.image.layer.nydus.blob.v1',
      digest: `sha256:${id}`,
      size: readFileSync(join(image.blobDir, id)).length,
      annotations: { 'containerd.io/snapshot/nydus-blob': 'true' },
    });
  });
  const boot = manifest.layers[manifest.layers.length - 1];
  assert.equal(boot.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assert.deepEqual(boot.annotations, { 'containerd.io/snapshot/nydus-bootstrap': 'true', 'containerd.io/snapshot/nydus-fs-version': '6' });
  const work = mkdtempSync('/tmp/registry-pull-');
  t.after(() => rmSync(work, { recursive: true, force: true }));
  await client.downloadBlob(manifest.config.digest, join(work, 'config.json'), 1 << 20);
  const config = JSON.parse(readFileSync(join(work, 'config.json'), 'utf8'));
  assert.equal(config.os, 'linux');
  assert.equal(config.rootfs.diff_ids.length, manifest.layers.length);
  assert.deepEqual(config.rootfs.diff_ids.slice(0, -1), image.blobIds.map((id) => `sha256:${id}`));

  const pulled = await fetchImageBootstrap({ reference: target, workDir: work, plainHttp: true });
  assert.equal(pulled.downloaded, true);
  assert.equal(pulled.layerDigest, boot.digest);
  assert.deepEqual(readFileSync(pulled.bootstrap), readFileSync(image.bootstrap));
  const again = await fetchImageBootstrap({ reference: `${reg.host}/apps/tool@${fetched.digest}`, workDir: work, plainHttp: true });
  assert.equal(again.downloaded, false, 'already in the work dir');
  assert.equal(again.bootstrap, pulled.bootstrap);
  const cfg = imageConfig(pulled.reference, work, undefined, { plainHttp: true });
  assert.equal(cfg.backend?.type, 'registry');
  assert.deepEqual(cfg.backend?.type === 'registry' && [cfg.backend.registry.host, cfg.backend.registry.repo, cfg.backend.registry.scheme], [reg.host, 'apps/tool', 'http']);
  assert.equal(cfg.cache.type, 'blobcache');

  // Pushing again (another tag) uploads nothing but the manifest.
  const second = await pushTo(image, reg.host, 'apps/tool', 'v2');
  assert.equal(second.uploaded, 0);
  assert.equal(second.skipped, image.blobIds.length + 2);
  assert.equal(second.manifestDigest, fetched.digest, 'the same image makes the same manifest');
  await assert.rejects(fetchImageBootstrap({ reference: `${reg.host}/apps/tool:nope`, workDir: work, plainHttp: true }), (err) => codeOf(err) === 'ERR_STORAGE_MANIFEST');
});

test('the upstream v5 fixture pushes and its manifest says fs-version 5; a blob not named by its sha256 is refused', async (t) => {
  if (!need(t, haveRegistry() && haveFixtures(), 'docker-registry or the shared fixtures are missing')) return;
  const reg = await startRegistry(t);
  const r = await pushImage({ bootstrap: join(V5_FIXTURE, 'bootstrap'), blobDir: join(V5_FIXTURE, 'blobs'), target: `${reg.host}/fixtures/v5:1`, plainHttp: true });
  assert.equal(r.uploaded, 3);
  const boot = findBootstrapLayer(r.manifest as unknown as Record<string, unknown>);
  assert.equal(boot.annotations?.['containerd.io/snapshot/nydus-fs-version'], '5');
  await assert.rejects(
    pushImage({ bootstrap: join(V6_FIXTURE, 'bootstrap'), blobDir: join(V6_FIXTURE, 'blobs'), target: `${reg.host}/fixtures/v6:1`, plainHttp: true }),
    (err) => codeOf(err) === 'ERR_STORAGE_MANIFEST' && /named by their sha256/.test((err as Error).message),
  );
  await assert.rejects(
    pushImage({ bootstrap: join(V5_FIXTURE, 'bootstrap'), blobDir: '/nonexistent', target: `${reg.host}/fixtures/v5:2`, plainHttp: true }),
    (err) => codeOf(err) === 'ERR_STORAGE_BLOB_NOT_FOUND',
  );
});

test('push to a token-auth registry with --username and the password on stdin; a wrong password fails cleanly', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const password = 'stdin-only-secret';
  const issuer = await startTokenIssuer(t, { carol: password });
  const reg = await startRegistry(t, { kind: 'token', issuer });
  const image = await buildImage(t, { 'a.txt': 'a\n', 'b.bin': random(50_000) });
  const target = `${reg.host}/private/app:1`;
  const ok = await runProgram('nydus-image', ['push', image.bootstrap, '-D', image.blobDir, '-t', target, '--plain-http', '-u', 'carol', '--password-stdin'], { input: `${password}\n` });
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(!ok.stdout.includes(password) && !ok.stderr.includes(password));
  assert.match(decodeURIComponent(issuer.stats.lastQuery), /scope=repository:private\/app:(push,pull|pull,push)/);
  const bad = await runProgram('nydus-image', ['push', image.bootstrap, '-D', image.blobDir, '-t', target, '--plain-http', '-u', 'carol', '--password-stdin'], { input: 'wrong\n' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /ERR_STORAGE_AUTH/);
  const env = await runProgram('nydus-image', ['push', image.bootstrap, '-D', image.blobDir, '-t', target, '--plain-http'], {
    env: { ...process.env, IMAGE_PUSH_AUTH: encodeAuth('carol', password) },
  });
  assert.equal(env.code, 0, env.stderr);
  assert.match(env.stdout, new RegExp(`\\(0 uploaded, ${image.blobIds.length + 2} already present\\)`));
  const usage = await runProgram('nydus-image', ['push', image.bootstrap, '-D', image.blobDir, '-t', target, '-u', 'carol']);
  assert.equal(usage.code, 2);
  const pulled = await fetchImageBootstrap({ reference: target, workDir: mkdtempSync('/tmp/registry-pull-'), plainHttp: true, auth: encodeAuth('carol', password) });
  t.after(() => rmSync(join(pulled.bootstrap, '..'), { recursive: true, force: true }));
  assert.equal(sha256(readFileSync(pulled.bootstrap)), sha256(readFileSync(image.bootstrap)));
});
