// Corrupted blobs (random byte flips, truncation, zeroed runs) of both upstream fixtures,
// read chunk by chunk through the real reader with digest validation: every chunk either
// comes back with exactly the bytes its digest names, or fails with the storage layer's
// own typed error. Never another exception, never wrong bytes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageError } from '../../src/errors.js';
import { openBootstrap } from '../../src/rafs/index.js';
import type { RafsSuper } from '../../src/rafs/types.js';
import { localfsDirConfig } from '../../src/config/derive.js';
import { createStorage } from '../../src/storage/factory.js';
import { digest } from '../../src/storage/digest.js';
import { haveFixtures, need, V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';

const work = mkdtempSync(join(tmpdir(), 'hostile-blob-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Fixture {
  sb: RafsSuper;
  blobId: string;
  original: Buffer;
}

async function load(dir: string): Promise<Fixture> {
  const sb = await openBootstrap(join(dir, 'bootstrap'));
  const blobId = sb.blobs[0].blobId;
  return { sb, blobId, original: readFileSync(join(dir, 'blobs', blobId)) };
}

let round = 0;

/** Writes `bytes` as the fixture's blob in a fresh directory and reads every chunk. */
async function readAllChunks(f: Fixture, bytes: Buffer): Promise<{ ok: number; failed: number }> {
  const dir = join(work, `r${round++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, f.blobId), bytes);
  const config = localfsDirConfig(dir);
  config.cache.type = '';
  config.rafs.validate = true;
  const storage = await createStorage(config, f.sb, { memoryCacheBytes: 0 });
  let ok = 0;
  let failed = 0;
  try {
    for (const c of f.sb.blobChunks(0)) {
      try {
        const data = await storage.reader.readChunk(c);
        assert.equal(data.length, c.uncompressedSize);
        assert.ok(digest(f.sb.digester, data).equals(c.digest), 'a chunk came back with bytes its digest does not name');
        ok++;
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        assert.ok(err instanceof StorageError, `unexpected error type: ${(err as Error)?.stack ?? err}`);
        assert.match(err.code, /^ERR_STORAGE_/);
        assert.doesNotMatch(err.message, /\n/);
        failed++;
      }
    }
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { ok, failed };
}

const mutation = (size: number) =>
  fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.array(fc.nat(size - 1), { minLength: 1, maxLength: 8 }), value: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), length: fc.nat(size - 1) }),
    fc.record({ kind: fc.constant('zero' as const), from: fc.nat(size - 1), length: fc.integer({ min: 1, max: 8192 }) }),
  );

type Mutation = { kind: 'flip'; at: number[]; value: number } | { kind: 'truncate'; length: number } | { kind: 'zero'; from: number; length: number };

function apply(original: Buffer, m: Mutation): Buffer {
  const b = Buffer.from(original);
  switch (m.kind) {
    case 'flip':
      for (const i of m.at) b[i] ^= m.value;
      return b;
    case 'truncate':
      return b.subarray(0, m.length);
    case 'zero':
      return b.fill(0, m.from, Math.min(b.length, m.from + m.length));
  }
}

for (const [name, dir, runs] of [
  ['v5 (sha256, uncompressed)', V5_FIXTURE, 60],
  ['v6 (blake3, zstd)', V6_FIXTURE, 150],
] as const) {
  test(`corrupted ${name} blob: every chunk is right or a typed storage error`, async (t) => {
    if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
    const f = await load(dir);
    const clean = await readAllChunks(f, f.original);
    assert.equal(clean.failed, 0);
    let sawFailure = false;
    await fc.assert(
      fc.asyncProperty(mutation(f.original.length), async (m) => {
        const r = await readAllChunks(f, apply(f.original, m));
        assert.equal(r.ok + r.failed, clean.ok);
        if (r.failed > 0) sawFailure = true;
      }),
      { numRuns: runs },
    );
    assert.ok(sawFailure, 'no mutation was ever detected: the property would pass vacuously');
  });
}
