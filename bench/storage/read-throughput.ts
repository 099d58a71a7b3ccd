// Benchmark: read all data of an image through src/storage (localfs backend, no cache,
// digest validation on) and compare with `sha256sum` of the same blob, in the same run.
// Usage: node dist/bench/storage/read-throughput.js [--mb 256] [--keep DIR]
//   Builds images of a generated tree (half random, half compressible bytes) with each
//   compressor x digester through `nydus-image create`, then times both readers.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { openBootstrap } from '../../src/rafs/index.js';
import { localfsDirConfig } from '../../src/config/derive.js';
import { createStorage } from '../../src/storage/factory.js';
import { programArgv } from '../../test/helpers/env.js';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '256' }, keep: { type: 'string' } } });
const totalMb = Number(values.mb);
const work = values.keep ?? mkdtempSync(join(tmpdir(), 'bench-storage-'));

function makeTree(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const fileMb = 8;
  for (let i = 0; i < totalMb / fileMb; i++) {
    const buf = i % 2 === 0 ? randomBytes(fileMb << 20) : Buffer.from('nydus '.repeat((fileMb << 20) / 6 + 1)).subarray(0, fileMb << 20);
    writeFileSync(join(dir, `f${i}.bin`), buf);
  }
}

function build(src: string, out: string, compressor: string, digester: string): { boot: string; blobs: string; blob: string } {
  const blobs = join(out, 'blobs');
  mkdirSync(blobs, { recursive: true });
  const boot = join(out, 'bootstrap');
  const [cmd, ...pre] = programArgv('nydus-image');
  execFileSync(cmd, [...pre, 'create', src, '--bootstrap', boot, '--blob-dir', blobs, '--compressor', compressor, '--digester', digester], { stdio: 'ignore' });
  return { boot, blobs, blob: join(blobs, readdirSync(blobs)[0]) };
}

async function readAll(boot: string, blobs: string): Promise<{ seconds: number; bytes: number }> {
  const sb = await openBootstrap(boot);
  const config = localfsDirConfig(blobs);
  config.cache.type = '';
  config.rafs.validate = true;
  const storage = await createStorage(config, sb, { memoryCacheBytes: 0 });
  const started = process.hrtime.bigint();
  let bytes = 0;
  for (const blob of sb.blobs) {
    const chunks = sb.blobChunks(blob.index);
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const data = await storage.reader.readChunk(chunks[next++]);
        bytes += data.length;
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await storage.close();
  return { seconds, bytes };
}

function sha256sum(file: string): number {
  const t = process.hrtime.bigint();
  execFileSync('sha256sum', [file], { stdio: 'ignore' });
  return Number(process.hrtime.bigint() - t) / 1e9;
}

const src = join(work, 'tree');
makeTree(src);
console.log(`tree: ${totalMb} MiB of files (half random, half compressible), work dir ${work}`);
console.log('compressor  digester  blob MiB  data MiB  ours s  ours MiB/s(data)  sha256sum s  ratio(sha256sum time / ours)');
for (const compressor of ['none', 'lz4_block', 'zstd']) {
  for (const digester of ['sha256', 'blake3']) {
    const img = build(src, join(work, `${compressor}-${digester}`), compressor, digester);
    const blobMb = statSync(img.blob).size / 2 ** 20;
    sha256sum(img.blob); // warm the page cache for both readers alike
    const ours = await readAll(img.boot, img.blobs);
    const peer = sha256sum(img.blob);
    const dataMb = ours.bytes / 2 ** 20;
    console.log(
      [compressor.padEnd(10), digester.padEnd(8), blobMb.toFixed(0).padStart(8), dataMb.toFixed(0).padStart(8), ours.seconds.toFixed(2).padStart(6),
        (dataMb / ours.seconds).toFixed(0).padStart(17), peer.toFixed(2).padStart(12), (peer / ours.seconds).toFixed(2).padStart(10)].join('  '),
    );
  }
}
if (!values.keep) rmSync(work, { recursive: true, force: true });
