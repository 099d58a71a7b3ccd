// Object storage keys across a hot upgrade: the journal stores the s3 mount's config
// without its keys, the supervisor's state carries them, and the successor rebuilds the
// mount with them: a file first read after the upgrade comes from a bucket that refuses
// unsigned requests. The journal never holds the secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../conformance/child.js';
import { buildImage, textLike } from '../helpers/registry-images.js';
import { startS3 } from '../helpers/s3-server.js';
import { canRun, Rig } from '../upgrade/rig.js';

const KEY = { id: 'UPGRADEKEY', secret: 'upgrade+secret/never-on-disk' };

test('a hot upgrade keeps the s3 mount signed: keys come from the supervisor state, never from the journal', async (t) => {
  if (!canRun(t)) return;
  const s3 = await startS3(t, 'upgrade-bucket', { requireSignature: true });
  s3.addKey(KEY.id, KEY.secret);
  const files = { 'before.txt': textLike(300_000, 5), 'after.txt': textLike(300_000, 6) };
  const image = await buildImage(t, files);
  for (const id of readdirSync(image.blobDir)) await s3.put(`blobs/${id}`, readFileSync(join(image.blobDir, id)));
  const rig = await Rig.start(t);
  const cache = join(rig.dir, 's3-cache');
  const config = JSON.stringify({
    version: 2,
    backend: { type: 's3', s3: { endpoint: s3.endpoint, scheme: 'http', bucket_name: s3.bucket, object_prefix: 'blobs/', access_key_id: KEY.id, access_key_secret: KEY.secret, retry_limit: 0 } },
    cache: { type: 'blobcache', filecache: { work_dir: cache } },
  });

  await rig.current.client.mount('/s3', { source: image.bootstrap, fs_type: 'rafs', config, prefetch_files: null });
  await rig.sup.fetch(rig.current.client);
  const before = await run('cat', [join(rig.mnt, 's3', 'before.txt')]);
  assert.equal(before.code, 0, before.stderr.toString());
  assert.ok(before.stdout.equals(files['before.txt']));

  await rig.upgradeSnapshotter();
  const refusedBefore = s3.stats.refused;
  const after = await run('cat', [join(rig.mnt, 's3', 'after.txt')]);
  assert.equal(after.code, 0, `read after the upgrade: ${after.stderr.toString()}`);
  assert.ok(after.stdout.equals(files['after.txt']));
  assert.equal(s3.stats.refused, refusedBefore, 'every request after the upgrade was signed');
  assert.ok(s3.stats.verified >= 2);

  const stateDir = join(rig.dir, 'state');
  const journal = readdirSync(stateDir)
    .map((f) => join(stateDir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => readFileSync(f, 'latin1'))
    .join('');
  assert.match(journal, /upgrade-bucket/, 'the s3 mount is journaled');
  assert.ok(!journal.includes(KEY.secret) && !journal.includes(KEY.id), 'its keys are not');
});
