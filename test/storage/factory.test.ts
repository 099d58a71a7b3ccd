import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { localfsDirConfig } from '../../src/config/derive.js';
import { normalizeConfig } from '../../src/config/parse.js';
import { createStorage } from '../../src/storage/factory.js';
import type { ImageBlobs } from '../../src/storage/types.js';
import { buildBlob, compressible, tmpDir } from './helpers.js';
import type { TestBlob } from './helpers.js';

function image(tb: TestBlob): ImageBlobs {
  return { blobs: [tb.blob], blobChunks: () => tb.chunks };
}

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

test('--localfs-dir: blobs and cache files share the directory, and a restart reads from the cache', async (t) => {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, Array.from({ length: 8 }, (_, i) => compressible(40_000, i)));
  const first = await createStorage(localfsDirConfig(dir), image(tb));
  assert.equal(first.backend.type, 'localfs');
  assert.equal(first.cache?.type, 'blobcache');
  assert.deepEqual(await first.reader.readChunks(tb.chunks), tb.data);
  // amplify_io defaults to 128 KiB: the ~8 small zstd chunks come in few reads.
  assert.ok(first.backend.metrics.readCount < tb.chunks.length, `${first.backend.metrics.readCount} reads`);
  await first.close();
  assert.deepEqual(readdirSync(dir).sort(), [tb.blob.blobId, `${tb.blob.blobId}.blob.data`, `${tb.blob.blobId}.blob.data.chunk_map`]);
  const second = await createStorage(localfsDirConfig(dir), image(tb));
  assert.deepEqual(await second.reader.readChunks(tb.chunks), tb.data);
  assert.equal(second.backend.metrics.readCount, 0);
  await second.close();
});

test('config switches reach the reader: no cache, amplify_io 0, digest_validate', async (t) => {
  const dir = tmpDir(t);
  const tb = buildBlob(dir, [randomBytes(1000), randomBytes(1000), randomBytes(1000)], { compressor: 'none' });
  const config = (validate: boolean) =>
    normalizeConfig({
      device: { backend: { type: 'localfs', config: { dir } }, cache: { type: 'dummycache' } },
      mode: 'direct',
      digest_validate: validate,
      amplify_io: 0,
    });
  const plain = await createStorage(config(false), image(tb));
  assert.equal(plain.cache, undefined);
  await plain.reader.readChunks(tb.chunks);
  assert.equal(plain.backend.metrics.readCount, 3, 'amplify_io 0: one read per chunk');
  await plain.close();
  const bytes = Buffer.from(tb.bytes);
  bytes[1500] ^= 1;
  writeFileSync(tb.path, bytes);
  const lax = await createStorage(config(false), image(tb));
  assert.notDeepEqual(await lax.reader.readChunk(tb.chunks[1]), tb.data[1], 'unvalidated raw chunks are not checked');
  await lax.close();
  const strict = await createStorage(config(true), image(tb));
  await assert.rejects(strict.reader.readChunk(tb.chunks[1]), (err) => codeOf(err) === 'ERR_STORAGE_DIGEST_MISMATCH');
  assert.deepEqual(await strict.reader.readChunk(tb.chunks[2]), tb.data[2]);
  await strict.close();
});

test('network backends are created without touching the network; missing backends are refused', async () => {
  const registry = normalizeConfig({ version: 2, backend: { type: 'registry', registry: { host: 'h', repo: 'r' } } });
  const r = await createStorage(registry, { blobs: [], blobChunks: () => [] });
  assert.equal(r.backend.type, 'registry');
  await r.close();
  const proxy = normalizeConfig({ version: 2, backend: { type: 'http-proxy', 'http-proxy': { addr: '/run/blobs.sock' } } });
  const p = await createStorage(proxy, { blobs: [], blobChunks: () => [] });
  assert.equal(p.backend.type, 'http-proxy');
  await p.close();
  await assert.rejects(createStorage(normalizeConfig({ version: 2 }), { blobs: [], blobChunks: () => [] }), (err) =>
    codeOf(err) === 'ERR_CONFIG_INVALID' && /backend: missing/.test((err as Error).message),
  );
});
