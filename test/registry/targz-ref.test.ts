// A targz-ref image through docker-registry: `nydus-image push` publishes the bootstrap
// and the meta blob beside the original layer, which stays byte-identical in the
// registry (pushing finds it already there); `nydusd --image` serves the tar's tree
// from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { clientFor } from '../../src/registry/distribution.js';
import { parseReference } from '../../src/registry/reference.js';
import { blobcacheConfig, registryAndImage, startDaemon } from '../helpers/registry-nydusd.js';
import { runProgram } from '../helpers/run.js';
import { compareTrees } from '../builder/tree-helpers.js';
import { targzRefImage } from '../builder/targz-layer.js';

test('targz-ref in a registry: the layer stays byte-identical, push adds the small artifact, nydusd --image serves the tree', async (t) => {
  const setup = await registryAndImage(t, targzRefImage);
  if (setup === undefined) return;
  const { img, reg } = setup;
  const layer = readFileSync(img.layer);
  const digest = `sha256:${img.blobId}`;
  // The original image's layer is already in the repository.
  const client = clientFor(parseReference(`${reg.host}/debian/minbase`), {});
  t.after(() => client.close());
  assert.equal(await client.pushBlob(digest, layer.length, () => layer), 'uploaded');

  const ref = `${reg.host}/debian/minbase:targz-ref`;
  const push = await runProgram('nydus-image', ['push', img.bootstrap, '--blob-dir', img.blobDir, '--target', ref]);
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stderr + push.stdout, new RegExp(`${digest} \\(${layer.length} bytes\\): already present`));
  const stored = Buffer.from(await (await fetch(`${reg.url}/v2/debian/minbase/blobs/${digest}`)).arrayBuffer());
  assert.equal(createHash('sha256').update(stored).digest('hex'), img.blobId, 'the layer in the registry is unchanged');

  const dir = mkdtempSync('/tmp/registry-targz-ref-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const d = await startDaemon(t, ['--image', ref, '--config', blobcacheConfig(dir)]);
  assert.equal(readFileSync(join(d.mnt, 'etc/debian_version'), 'utf8'), readFileSync(join(img.rootfs, 'etc/debian_version'), 'utf8'));
  const m = (await d.get('/api/v1/metrics/backend')).body as { read_amount_total: number };
  t.diagnostic(`one small file through the registry: ${m.read_amount_total} of ${layer.length} layer bytes (meta blob included)`);
  assert.ok(m.read_amount_total < layer.length * 0.1);
  assert.deepEqual(compareTrees(img.rootfs, d.mnt, { ignoreRootMtime: true }), []);
  await d.stop();
});
