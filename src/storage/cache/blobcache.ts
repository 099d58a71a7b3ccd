// `blobcache` (a.k.a. filecache): each blob's uncompressed address space in
// `<work_dir>/<blob_id>.blob.data`, chunk `i` at its `uncompressedOffset`, and a readiness
// bitmap in `<blob_id>.blob.data.chunk_map` (upstream HEAD file names; the map format is
// ours, see chunk-map.ts). Writes are group-committed: one writer per blob takes every
// queued chunk, writes them, fdatasyncs the data file once, then marks them ready and
// replaces the map. A chunk is never ready before its bytes are durable, so a crash at
// any point loses at most work, never correctness.
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from '../../errors.js';
import type { BlobInfo, ChunkInfo } from '../types.js';
import { BlobcacheMetrics } from './cache.js';
import type { BlobChunkCache, ChunkCache } from './cache.js';
import { ChunkMap, MAX_BLOB_ID_BYTES } from './chunk-map.js';
import { WriteFailureReport } from './write-failures.js';

/** Suffix of cache data files (upstream BLOB_DATA_FILE_SUFFIX). */
export const DATA_FILE_SUFFIX = '.blob.data';
/** Suffix appended to the data file name for the chunk map. */
export const CHUNK_MAP_SUFFIX = '.chunk_map';
/** Bytes queued for writing per blob before `store` makes callers wait. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** The blobcache of one mount: one entry per blob, under `workDir`. */
export class BlobCache implements ChunkCache {
  readonly type = 'blobcache';
  readonly metrics: BlobcacheMetrics;
  readonly #entries = new Map<string, Promise<BlobCacheEntry | undefined>>();
  readonly #open: BlobCacheEntry[] = [];
  #dirReady: Promise<void> | undefined;

