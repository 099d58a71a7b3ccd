import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WeightedLru } from '../../src/util/weighted-lru.js';

const bytes = (b: Buffer): number => b.length;

test('evicts the least recently used values until the total weight fits', () => {
  const lru = new WeightedLru<string, Buffer>(10, bytes);
  lru.set('a', Buffer.alloc(4));
  lru.set('b', Buffer.alloc(4));
  assert.ok(lru.get('a'), 'a hit makes a the most recent');
  lru.set('c', Buffer.alloc(4));
  assert.equal(lru.has('b'), false, 'b was the least recent');
  assert.ok(lru.has('a') && lru.has('c'));
  assert.equal(lru.weight, 8);
});

test('has() does not refresh; replacing a key reweighs it; an oversized value is not kept', () => {
  const lru = new WeightedLru<number, { n: number }>(5, (v) => v.n);
  lru.set(1, { n: 2 });
  lru.set(2, { n: 2 });
  assert.equal(lru.has(1), true);
  lru.set(3, { n: 2 });
  assert.equal(lru.has(1), false, 'has() left 1 the oldest');
  lru.set(2, { n: 1 });
  assert.equal(lru.weight, 3);
  lru.set(4, { n: 6 });
  assert.equal(lru.has(4), false);
  assert.equal(lru.weight, 3);
  assert.equal(lru.get(4), undefined);
});
