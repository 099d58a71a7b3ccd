// How long readers of a mount wait while nydusd changes hands. Runs the test suite's rig
// (test/upgrade/rig.ts: v5 fixture at /v5, v6 at /v6, the test supervisor) under its load
// (N readers looping over every file with O_DIRECT and digest checks, plus a holder with
// its cwd and an open file in the mount), performs hot upgrades in both supervisor orders
// and kill -9 failovers, and prints, per handover, its duration (predecessor stops →
// successor RUNNING) and the longest pause any reader saw. A script, never an assertion.
//
//   node --import tsx bench/upgrade/stall.bench.ts [--upgrades 20] [--failovers 20] [--readers 8] [--json FILE]
//   node dist/bench/upgrade/stall.bench.js ...            (compiled: what CI and users run)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rig, now, type Handover } from '../../test/upgrade/rig.js';
import { expectedFiles, fixtureHolder, Load, stallsPerHandover } from '../../test/upgrade/readers.js';

const { values } = parseArgs({
  options: {
    upgrades: { type: 'string', default: '20' },
    failovers: { type: 'string', default: '20' },
    readers: { type: 'string', default: '8' },
    json: { type: 'string' },
  },
});
const upgrades = Number(values.upgrades);
const failovers = Number(values.failovers);
const readers = Number(values.readers);
if (process.getuid?.() !== 0) {
  console.error('stall.bench: needs root (FUSE mounts)');
  process.exit(2);
}

const cleanups: (() => unknown)[] = [];
const ctx = { after: (fn: () => unknown) => void cleanups.push(fn) };

function summary(kind: Handover['kind'], rows: { kind: string; handoverMs: number; stallMs: number }[]): string {
  const of = rows.filter((r) => r.kind === kind);
  if (of.length === 0) return '';
  const pick = (xs: number[], q: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
  const h = of.map((r) => r.handoverMs);
  const s = of.map((r) => r.stallMs);
  return `| ${kind} | ${of.length} | ${pick(h, 0.5)} | ${pick(h, 0.9)} | ${Math.max(...h)} | ${pick(s, 0.5)} | ${pick(s, 0.9)} | ${Math.max(...s)} |`;
}

try {
  const rig = await Rig.start(ctx);
  const load = Load.start(join(rig.dir, 'stop'), readers, expectedFiles(rig.mnt), fixtureHolder(rig.mnt));
  ctx.after(() => load.kill());
  await load.warm();
  const handovers: Handover[] = [];
  const step = async (h: Promise<Handover>) => {
    handovers.push(await h);
    await load.readAfter(handovers.at(-1)!.running);
  };
  for (let i = 0; i < upgrades; i++) await step(i % 2 === 0 ? rig.upgradeSnapshotter() : rig.upgradeSmoke());
  for (let i = 0; i < failovers; i++) await step(rig.failover());
  await load.readAfter(now(), { round: true });
  const end = now();
  const report = await load.stop();
  const stalls = stallsPerHandover(report.gaps, handovers.map((h) => h.stopped), end);
  const rows = handovers.map((h, i) => ({ kind: h.kind, handoverMs: Math.round(h.running - h.stopped), stallMs: Math.round(stalls[i]) }));
  console.log('| # | sequence | handover (ms) | longest read stall (ms) |');
  console.log('| --- | --- | --- | --- |');
  rows.forEach((r, i) => console.log(`| ${i + 1} | ${r.kind} | ${r.handoverMs} | ${r.stallMs} |`));
  console.log('\n| sequence | n | handover p50 | p90 | max | stall p50 | p90 | max |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const kind of ['upgrade-snapshotter', 'upgrade-smoke', 'failover'] as const) {
    const line = summary(kind, rows);
    if (line) console.log(line);
  }
  const reads = report.done.reduce((n, d) => n + d.reads, 0);
  console.log(`\n${reads} reads by ${report.done.length} children, ${report.bad.length} failed or wrong, ${report.early.length} children died`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ readers, rows, reads, bad: report.bad, early: report.early }, null, 2));
  process.exitCode = report.bad.length + report.early.length === 0 ? 0 : 1;
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
