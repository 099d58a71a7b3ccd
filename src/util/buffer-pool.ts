// Reusable buffers by power-of-two size class (4 KiB .. 4 MiB), so FUSE replies
// (readdir pages, file data) and backend reads do not allocate per request. Each class
// keeps a few idle buffers; a burst beyond that allocates and lets the surplus go to
// the GC, which bounds idle memory.

const MIN_SHIFT = 12;
const MAX_SHIFT = 22;
const KEEP_PER_CLASS = 8;

/** Pool of Buffers; `get` may return a larger buffer than asked for. */
export class BufferPool {
  readonly #free: Buffer[][] = [];

  constructor() {
    for (let s = MIN_SHIFT; s <= MAX_SHIFT; s++) this.#free.push([]);
  }

  /** A buffer of at least `size` bytes (at most 4 MiB; larger sizes are refused). */
  get(size: number): Buffer {
    const cls = this.#classOf(size);
    if (cls < 0) throw new RangeError(`buffer of ${size} bytes exceeds the pool limit`);
    return this.#free[cls].pop() ?? Buffer.allocUnsafe(1 << (cls + MIN_SHIFT));
  }

  /** Returns a buffer obtained from `get`; the caller must not touch it afterwards. */
  put(buf: Buffer): void {
    const cls = this.#classOf(buf.length);
    if (cls < 0 || buf.length !== 1 << (cls + MIN_SHIFT)) return;
    const list = this.#free[cls];
    if (list.length < KEEP_PER_CLASS) list.push(buf);
  }

  #classOf(size: number): number {
    let cls = 0;
    while (cls + MIN_SHIFT <= MAX_SHIFT && 1 << (cls + MIN_SHIFT) < size) cls++;
    return cls + MIN_SHIFT <= MAX_SHIFT ? cls : -1;
  }
}
