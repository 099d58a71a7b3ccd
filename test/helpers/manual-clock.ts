// A clock that moves only when the test says so, for code that takes a Clock
// (src/storage/prefetch.ts): sleepers wake on advance(), and the test can wait until a
// given number of them are asleep, which is how it knows the code under test is idle.
import type { Clock } from '../../src/storage/prefetch.js';

interface Sleeper {
  until: number;
  wake(): void;
}

export class ManualClock implements Clock {
  #now = 0;
  readonly #sleepers = new Set<Sleeper>();
  #waits: { n: number; resolve(): void }[] = [];

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      signal?.throwIfAborted();
      const s: Sleeper = {
        until: this.#now + ms,
        wake: () => {
          this.#sleepers.delete(s);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#sleepers.delete(s);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#sleepers.add(s);
      this.#check();
    });
  }

  /** How many callers are asleep now. */
  get sleepers(): number {
    return this.#sleepers.size;
  }

  /** Resolves once `n` callers are asleep at the same time. */
  whenSleepers(n: number): Promise<void> {
    return new Promise((resolve) => {
      this.#waits.push({ n, resolve });
      this.#check();
    });
  }

  /** Moves time on by `ms` and wakes every sleeper whose time has come. */
  advance(ms: number): void {
    this.#now += ms;
    for (const s of [...this.#sleepers]) if (s.until <= this.#now) s.wake();
  }

  #check(): void {
    const ready = this.#waits.filter((w) => this.#sleepers.size >= w.n);
    this.#waits = this.#waits.filter((w) => this.#sleepers.size < w.n);
    for (const w of ready) w.resolve();
  }
}
