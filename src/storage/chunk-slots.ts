// The chunk reader's single-flight table: a chunk being fetched or read from the cache
// has one slot, a promise every request for that chunk shares, and a chunk that settles
// with its bytes goes into the memory LRU, where later requests find it.

import { WeightedLru } from '../util/weighted-lru.js';
import type { ChunkInfo } from './types.js';

/** The shared outcome of one chunk read in flight. */
export interface Slot {
  promise: Promise<Buffer>;
  resolve(data: Buffer): void;
  reject(err: unknown): void;
}

/** One chunk of a backend or cache read, and the slot it settles. */
export interface Member {
  chunk: ChunkInfo;
  key: string;
  slot: Slot;
  /** Not requested: added to the read by amplification. */
  amplified: boolean;
  data?: Buffer;
  settled?: boolean;
}

const chunkBytes = (data: Buffer): number => data.length;

/** Slots of the chunks in flight, keyed by chunk key, and the decoded chunks kept in memory. */
export class ChunkSlots {
  readonly #lru: WeightedLru<string, Buffer>;
  readonly #inflight = new Map<string, Slot>();

  constructor(memoryBytes: number) {
    this.#lru = new WeightedLru<string, Buffer>(memoryBytes, chunkBytes);
  }

  /** The chunk's bytes when memory holds them (refreshing them). */
  memory(key: string): Buffer | undefined {
    return this.#lru.get(key);
  }

  /** The slot of the chunk's read in flight. */
  inflight(key: string): Slot | undefined {
    return this.#inflight.get(key);
  }

  /** True when the chunk is in memory or on its way. */
  busy(key: string): boolean {
    return this.#lru.has(key) || this.#inflight.has(key);
  }

  /** A new slot for the chunk, which requests for it share until it settles. */
  open(key: string): Slot {
    let resolve!: (d: Buffer) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<Buffer>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Amplified neighbours may fail with nobody waiting: that must not be an unhandled rejection.
    promise.catch(() => {});
    const slot = { promise, resolve, reject };
    this.#inflight.set(key, slot);
    return slot;
  }

  /** Settles a member once: with `data` (kept in memory) or with `err`. */
  settle(m: Member, err: unknown, data?: Buffer): void {
    if (m.settled === true) return;
    m.settled = true;
    if (data !== undefined) this.#lru.set(m.key, data);
    if (this.#inflight.get(m.key) === m.slot) this.#inflight.delete(m.key);
    if (data !== undefined) m.slot.resolve(data);
    else m.slot.reject(err);
  }
}
