// Child process for the blobcache crash test: reads chunks through a blobcache and kills
// itself with SIGKILL the first time a chunk map is about to be saved with one of the
// `crashWhenReady` chunks marked, i.e. after that chunk's data was written and synced
// but before the map file says so. argv[2] is a JSON job (see blobcache.test.ts).
import { ChunkMap } from '../../src/storage/cache/chunk-map.js';
import { LocalFsBackend } from '../../src/storage/backend/localfs.js';
import { BlobCache } from '../../src/storage/cache/blobcache.js';
import { ChunkReader } from '../../src/storage/chunk-reader.js';
import type { BlobInfo, ChunkInfo } from '../../src/storage/types.js';

interface Job {
  blobDir: string;
  workDir: string;
  blob: BlobInfo;
  chunks: (Omit<ChunkInfo, 'digest'> & { digest: string })[];
  /** Groups of chunk indexes read one after the other, each flushed to the cache. */
  groups: number[][];
  crashWhenReady: number[];
}

const job = JSON.parse(process.argv[2]) as Job;
const chunks: ChunkInfo[] = job.chunks.map((c) => ({ ...c, digest: Buffer.from(c.digest, 'hex') }));
const realSave = ChunkMap.prototype.save;
ChunkMap.prototype.save = function (this: ChunkMap, path: string): Promise<void> {
  if (job.crashWhenReady.some((i) => this.isSet(i))) process.kill(process.pid, 'SIGKILL');
  return realSave.call(this, path);
};

const backend = new LocalFsBackend({ dir: job.blobDir, blob_file: '', alt_dirs: [] });
const cache = new BlobCache(job.workDir);
const reader = new ChunkReader([job.blob], backend, cache, { digestValidate: true, amplifyIo: 0 });
for (const group of job.groups) {
  await reader.readChunks(group.map((i) => chunks[i]));
  await cache.flush();
}
process.stdout.write('finished without crashing\n');
