// Waiting between attempts: an abortable sleep and the exponential backoff schedule the
// network backends and the chunk reader use when they try again.
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Sleeps `ms`, or rejects with the signal's reason when it aborts first: callers rethrow
 * that reason (a typed error), where node's own timer rejects with a generic AbortError.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    throw signal?.aborted ? signal.reason : err;
  }
}

/** Delay before retry `attempt` (0-based): 100 ms doubling to at most 3.2 s, with ±20% jitter. */
export function backoffMs(attempt: number): number {
  const base = Math.min(100 * 2 ** attempt, 3200);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
