// The bootstrap layer: what pack writes is a gzip'd tar that GNU tar reads back (the way
// containerd unpacks it for the snapshotter), the same bootstrap always packs to the same
// bytes, and unpack takes the bootstrap out of such a layer or refuses it with a clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { packBootstrapLayer, unpackBootstrapLayer } from '../../src/registry/bootstrap-layer.js';
import { BOOTSTRAP_IN_LAYER } from '../../src/registry/nydus-manifest.js';
import { encodeTarHeader, padding, tarTrailer } from '../../src/util/tar-header.js';
import { runCommand } from '../helpers/run.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function workDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-boot-layer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A gzip'd tar of the given (name, bytes) members, written by the project's own header codec. */
function layerOf(members: Array<[string, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, data] of members) {
    parts.push(encodeTarHeader({ kind: 'file', path: Buffer.from(name), mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, mtimeNsec: 0 }));
    parts.push(data, Buffer.alloc(padding(data.length)));
  }
  parts.push(tarTrailer());
  return gzipSync(Buffer.concat(parts));
}

test('pack writes one root-owned member that GNU tar extracts; digests describe the bytes; packing again gives the same bytes', async (t) => {
  const dir = workDir(t);
  const boot = join(dir, 'bootstrap');
  const bytes = randomBytes(300_001);
  writeFileSync(boot, bytes);
  const a = await packBootstrapLayer(boot, join(dir, 'a.tar.gz'));
  const b = await packBootstrapLayer(boot, join(dir, 'b.tar.gz'));
  const layer = readFileSync(a.path);
  assert.deepEqual(readFileSync(b.path), layer, 'repeatable');
  assert.equal(a.size, layer.length);
  assert.equal(a.digest, sha256(layer));
  const list = await runCommand('tar', ['-tvzf', a.path, '--numeric-owner'], { env: { ...process.env, TZ: 'UTC' } });
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0], new RegExp(`^-rw-r--r-- 0/0 +300001 1970-01-01 00:00 ${BOOTSTRAP_IN_LAYER}$`));
  const out = join(dir, 'x');
  const x = await runCommand('tar', ['-xzf', a.path, '-C', dir]);
  assert.equal(x.code, 0, x.stderr);
  assert.deepEqual(readFileSync(join(dir, BOOTSTRAP_IN_LAYER)), bytes);
  assert.equal(a.diffId, sha256(gunzipSync(layer)));
  assert.equal(await unpackBootstrapLayer(a.path, out, bytes.length), bytes.length);
  assert.deepEqual(readFileSync(out), bytes);
});

test('unpack finds the bootstrap among other members, under ./ or as image.boot, and refuses what is not one', async (t) => {
  const dir = workDir(t);
  const boot = randomBytes(5000);
  const cases: Array<[string, Array<[string, Buffer]>]> = [
    ['after another member', [['etc/other', randomBytes(700)], [BOOTSTRAP_IN_LAYER, boot]]],
    ['with a ./ prefix', [[`./${BOOTSTRAP_IN_LAYER}`, boot]]],
    ['as image.boot', [['image.boot', boot]]],
  ];
  for (const [what, members] of cases) {
    const layer = join(dir, 'layer.tar.gz');
    writeFileSync(layer, layerOf(members));
    const out = join(dir, 'out');
    assert.equal(await unpackBootstrapLayer(layer, out, 1 << 20), boot.length, what);
    assert.deepEqual(readFileSync(out), boot, what);
    rmSync(out);
  }
  const refused = async (layerBytes: Buffer, limit: number, message: RegExp): Promise<void> => {
    const layer = join(dir, 'bad.tar.gz');
    const out = join(dir, 'never');
    writeFileSync(layer, layerBytes);
    await assert.rejects(unpackBootstrapLayer(layer, out, limit), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ERR_STORAGE_MANIFEST');
      assert.match(err.message, message);
      return true;
    });
    assert.throws(() => statSync(out), 'nothing half-written at the destination');
    assert.throws(() => statSync(`${out}.part-${process.pid}`), 'no partial file left');
  };
  await refused(layerOf([['etc/other', randomBytes(10)]]), 1 << 20, /has no image\/image\.boot/);
  await refused(layerOf([[BOOTSTRAP_IN_LAYER, boot]]), boot.length - 1, /is 5000 bytes, over 4999/);
  const whole = layerOf([[BOOTSTRAP_IN_LAYER, boot], ['etc/after', randomBytes(9000)]]);
  await refused(whole.subarray(0, whole.length - 40), 1 << 20, /failed to unpack bootstrap layer/);
  await refused(Buffer.from('not gzip at all'), 1 << 20, /failed to unpack bootstrap layer/);
});
