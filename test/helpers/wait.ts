// Waiting on conditions instead of sleeping for a guessed duration: a condition is checked
// on each tick until it holds; the limit only turns a hang into a clear failure.
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves once `cond()` holds, checking every `everyMs`; rejects naming `what` after `limitMs`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, { everyMs = 10, limitMs = 60_000 } = {}): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting after ${limitMs} ms: ${what}`);
    await sleep(everyMs);
  }
}

/** Lets the event loop go round `n` times (each turn polls for I/O once). */
export async function loopTurns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}
