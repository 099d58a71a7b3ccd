// Lazy loading proven by counts, against a real registry: a ~200 MB image built from a
// generated directory and pushed once for the file; its bootstrap fetched by reference;
// reading one small file fetches at most the chunks it needs plus the configured
// amplification, reading a large file at most its own chunks (plus amplification); and a
// second reader on the same cache directory fetches nothing. Proven at the storage level
// and again through nydusd and the kernel mount. The ratios are printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openBootstrap } from '../../src/rafs/index.js';
import type { ChunkInfo } from '../../src/storage/types.js';
import { fetchImageBootstrap, imageConfig } from '../../src/registry/pull.js';
import { createStorage } from '../../src/storage/factory.js';
import { resolvePath } from '../../src/storage/prefetch-list.js';
import { isRoot, need } from '../helpers/env.js';
import { buildImage, pushTo, random, textLike, type BuiltImage } from '../helpers/registry-images.js';
import { blobcacheConfig, haveNydusd, startDaemon } from '../helpers/registry-nydusd.js';
import { fileOwner, haveRegistry, startRegistry } from '../helpers/registry-server.js';
import { runCommand } from '../helpers/run.js';

const MiB = 1 << 20;

/** The generated tree: 20 random and 20 text files of 5 MiB, a small config file, 300 small files. */
function bigTree(): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = { 'etc/hostname': 'nydus-lazy-test\n' };
  for (let i = 0; i < 20; i++) {
    files[`opt/data/random-${i}.bin`] = random(5 * MiB);
    files[`usr/share/text-${i}.txt`] = textLike(5 * MiB, 1000 + i);
  }
  for (let i = 0; i < 300; i++) files[`usr/lib/mod${i % 10}/f${i}.so`] = random(1000 + ((i * 7919) % 30_000));
  return files;
}

/** The most a read of `chunks` may fetch: each backend read is seeded by a needed chunk and capped at max(amplify, its size). */
function fetchBound(chunks: readonly ChunkInfo[], amplify: number): number {
  return chunks.reduce((sum, c) => sum + Math.max(c.compressedSize, amplify), 0);
}

interface Shared {
  tree: Record<string, Buffer | string>;
  imageBytes: number;
  image: BuiltImage;
  reference: string;
}

const owner = fileOwner();
let shared: Promise<Shared> | undefined;

/** The 200 MB image, built and pushed once for this file. */
function bigImage(): Promise<Shared> {
  shared ??= (async () => {
    const tree = bigTree();
    const imageBytes = Object.values(tree).reduce((n, v) => n + Buffer.byteLength(v), 0);
    const image = await buildImage(owner, tree);
    const reg = await startRegistry(owner);
    await pushTo(image, reg.host, 'big/image', 'v1');
    return { tree, imageBytes, image, reference: `${reg.host}/big/image:v1` };
  })();
  return shared;
}

test('one small file of a 200 MB registry image fetches only its chunks plus amplification; a second stack on the same cache fetches nothing', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const { tree, imageBytes, image, reference } = await bigImage();
  const work = mkdtempSync('/tmp/registry-lazy-');
  t.after(() => rmSync(work, { recursive: true, force: true }));

  const pulled = await fetchImageBootstrap({ reference, workDir: work, plainHttp: true });
  const sb = await openBootstrap(pulled.bootstrap);
  const config = imageConfig(pulled.reference, work, undefined, { plainHttp: true });
  const amplify = config.rafs.batch_size;
  const readFile = async (storage: Awaited<ReturnType<typeof createStorage>>, path: string): Promise<Buffer> => {
    const ino = resolvePath(sb, path);
    assert.notEqual(ino, undefined, path);
    const size = sb.getAttr(ino!).size;
    const out = Buffer.alloc(size);
    await storage.reader.readRange(sb.fileChunks(ino!, 0, size), 0, out);
    return out;
  };
  const chunksOf = (path: string): ChunkInfo[] => {
    const ino = resolvePath(sb, path)!;
    return sb.fileChunks(ino, 0, sb.getAttr(ino).size);
  };

  const first = await createStorage(config, sb);
  assert.equal(first.backend.type, 'registry');
  assert.equal((await readFile(first, '/etc/hostname')).toString(), tree['etc/hostname']);
  const small = first.backend.metrics.readAmountTotal;
  const smallBound = fetchBound(chunksOf('/etc/hostname'), amplify);
  assert.ok(small > 0 && small <= smallBound, `fetched ${small} bytes, bound ${smallBound}`);
  t.diagnostic(
    `/etc/hostname: fetched ${small} bytes in ${first.backend.metrics.readCount} request(s): ` +
      `${small} / ${image.blobBytes} (blob) = ${(small / image.blobBytes).toExponential(2)}, ` +
      `${small} / ${imageBytes} (files) = ${(small / imageBytes).toExponential(2)} (amplify_io ${amplify}, bound ${smallBound})`,
  );

  const big = '/usr/share/text-7.txt';
  assert.deepEqual(await readFile(first, big), tree['usr/share/text-7.txt']);
  const bigFetched = first.backend.metrics.readAmountTotal - small;
  const bigBound = fetchBound(chunksOf(big), amplify);
  assert.ok(bigFetched <= bigBound, `fetched ${bigFetched} bytes for ${big}, bound ${bigBound}`);
  t.diagnostic(`${big} (5 MiB): fetched ${bigFetched} bytes; total so far ${first.backend.metrics.readAmountTotal} of ${image.blobBytes} (${((first.backend.metrics.readAmountTotal / image.blobBytes) * 100).toFixed(2)}%)`);
  await first.close();

  const second = await createStorage(config, sb);
  assert.equal((await readFile(second, '/etc/hostname')).toString(), tree['etc/hostname']);
  assert.deepEqual(await readFile(second, big), tree['usr/share/text-7.txt']);
  assert.equal(second.backend.metrics.readCount, 0, 'the second stack reads everything from the shared cache');
  assert.equal(second.reader.stats.backendBytes, 0);
  t.diagnostic(`second stack on the same cache: ${second.backend.metrics.readCount} backend requests, ${second.reader.stats.cacheHits} cache hits`);
  await second.close();

  const again = await fetchImageBootstrap({ reference, workDir: work, plainHttp: true });
  assert.equal(again.downloaded, false, 'the bootstrap is not fetched twice');
});

