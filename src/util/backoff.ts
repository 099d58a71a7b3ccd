// Waiting between attempts: an abortable sleep and the exponential backoff schedule the
// network backends and the chunk reader use when they try again.

/** Sleeps `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Delay before retry `attempt` (0-based): 100 ms doubling to at most 3.2 s, with ±20% jitter. */
export function backoffMs(attempt: number): number {
  const base = Math.min(100 * 2 ** attempt, 3200);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
