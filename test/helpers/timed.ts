// Times a promise for the fault tests: its value or its error, and how long it took (ms).
// The time is printed as a diagnostic or checked against a generous bound, never tuned.
import { performance } from 'node:perf_hooks';

export async function timed<T>(p: Promise<T>): Promise<{ value?: T; err?: unknown; ms: number }> {
  const start = performance.now();
  try {
    return { value: await p, ms: Math.round(performance.now() - start) };
  } catch (err) {
    return { err, ms: Math.round(performance.now() - start) };
  }
}