test('through nydusd: cat of one small file fetches only its chunks plus amplification; a second daemon on the same cache fetches nothing', async (t) => {
  if (!need(t, haveRegistry() && haveNydusd() && isRoot() && existsSync('/dev/fuse'), 'needs root, /dev/fuse, nydusd and docker-registry')) return;
  const { tree, image, reference } = await bigImage();
  const dir = mkdtempSync('/tmp/registry-lazy-daemon-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = blobcacheConfig(dir);
  const sb = await openBootstrap(image.bootstrap);
  const ino = resolvePath(sb, '/etc/hostname')!;
  const bound = fetchBound(sb.fileChunks(ino, 0, sb.getAttr(ino).size), 128 * 1024);
  const backend = async (d: Awaited<ReturnType<typeof startDaemon>>) =>
    (await d.get('/api/v1/metrics/backend')).body as { read_count: number; read_amount_total: number };

  const first = await startDaemon(t, ['--image', reference, '--config', config]);
  const cat = await runCommand('cat', [join(first.mnt, 'etc/hostname')]);
  assert.equal(cat.stdout, tree['etc/hostname']);
  const m1 = await backend(first);
  assert.ok(m1.read_amount_total > 0 && m1.read_amount_total <= bound, `fetched ${m1.read_amount_total}, bound ${bound}`);
  t.diagnostic(
    `nydusd, cat /etc/hostname: ${m1.read_count} request(s), ${m1.read_amount_total} bytes: ` +
      `${m1.read_amount_total} / ${image.blobBytes} (blob) = ${(m1.read_amount_total / image.blobBytes).toExponential(2)}`,
  );
  const big = await runCommand('sha256sum', [join(first.mnt, 'usr/share/text-3.txt')]);
  assert.equal(big.code, 0);
  await first.stop();

  const second = await startDaemon(t, ['--image', reference, '--config', config]);
  assert.equal((await runCommand('cat', [join(second.mnt, 'etc/hostname')])).stdout, tree['etc/hostname']);
  assert.equal((await runCommand('sha256sum', [join(second.mnt, 'usr/share/text-3.txt')])).stdout.split(' ')[0], big.stdout.split(' ')[0]);
  const m2 = await backend(second);
  assert.equal(m2.read_count, 0, 'the second daemon reads everything from the shared cache');
  assert.equal(m2.read_amount_total, 0);
  t.diagnostic(`second nydusd on the same cache: ${m2.read_count} backend requests`);
});

test('through nydusd --fs-driver erofs: cat of one small file fetches under 2% of the blob', async (t) => {
  if (!need(t, haveRegistry() && haveNydusd() && isRoot() && existsSync('/dev/fuse'), 'needs root, /dev/fuse, nydusd and docker-registry')) return;
  const { tree, image, reference } = await bigImage();
  assert.ok(image.blobBytes > 100 * MiB);
  const dir = mkdtempSync('/tmp/registry-lazy-erofs-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = blobcacheConfig(dir);
  const d = await startDaemon(t, ['--fs-driver', 'erofs', '--image', reference, '--config', config]);
  const cat = await runCommand('cat', [join(d.mnt, 'etc/hostname')]);
  assert.equal(cat.stdout, tree['etc/hostname']);
  const m = (await d.get('/api/v1/metrics/backend')).body as { read_count: number; read_amount_total: number };
  assert.ok(m.read_amount_total > 0 && m.read_amount_total < image.blobBytes * 0.02, `fetched ${m.read_amount_total} of ${image.blobBytes}`);
  t.diagnostic(
    `nydusd --fs-driver erofs, cat /etc/hostname: ${m.read_count} request(s), ${m.read_amount_total} bytes = ` +
      `${((m.read_amount_total / image.blobBytes) * 100).toFixed(3)}% of the ${image.blobBytes}-byte blob`,
  );
});
