// The one retry loop (src/util/retry.ts): how many attempts it makes, what it retries,
// what it throws on giving up, and that an abort ends it at once with the caller's reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retry } from '../../src/util/retry.js';

class Transient extends Error {}

test('retries a retryable failure up to `retries` times, telling each retry, then succeeds', async () => {
  const told: [number, number][] = [];
  const seen: number[] = [];
  const out = await retry(
    { retries: 2, retryable: (e) => e instanceof Transient, onRetry: (_e, attempt, ms) => told.push([attempt, ms]) },
    async (attempt) => {
      seen.push(attempt);
      if (attempt < 2) throw new Transient(`attempt ${attempt}`);
      return 'ok';
    },
  );
  assert.equal(out, 'ok');
  assert.deepEqual(seen, [0, 1, 2]);
  assert.deepEqual(told.map(([a]) => a), [1, 2]);
  // 100 ms then 200 ms, each ±20%.
  assert.ok(told[0][1] >= 80 && told[0][1] <= 120, String(told[0][1]));
  assert.ok(told[1][1] >= 160 && told[1][1] <= 240, String(told[1][1]));
});

test('gives up after retries + 1 attempts with giveUp\'s error, and throws a non-retryable failure at once', async () => {
  let calls = 0;
  const err = await retry(
    { retries: 1, retryable: () => true, giveUp: (e, attempts) => new Error(`${(e as Error).message} after ${attempts}`) },
    async () => {
      calls++;
      throw new Error('down');
    },
  ).catch((e: unknown) => e);
  assert.equal((err as Error).message, 'down after 2');
  assert.equal(calls, 2);

  calls = 0;
  const fatal = new Error('fatal');
  await assert.rejects(
    retry({ retries: 5, retryable: (e) => e instanceof Transient }, async () => {
      calls++;
      throw fatal;
    }),
    (e) => e === fatal,
  );
  assert.equal(calls, 1);
});

test('an abort during the wait rejects with the signal\'s reason and makes no further attempt', async () => {
  const ac = new AbortController();
  const reason = new Error('stopped by the caller');
  let calls = 0;
  const p = retry(
    { retries: 10, retryable: () => true, signal: ac.signal, onRetry: () => ac.abort(reason) },
    async () => {
      calls++;
      throw new Transient('again');
    },
  );
  await assert.rejects(p, (e) => e === reason);
  assert.equal(calls, 1);
});
