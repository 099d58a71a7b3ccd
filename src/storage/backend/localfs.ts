// The `localfs` backend: blobs are files named by their blob id in `dir` (or in one of
// `alt_dirs`), or one fixed `blob_file` for every id, as upstream's LocalFsConfig says.
// Async I/O only; open handles are kept in a small LRU so a busy image does not reopen
// its blobs per read, and a handle is closed only when no read is using it.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../errors.js';
import type { LocalfsConfig } from '../../config/types.js';
import { BackendMetrics } from './backend.js';
import type { BlobBackend } from './backend.js';

/** Open blob handles kept by default. */
const DEFAULT_MAX_OPEN = 64;

interface OpenBlob {
  ready: Promise<{ fh: FileHandle; size: number }>;
  users: number;
  evicted: boolean;
}

/** Reads blobs from the local filesystem. */
export class LocalFsBackend implements BlobBackend {
  readonly type = 'localfs';
  readonly metrics = new BackendMetrics('localfs');
  readonly #dirs: string[];
  readonly #blobFile: string;
  readonly #maxOpen: number;
  readonly #open = new Map<string, OpenBlob>();
  #closed = false;

  constructor(config: LocalfsConfig, options: { maxOpenFiles?: number } = {}) {
    this.#blobFile = config.blob_file;
    this.#dirs = [config.dir, ...config.alt_dirs].filter((d) => d !== '');
    if (this.#blobFile === '' && this.#dirs.length === 0) {
      throw new StorageError('ERR_STORAGE_BACKEND', 'failed to create localfs backend: neither dir nor blob_file is set');
    }
    this.#maxOpen = Math.max(1, options.maxOpenFiles ?? DEFAULT_MAX_OPEN);
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    return this.#use(blobId, async ({ size }) => size);
  }

  async read(blobId: string, buf: Uint8Array, offset: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await this.metrics.timed(buf.length, () =>
      this.#use(blobId, async ({ fh, size }) => {
        if (!Number.isSafeInteger(offset) || offset < 0 || offset + buf.length > size) {
          throw new StorageError(
            'ERR_STORAGE_SHORT_READ',
            `failed to read blob ${blobId}: range [${offset}, ${offset + buf.length}) is beyond its size ${size}`,
          );
        }
        let done = 0;
        while (done < buf.length) {
          const { bytesRead } = await fh.read(buf, done, buf.length - done, offset + done);
          if (bytesRead === 0) {
            throw new StorageError(
              'ERR_STORAGE_SHORT_READ',
              `failed to read blob ${blobId}: end of file at ${offset + done}, wanted ${buf.length - done} more bytes`,
            );
          }
          done += bytesRead;
        }
      }),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#open.values()];
    this.#open.clear();
    for (const ob of all) {
      ob.evicted = true;
      if (ob.users === 0) await closeQuietly(ob);
    }
  }

  /** Runs `fn` with the blob's handle pinned open. */
  async #use<T>(blobId: string, fn: (h: { fh: FileHandle; size: number }) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StorageError('ERR_STORAGE_BACKEND', 'failed to read blob: localfs backend is closed');
    const ob = this.#acquire(blobId);
    try {
      return await fn(await ob.ready);
    } finally {
      ob.users--;
      if (ob.evicted && ob.users === 0) void closeQuietly(ob);
    }
  }

  #acquire(blobId: string): OpenBlob {
    let ob = this.#open.get(blobId);
    if (ob !== undefined) {
      // Refresh the LRU position.
      this.#open.delete(blobId);
      this.#open.set(blobId, ob);
    } else {
      ob = { ready: this.#openBlob(blobId), users: 0, evicted: false };
      const entry = ob;
      // A failed open is not kept: the blob may appear later.
      ob.ready.catch(() => {
        if (this.#open.get(blobId) === entry) this.#open.delete(blobId);
      });
      this.#open.set(blobId, ob);
      this.#evictOverflow();
    }
    ob.users++;
    return ob;
  }

  #evictOverflow(): void {
    for (const [id, ob] of this.#open) {
      if (this.#open.size <= this.#maxOpen) break;
      this.#open.delete(id);
      ob.evicted = true;
      if (ob.users === 0) void closeQuietly(ob);
    }
  }

  async #openBlob(blobId: string): Promise<{ fh: FileHandle; size: number }> {
    const paths = this.#candidates(blobId);
    for (const path of paths) {
      let fh: FileHandle;
      try {
        fh = await open(path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new StorageError('ERR_STORAGE_BACKEND', `failed to open blob ${blobId} at ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw new Error('not a regular file');
        return { fh, size: st.size };
      } catch (err) {
        await fh.close().catch(() => {});
        throw new StorageError('ERR_STORAGE_BACKEND', `failed to open blob ${blobId} at ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to find blob ${blobId} in ${paths.join(', ')}`);
  }

  #candidates(blobId: string): string[] {
    if (this.#blobFile !== '') return [this.#blobFile];
    // The id becomes a file name: refuse anything that could name another path.
    if (blobId === '' || blobId === '.' || blobId === '..' || /[/\\\0]/.test(blobId)) {
      throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to find blob: invalid blob id ${JSON.stringify(blobId)}`);
    }
    return this.#dirs.map((d) => join(d, blobId));
  }
}

async function closeQuietly(ob: OpenBlob): Promise<void> {
  try {
    const { fh } = await ob.ready;
    await fh.close();
  } catch {
    // Open failed or already closed: nothing to release.
  }
}
