// A least-recently-used map bounded by the total weight of its values, for the caches
// on hot paths: decoded chunks in storage (weighed in bytes) and parsed v6 directories
// in rafs (weighed in entries). A Map's insertion order is its recency order, so a hit
// is re-inserted and eviction takes the oldest. Values are stored as they are and
// weighed by the function given at construction: a hit or an insertion allocates nothing.

export class WeightedLru<K, V> {
  readonly #map = new Map<K, V>();
  readonly #weigh: (value: V) => number;
  #total = 0;

  /** Holds at most `capacity` of total weight; `weigh` gives a value's (stable) weight. */
  constructor(
    readonly capacity: number,
    weigh: (value: V) => number,
  ) {
    this.#weigh = weigh;
  }

  /** Total weight of the values held. */
  get weight(): number {
    return this.#total;
  }

  /** Whether `key` is held, without refreshing it. */
  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** The value of `key`, which becomes the most recent. */
  get(key: K): V | undefined {
    const hit = this.#map.get(key);
    if (hit !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, hit);
    }
    return hit;
  }

  /** Stores `value` unless it alone outweighs the cache; evicts the least recent first. */
  set(key: K, value: V): void {
    const weight = this.#weigh(value);
    if (weight > this.capacity) return;
    const old = this.#map.get(key);
    if (old !== undefined) {
      this.#total -= this.#weigh(old);
      this.#map.delete(key);
    }
    this.#map.set(key, value);
    this.#total += weight;
    for (const [k, v] of this.#map) {
      if (this.#total <= this.capacity) break;
      this.#map.delete(k);
      this.#total -= this.#weigh(v);
    }
  }
}
