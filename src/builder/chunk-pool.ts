// Digests and compresses chunks on worker threads, because hashing and compression are
// what a build spends its CPU on. Small chunks are handled inline (a message round trip
// costs more than the work). Results may complete out of order; callers keep their own
// order. With `workers: 0` everything runs on the calling thread.
import { Worker } from 'node:worker_threads';
import { BuildError } from '../errors.js';
import type { Compressor, Digester } from '../storage/types.js';
import { compress } from '../storage/codec.js';
import { digest } from '../storage/digest.js';
import type { ChunkDone, ChunkJob } from './chunk-worker.js';

/** What a chunk becomes: the digest of its bytes and what to store. */
export interface ProcessedChunk {
  digest: Buffer;
  stored: Buffer;
  compressed: boolean;
}

/** Chunks smaller than this are processed inline. */
const INLINE_BELOW = 65536;

interface Pending {
  resolve(r: ProcessedChunk): void;
  reject(e: unknown): void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

/** Starts chunk-worker beside this module (from TypeScript sources, with tsx's hooks). */
function startWorker(workerData: { compressor: Compressor; digester: Digester }): Worker {
  const name = 'nydus-chunk-worker';
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./chunk-worker.js', import.meta.url), { workerData, name });
  // Node 20 workers do not inherit tsx's loader hooks: register them, then import.
  const entry = JSON.stringify(new URL('./chunk-worker.ts', import.meta.url).href);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const boot = `import(${tsx}).then(({ register }) => { register(); return import(${entry}); })`;
  return new Worker(boot, { eval: true, workerData, name });
}

export class ChunkPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: unknown;

  constructor(
    private readonly compressor: Compressor,
    private readonly digester: Digester,
    workers: number,
  ) {
    for (let i = 0; i < workers; i++) {
      const worker = startWorker({ compressor, digester });
      const slot: Slot = { worker, busy: 0 };
      worker.on('message', (m: ChunkDone) => this.onDone(slot, m));
      worker.on('error', (err) => this.fail(err));
      this.slots.push(slot);
    }
  }

  private fail(err: unknown): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private onDone(slot: Slot, m: ChunkDone): void {
    slot.busy--;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.error !== undefined) {
      p.reject(new BuildError('ERR_BUILD_SOURCE', `failed to process chunk: ${m.error}`));
      return;
    }
    p.resolve({ digest: Buffer.from(m.digest), stored: Buffer.from(m.stored), compressed: m.compressed });
  }

  /** Processes `data` inline on this thread. */
  processInline(data: Buffer): ProcessedChunk {
    const d = digest(this.digester, data);
    const c = compress(this.compressor, data);
    return { digest: d, stored: c.data, compressed: c.compressed };
  }

  /**
   * Digest and stored form of `data`. Large chunks go to the least busy worker, and
   * `data` is then transferred: it must own its ArrayBuffer exactly (allocUnsafeSlow)
   * and is unusable afterwards.
   */
  process(data: Buffer): Promise<ProcessedChunk> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.slots.length === 0 || data.length < INLINE_BELOW) return Promise.resolve(this.processInline(data));
    if (data.byteOffset !== 0 || data.buffer.byteLength !== data.length) {
      throw new RangeError('chunk buffers sent to workers must own their ArrayBuffer exactly');
    }
    let slot = this.slots[0];
    for (const s of this.slots) if (s.busy < slot.busy) slot = s;
    slot.busy++;
    const id = this.nextId++;
    const job: ChunkJob = { id, buf: data.buffer as ArrayBuffer, len: data.length };
    return new Promise<ProcessedChunk>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      slot.worker.postMessage(job, [job.buf]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}
