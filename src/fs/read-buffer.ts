// Reply buffers for FUSE reads, shared by every filesystem of the process: a read fills
// a pooled buffer that goes back to the pool on the next turn of the event loop (both
// transports copy or write the reply in the microtasks that run when the read settles),
// so the read path allocates nothing per request below 4 MiB.
import { BufferPool } from '../util/buffer-pool.js';

const readPool = new BufferPool();
const POOL_LIMIT = 4 << 20;

function releaseBuffer(buf: Buffer): void {
  readPool.put(buf);
}

/** A buffer of `n` bytes filled by `fill`; `onError` hears of a failed fill before it is rethrown. */
export async function pooledRead(n: number, fill: (out: Buffer) => Promise<void>, onError?: (err: unknown) => void): Promise<Buffer> {
  const pooled = n <= POOL_LIMIT;
  const buf = pooled ? readPool.get(n) : Buffer.allocUnsafe(n);
  const view = buf.subarray(0, n);
  try {
    await fill(view);
  } catch (err) {
    if (pooled) readPool.put(buf);
    onError?.(err);
    throw err;
  }
  if (pooled) setImmediate(releaseBuffer, buf);
  return view;
}