  constructor(readonly workDir: string) {
    this.metrics = new BlobcacheMetrics(workDir, () => {
      let ready = 0;
      for (const e of this.#open) ready += e.map.readyCount;
      return { ready, allReady: this.#open.length > 0 && this.#open.every((e) => e.map.allReady) };
    });
  }

  openBlob(blob: BlobInfo): Promise<BlobCacheEntry | undefined> {
    let p = this.#entries.get(blob.blobId);
    if (p === undefined) {
      p = this.#openEntry(blob);
      this.#entries.set(blob.blobId, p);
      // A failed open is retried on the next request rather than remembered.
      p.catch(() => this.#entries.delete(blob.blobId));
    }
    return p;
  }

  async #openEntry(blob: BlobInfo): Promise<BlobCacheEntry | undefined> {
    // Old v5 images record no chunk count: no stable index to key a persistent map by.
    if (!isCacheableId(blob.blobId) || blob.chunkCount <= 0) return undefined;
    this.#dirReady ??= mkdir(this.workDir, { recursive: true, mode: 0o700 }).then(() => undefined);
    try {
      await this.#dirReady;
    } catch (err) {
      this.#dirReady = undefined;
      throw new StorageError('ERR_STORAGE_CACHE', `failed to create cache directory ${this.workDir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const entry = await BlobCacheEntry.open(this.workDir, blob, this.metrics);
    this.#open.push(entry);
    this.metrics.underlyingFiles.add(blob.blobId + DATA_FILE_SUFFIX);
    return entry;
  }

  async flush(): Promise<void> {
    await Promise.all(this.#open.map((e) => e.flush()));
  }

  async close(): Promise<void> {
    const entries = await Promise.all([...this.#entries.values()].map((p) => p.catch(() => undefined)));
    this.#entries.clear();
    this.#open.length = 0;
    await Promise.all(entries.map((e) => e?.close()));
  }
}

function isCacheableId(id: string): boolean {
  return id !== '' && id !== '.' && id !== '..' && !/[/\\\0]/.test(id) && Buffer.byteLength(id) <= MAX_BLOB_ID_BYTES;
}

interface Queued {
  chunk: ChunkInfo;
  data: Buffer;
}

/** The cache files of one blob. */
export class BlobCacheEntry implements BlobChunkCache {
  readonly #fh: FileHandle;
  readonly #mapPath: string;
  readonly #metrics: BlobcacheMetrics;
  readonly #failures: WriteFailureReport;
  /** Bytes the data file is known to hold; ready chunks past it are not served. */
  #dataSize: number;
  #queue: Queued[] = [];
  #queuedBytes = 0;
  readonly #pending = new Map<number, Buffer>();
  #writer: Promise<void> | undefined;
  #waiters: (() => void)[] = [];
  #saving: Promise<void> | undefined;
  #saveAgain = false;
  #closed = false;

  private constructor(
    fh: FileHandle,
    dataSize: number,
    readonly map: ChunkMap,
    mapPath: string,
    metrics: BlobcacheMetrics,
  ) {
    this.#fh = fh;
    this.#dataSize = dataSize;
    this.#mapPath = mapPath;
    this.#metrics = metrics;
    this.#failures = new WriteFailureReport(metrics.storePath, map.identity.blobId);
  }

  /** Opens (creating when needed) the cache files of `blob` in `workDir`. */
  static async open(workDir: string, blob: BlobInfo, metrics: BlobcacheMetrics): Promise<BlobCacheEntry> {
    const dataPath = join(workDir, blob.blobId + DATA_FILE_SUFFIX);
    const mapPath = dataPath + CHUNK_MAP_SUFFIX;
    let fh: FileHandle;
    try {
      // Owner-only: the image's own file modes do not protect its bytes in here.
      fh = await open(dataPath, constants.O_RDWR | constants.O_CREAT, 0o600);
    } catch (err) {
      throw new StorageError('ERR_STORAGE_CACHE', `failed to open cache file ${dataPath}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const { size, mode } = await fh.stat();
      // A file an older nydusd left readable by others is made private.
      if ((mode & 0o077) !== 0) await fh.chmod(mode & 0o7700);
      const identity = { blobId: blob.blobId, chunkCount: blob.chunkCount, uncompressedSize: blob.uncompressedSize };
      const { map, discarded } = await ChunkMap.load(mapPath, identity);
      if (discarded !== undefined) metrics.mapDiscards++;
      // A map without its data file (deleted, recreated) describes nothing.
      if (size === 0 && map.readyCount > 0) {
        map.reset();
        metrics.mapDiscards++;
      }
      return new BlobCacheEntry(fh, size, map, mapPath, metrics);
    } catch (err) {
      await fh.close().catch(() => {});
      throw new StorageError('ERR_STORAGE_CACHE', `failed to open cache map ${mapPath}: ${(err as Error).message}`, { cause: err });
    }
  }

  isReady(chunk: ChunkInfo): boolean {
    return this.map.isSet(chunk.index) && chunk.uncompressedOffset + chunk.uncompressedSize <= this.#dataSize;
  }

  async read(chunk: ChunkInfo, out: Buffer): Promise<boolean> {
    if (!this.isReady(chunk)) return false;
    const size = chunk.uncompressedSize;
    let done = 0;
    while (done < size) {
      const { bytesRead } = await this.#fh.read(out, done, size - done, chunk.uncompressedOffset + done);
      if (bytesRead === 0) {
        // The file shrank under us. A later write may extend it again over a zero-filled
        // hole, so no bit in the map can be trusted any more.
        this.#dataSize = Math.min(this.#dataSize, chunk.uncompressedOffset + done);
        this.map.reset();
        this.#metrics.mapDiscards++;
        this.#metrics.evictions++;
        void this.#requestSave();
        return false;
      }
      done += bytesRead;
    }
    this.#metrics.hits++;
    this.#metrics.bytesRead += size;
    return true;
  }

  pending(chunk: ChunkInfo): Buffer | undefined {
    return this.#pending.get(chunk.index);
  }

  async store(items: readonly Queued[]): Promise<void> {
    if (this.#closed) return;
    for (const item of items) {
      const { chunk } = item;
      if (chunk.index < 0 || chunk.index >= this.map.identity.chunkCount) continue;
      if (this.map.isSet(chunk.index) || this.#pending.has(chunk.index)) continue;
      this.#queue.push(item);
      this.#pending.set(chunk.index, item.data);
      this.#queuedBytes += item.data.length;
    }
    this.#writer ??= this.#drain().finally(() => (this.#writer = undefined));
    while (this.#queuedBytes > MAX_QUEUED_BYTES && this.#writer !== undefined) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  evict(chunk: ChunkInfo): void {
    if (!this.map.clear(chunk.index)) return;
    this.#metrics.evictions++;
    this.#requestSave();
  }

  /** Resolves once every queued write and map update has finished. */
  async flush(): Promise<void> {
    while (this.#writer !== undefined || this.#saving !== undefined) {
      await this.#writer;
      await this.#saving;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    await this.#fh.close();
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.sort((a, b) => a.chunk.uncompressedOffset - b.chunk.uncompressedOffset);
      this.#queue = [];
      try {
        let end = 0;
        for (const { chunk, data } of batch) {
          await writeFully(this.#fh, data.subarray(0, chunk.uncompressedSize), chunk.uncompressedOffset);
          end = Math.max(end, chunk.uncompressedOffset + chunk.uncompressedSize);
          this.#metrics.bytesWritten += chunk.uncompressedSize;
        }
        // One sync for the whole batch; only then may the chunks count as cached.
        await this.#fh.datasync();
        this.#dataSize = Math.max(this.#dataSize, end);
        for (const { chunk } of batch) this.map.set(chunk.index);
        // Caching counts as working again once the map that publishes the chunks is saved too.
        await this.#requestSave();
      } catch (err) {
        this.#writeFailed(err, 'chunk data');
      } finally {
        for (const { chunk, data } of batch) {
          if (this.#pending.get(chunk.index) === data) this.#pending.delete(chunk.index);
          this.#queuedBytes -= data.length;
        }
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const w of waiters) w();
      }
    }
  }

  #writeFailed(err: unknown, what: string): void {
    this.#metrics.writeErrors++;
    this.#metrics.lastWriteError = `${what}: ${(err as Error).message}`;
    this.#metrics.degradedBlobs.add(this.map.identity.blobId);
    this.#failures.failed(err, what);
  }

  #writeSucceeded(): void {
    this.#metrics.degradedBlobs.delete(this.map.identity.blobId);
    this.#failures.succeeded();
  }

  /** Replaces the map file; concurrent requests coalesce into one more save. */
  #requestSave(): Promise<void> {
    if (this.#saving !== undefined) {
      this.#saveAgain = true;
      return this.#saving;
    }
    const run = async (): Promise<void> => {
      do {
        this.#saveAgain = false;
        try {
          await this.map.save(this.#mapPath);
          this.#writeSucceeded();
        } catch (err) {
          this.#writeFailed(err, 'chunk map');
        }
      } while (this.#saveAgain);
    };
    this.#saving = run().finally(() => (this.#saving = undefined));
    return this.#saving;
  }
}

async function writeFully(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
