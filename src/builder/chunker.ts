// Cuts file data into chunks and deduplicates them: each chunk is digested and compressed
// (on the chunk pool), then, strictly in submission order, looked up in the chunk
// dictionary (this build, the parent image, the --chunk-dict image) and either referenced
// or appended to the new blob. Submission order is the order of first appearance, so chunk
// indexes and blob offsets come out as upstream's. Memory is bounded by the window.
import { closeSync, openSync, readSync } from 'node:fs';
import { BuildError } from '../errors.js';
import type { ChunkInfo } from '../storage/types.js';
import type { BlobWriter } from './blob-writer.js';
import type { ChunkPool, ProcessedChunk } from './chunk-pool.js';
import type { BuildInode } from './tree.js';

/** Where a known chunk came from. */
export type ChunkSource = 'build' | 'parent' | 'dict';

/** Chunk deduplication counters, reported by `create -J`. */
export interface DedupStats {
  /** Chunks of the files built in this run (each distinct file once). */
  chunks: number;
  /** Chunks stored in the new blob. */
  uniqueChunks: number;
  /** Chunks found again within this build. */
  dedupWithinBuild: number;
  /** Chunks found in the parent image. */
  dedupFromParent: number;
  /** Chunks found in the --chunk-dict image. */
  dedupFromDict: number;
  /** Uncompressed bytes not stored thanks to deduplication. */
  bytesSaved: number;
  /** Uncompressed bytes of file data processed. */
  fileBytes: number;
  /** Bytes of chunk data written to the new blob. */
  storedBytes: number;
}

/** Known chunks by (digest, size). */
export class ChunkDict {
  private readonly map = new Map<string, { chunk: ChunkInfo; source: ChunkSource }>();

  private static key(digest: Buffer, size: number): string {
    return digest.toString('latin1') + size;
  }

  /** Records a chunk (the first one recorded for a key wins). */
  add(chunk: ChunkInfo, source: ChunkSource): void {
    const k = ChunkDict.key(chunk.digest, chunk.uncompressedSize);
    if (!this.map.has(k)) this.map.set(k, { chunk, source });
  }

  get(digest: Buffer, size: number): { chunk: ChunkInfo; source: ChunkSource } | undefined {
    return this.map.get(ChunkDict.key(digest, size));
  }

  get size(): number {
    return this.map.size;
  }
}

interface Job {
  result: Promise<ProcessedChunk>;
  inode: BuildInode;
  k: number;
  size: number;
}

/** A reader of the next `n` bytes of a file's data. */
export type ReadData = (n: number) => Buffer | Promise<Buffer>;

export class Chunker {
  readonly stats: DedupStats = {
    chunks: 0,
    uniqueChunks: 0,
    dedupWithinBuild: 0,
    dedupFromParent: 0,
    dedupFromDict: 0,
    bytesSaved: 0,
    fileBytes: 0,
    storedBytes: 0,
  };
  private readonly queue: Job[] = [];
  private readonly zero = new Map<number, ProcessedChunk>();
  private readonly zeros: Buffer;

  /**
   * `blobIndex`: the index the new blob will have in the image's blob table.
   * `onProgress`: called with the bytes of each committed chunk.
   */
  constructor(
    private readonly pool: ChunkPool,
    private readonly blob: BlobWriter,
    private readonly dict: ChunkDict,
    private readonly blobIndex: number,
    readonly chunkSize: number,
    private readonly window: number,
    private readonly onProgress?: (bytes: number) => void,
  ) {
    this.zeros = Buffer.alloc(chunkSize);
  }

  /** Chunks `size` bytes of `inode`'s data, read piece by piece with `read`. */
  async addFile(inode: BuildInode, size: number, read: ReadData): Promise<void> {
    const count = Math.ceil(size / this.chunkSize);
    inode.chunks = new Array<ChunkInfo>(count);
    for (let k = 0; k < count; k++) {
      const n = Math.min(this.chunkSize, size - k * this.chunkSize);
      const data = await read(n);
      if (data.length !== n) throw new BuildError('ERR_BUILD_SOURCE', `failed to read file data: got ${data.length} of ${n} bytes`);
      let result: Promise<ProcessedChunk>;
      if (data.equals(this.zeros.subarray(0, n))) {
        // Holes and zero runs: one digest/compression per size, not per chunk.
        let z = this.zero.get(n);
        if (!z) {
          z = this.pool.processInline(data);
          this.zero.set(n, z);
        }
        result = Promise.resolve(z);
      } else {
        result = this.pool.process(data);
      }
      // Keep an unobserved rejection from crashing the process before it is awaited.
      result.catch(() => undefined);
      this.queue.push({ result, inode, k, size: n });
      while (this.queue.length > this.window) await this.commitHead();
    }
  }

  /** Chunks a file of the source directory. */
  async addPath(inode: BuildInode, path: Buffer, size: number): Promise<void> {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw new BuildError('ERR_BUILD_SOURCE', `failed to open ${path.toString()}: ${(err as Error).message}`, { cause: err });
    }
    try {
      let pos = 0;
      await this.addFile(inode, size, (n) => {
        // Each chunk owns its ArrayBuffer so that it can be transferred to a worker.
        const buf = Buffer.allocUnsafeSlow(n);
        let got = 0;
        while (got < n) {
          const r = readSync(fd, buf, got, n - got, pos + got);
          if (r === 0) throw new BuildError('ERR_BUILD_SOURCE', `failed to read ${path.toString()}: file shrank while building`);
          got += r;
        }
        pos += n;
        return buf;
      });
    } finally {
      closeSync(fd);
    }
  }

  private async commitHead(): Promise<void> {
    const job = this.queue.shift() as Job;
    const r = await job.result;
    const s = this.stats;
    s.chunks++;
    s.fileBytes += job.size;
    const fileOffset = job.k * this.chunkSize;
    const known = this.dict.get(r.digest, job.size);
    if (known) {
      s.bytesSaved += job.size;
      if (known.source === 'build') s.dedupWithinBuild++;
      else if (known.source === 'parent') s.dedupFromParent++;
      else s.dedupFromDict++;
      job.inode.chunks![job.k] = { ...known.chunk, fileOffset };
    } else {
      const at = this.blob.append(r.stored, job.size, r.digest);
      const chunk: ChunkInfo = {
        digest: r.digest,
        blobIndex: this.blobIndex,
        index: at.index,
        compressed: r.compressed,
        compressedOffset: at.compressedOffset,
        compressedSize: at.compressedSize,
        uncompressedOffset: at.uncompressedOffset,
        uncompressedSize: job.size,
        fileOffset: 0,
      };
      this.dict.add(chunk, 'build');
      s.uniqueChunks++;
      s.storedBytes += at.compressedSize;
      job.inode.chunks![job.k] = { ...chunk, fileOffset };
    }
    this.onProgress?.(job.size);
  }

  /** Commits every chunk still in flight. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) await this.commitHead();
  }
}
