// Worker thread body of the chunk pool: digests and compresses one chunk per message.
// Input buffers arrive transferred (zero-copy); results go back transferred, each in an
// ArrayBuffer of its own so that no pooled allocation is ever detached.
import { parentPort, workerData } from 'node:worker_threads';
import type { Compressor, Digester } from '../storage/types.js';
import { compress } from '../storage/codec.js';
import { digest } from '../storage/digest.js';

/** A job: one chunk's bytes (`len` of them, at the start of `buf`). */
export interface ChunkJob {
  id: number;
  buf: ArrayBuffer;
  len: number;
}

/** The answer: digest of the raw bytes and the bytes to store. */
export interface ChunkDone {
  id: number;
  digest: ArrayBuffer;
  stored: ArrayBuffer;
  compressed: boolean;
  error?: string;
}

const { compressor, digester } = workerData as { compressor: Compressor; digester: Digester };
const port = parentPort;
if (!port) throw new Error('chunk-worker must run in a worker thread');

function own(b: Buffer): ArrayBuffer {
  const out = new ArrayBuffer(b.length);
  new Uint8Array(out).set(b);
  return out;
}

port.on('message', (job: ChunkJob) => {
  try {
    const raw = Buffer.from(job.buf, 0, job.len);
    const d = own(digest(digester, raw));
    const c = compress(compressor, raw);
    // Stored raw: send the input back instead of a copy.
    const stored = c.compressed ? own(c.data) : job.buf;
    const done: ChunkDone = { id: job.id, digest: d, stored, compressed: c.compressed };
    port.postMessage(done, [d, stored]);
  } catch (err) {
    port.postMessage({ id: job.id, digest: new ArrayBuffer(0), stored: new ArrayBuffer(0), compressed: false, error: String(err) });
  }
});
