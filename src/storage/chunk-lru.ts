// A byte-bounded LRU of recently decoded, verified chunks. The kernel reads a file in
// pieces (128 KiB is common) much smaller than a chunk (1 MiB by default); keeping the
// last chunks in memory turns those follow-up reads into copies instead of refetching,
// re-decoding and re-hashing the whole chunk each time.

/** Least-recently-used map from chunk key to its uncompressed bytes, bounded by total bytes. */
export class ChunkLru {
  readonly #map = new Map<string, Buffer>();
  #bytes = 0;

  constructor(readonly capacityBytes: number) {}

  get bytes(): number {
    return this.#bytes;
  }

  /** Whether `key` is held, without refreshing it. */
  has(key: string): boolean {
    return this.#map.has(key);
  }

  get(key: string): Buffer | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      // Map iteration order is insertion order: re-inserting makes it the newest.
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: string, value: Buffer): void {
    if (value.length > this.capacityBytes) return;
    const old = this.#map.get(key);
    if (old !== undefined) {
      this.#bytes -= old.length;
      this.#map.delete(key);
    }
    this.#map.set(key, value);
    this.#bytes += value.length;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.capacityBytes) break;
      this.#map.delete(k);
      this.#bytes -= v.length;
    }
  }

  delete(key: string): void {
    const v = this.#map.get(key);
    if (v === undefined) return;
    this.#map.delete(key);
    this.#bytes -= v.length;
  }
}
