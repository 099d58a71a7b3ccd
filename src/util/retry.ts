// Trying an operation again: one loop, with exponential backoff between attempts, for
// the network backends (transient failures), the registry client, and the chunk reader
// (chunks whose fetched bytes fail to verify).
import { setTimeout as delay } from 'node:timers/promises';

/** Delay before retry `attempt` (0-based): 100 ms doubling to at most 3.2 s, with ±20% jitter. */
function backoffMs(attempt: number): number {
  const base = Math.min(100 * 2 ** attempt, 3200);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export interface RetryOptions {
  /** Extra attempts after the first (a backend's `retry_limit`). */
  retries: number;
  /** Whether a failure is worth another attempt; the others are thrown at once. */
  retryable(err: unknown): boolean;
  /** Stops the retries, the wait included: `retry` rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Told before each wait: the failure, the attempt (1-based) that failed, and the wait. */
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
  /** The error to throw on giving up, from the last failure and the attempts made (default: that failure). */
  giveUp?(err: unknown, attempts: number): unknown;
}

/**
 * Runs `op` (given the 0-based attempt) until it succeeds, fails with an error
 * `retryable` refuses, or has failed `retries + 1` times, waiting `backoffMs` between
 * attempts. An abort rejects with the signal's reason (a typed error the caller chose),
 * not node's generic AbortError.
 */
export async function retry<T>(opts: RetryOptions, op: (attempt: number) => Promise<T>): Promise<T> {
  let wait = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      if (wait > 0) await delay(wait, undefined, { signal: opts.signal });
      return await op(attempt);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (attempt >= opts.retries || !opts.retryable(err)) throw opts.giveUp !== undefined ? opts.giveUp(err, attempt + 1) : err;
      wait = backoffMs(attempt);
      opts.onRetry?.(err, attempt + 1, wait);
    }
  }
}
