// Hostile bootstraps: truncated (all of the first KiB, then every length on a stride),
// zeroed regions, and a fast-check property flipping bytes and words of both fixtures
// and of two small synthetic images (paths the fixtures never reach: xattrs, holes...).
// Whatever the damage, every reader entry point succeeds or throws RafsFormatError,
// nothing hangs (each test has a deadline), and no single allocation outgrows the input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { haveFixtures, need } from '../helpers/env.js';
import { exercise, largestAllocation } from './helpers/exercise.js';
import { readV5, readV6 } from './helpers/fixtures.js';
import type { SynthNode } from './helpers/synth.js';
import { buildV5 } from './helpers/synth-v5.js';
import { buildV6 } from './helpers/synth-v6.js';

const SLACK = 64 * 1024;

function lengths(size: number, stride: number): number[] {
  const out: number[] = [];
  for (let n = 0; n <= Math.min(1024, size); n++) out.push(n);
  for (let n = 1025; n < size; n += stride) out.push(n);
  out.push(size);
  return out;
}

for (const [name, read] of [['v5', readV5], ['v6', readV6]] as const) {
  test(`${name} fixture truncated at every length on a stride`, { timeout: 60_000 }, async (t) => {
    if (!need(t, haveFixtures(), 'shared fixtures are missing')) return;
    const full = read();
    const valid: number[] = [];
    let parsed = 0;
    const max = await largestAllocation(async () => {
      for (const n of lengths(full.length, 61)) {
        // A copy, so that nothing can read past `n` through the original buffer.
        const r = await exercise(Buffer.from(full.subarray(0, n)));
        parsed += Number(r.parsed);
        if (r.valid) valid.push(n);
      }
    });
    // v5 opens once its tables are whole (records are checked lazily); only the whole
    // file passes validation.
    assert.ok(parsed >= 1);
    assert.deepEqual(valid, [full.length]);
    assert.ok(max > 0 && max <= full.length + SLACK, `largest allocation ${max}`);
  });

  test(`${name} fixture with zeroed regions`, { timeout: 60_000 }, async (t) => {
    if (!need(t, haveFixtures(), 'shared fixtures are missing')) return;
    const full = read();
    const outcomes = { parsed: 0, valid: 0 };
    const max = await largestAllocation(async () => {
      for (const len of [4, 8, 64, 512, 4096]) {
        for (let off = 0; off < full.length; off += Math.max(len, 37)) {
          const bytes = Buffer.from(full);
          bytes.fill(0, off, Math.min(off + len, bytes.length));
          const r = await exercise(bytes);
          outcomes.parsed += Number(r.parsed);
          outcomes.valid += Number(r.valid);
        }
      }
    });
    assert.ok(outcomes.parsed > 0 && outcomes.valid < outcomes.parsed, JSON.stringify(outcomes));
    assert.ok(max <= full.length + SLACK, `largest allocation ${max}`);
  });
}

/** Byte ranges holding structures (the v6 fixture is mostly zero padding). */
const HOT: Record<string, [number, number][]> = {
  v6: [[1024, 1536], [4096, 4352], [12288, 12640], [16384, 16544]],
};

/** A small tree reaching what the fixtures lack: xattrs, holes, links, devices, blocks. */
const SMALL: SynthNode = {
  name: '',
  type: 'dir',
  children: [
    { name: 'a', type: 'dir', xattrs: { 'user.d': 'x' }, children: [{ name: 'x', type: 'file', size: 5 }, { name: 'z', type: 'file', size: 1, link: 'L' }] },
    { name: 'attrs', type: 'file', size: 0, xattrs: { 'user.a': 'one', 'security.b': Buffer.from([0, 1, 2]) } },
    { name: 'c', type: 'file', size: 10, compact: true },
    { name: 'dev', type: 'chr', rdev: 0x107 },
    { name: 'holes', type: 'file', size: 3 * (1 << 20) + 1, holes: [0, 2] },
    { name: 'l2', type: 'file', size: 1, link: 'L' },
    { name: 'long', type: 'symlink', target: 'q'.repeat(300) },
    { name: 'many', type: 'dir', children: Array.from({ length: 40 }, (_, i) => ({ name: `e${i}`, type: 'file' as const, size: 1 })) },
  ],
};

const SPECIAL = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 128, 133, 136, 0xffff, 0x8000_0000, 0xffff_ffff];

test('random byte and word flips of fixtures and synthetic images never escape as non-format errors', { timeout: 120_000 }, async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures are missing')) return;
  const images: Record<string, Buffer> = {
    v5: readV5(),
    v6: readV6(),
    s5: buildV5(SMALL, { prefetch: ['/a'] }).bytes,
    s6: buildV6(SMALL, { prefetch: ['/a'], buildTime: 10 }).bytes,
  };
  const flip = fc.record({
    hot: fc.boolean(),
    where: fc.nat(),
    width: fc.constantFrom(1, 2, 4, 8),
    value: fc.oneof(fc.constantFrom(...SPECIAL), fc.nat({ max: 0xffff_ffff })),
  });
  const stats = { runs: 0, parsed: 0, valid: 0 };
  const started = Date.now();
  const max = await largestAllocation(async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.keys(images)), fc.array(flip, { minLength: 1, maxLength: 6 }), async (which, flips) => {
        const bytes = Buffer.from(images[which]);
        for (const f of flips) {
          let pos: number;
          if (f.hot && HOT[which]) {
            const [s, e] = HOT[which][f.where % HOT[which].length];
            pos = s + (Math.floor(f.where / 7) % (e - s));
          } else pos = f.where % bytes.length;
          pos = Math.min(pos, bytes.length - f.width);
          if (f.width === 8) {
            bytes.writeUInt32LE(f.value >>> 0, pos);
            bytes.writeUInt32LE((f.value * 2654435761) >>> 0, pos + 4);
          } else bytes.writeUIntLE(f.value % 2 ** (8 * f.width), pos, f.width);
        }
        const r = await exercise(bytes);
        stats.runs++;
        stats.parsed += Number(r.parsed);
        stats.valid += Number(r.valid);
      }),
      { numRuns: 4000 },
    );
  });
  t.diagnostic(`flip runs ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
  assert.ok(stats.parsed > 0 && stats.valid < stats.runs, JSON.stringify(stats));
  assert.ok(max <= Math.max(...Object.values(images).map((b) => b.length)) + SLACK, `largest allocation ${max}`);
});
