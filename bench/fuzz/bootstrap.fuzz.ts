// The longer bootstrap fuzz run: as test/fuzz/bootstrap-fuzz.test.ts, for as many seeds
// as asked, going on past a hang (the hung case is reported and the run resumes at the
// next seed). Prints the outcome tally and every crash or hang with its seed; exits 1 if
// there was any. Replay one case with `--seed S --cases 1`.
// Run: `npm run build && node dist/bench/fuzz/bootstrap.fuzz.js [--seed 1] [--cases 5000]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzzBases } from '../../test/fuzz/bases.js';
import { runFuzz } from '../../test/fuzz/drive.js';
import type { CaseReport } from '../../test/fuzz/fuzz-worker.js';

const { values } = parseArgs({ options: { seed: { type: 'string', default: '1' }, cases: { type: 'string', default: '5000' }, timeout: { type: 'string', default: '10000' } } });
const first = Number(values.seed);
const last = first + Number(values.cases) - 1;
const work = mkdtempSync(join(tmpdir(), 'bootstrap-fuzz-run-'));
const problems: string[] = [];
const tally = new Map<string, number>();
const started = Date.now();
try {
  const bases = await fuzzBases(work);
  const count = (r: CaseReport): void => {
    const key = `${r.kind} ${r.outcome.result === 'error' ? r.outcome.code : r.outcome.result}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
    if (r.outcome.result === 'crash') problems.push(`crash: ${r.base} seed ${r.seed} (${r.kind}: ${r.note}): ${r.outcome.error}`);
  };
  for (let seed = first; seed <= last; ) {
    const run = await runFuzz({ bases, firstSeed: seed, cases: last - seed + 1 }, Number(values.timeout), count);
    if (run.workerError !== undefined) problems.push(`worker: ${run.workerError}`);
    if (run.hang === undefined) break;
    problems.push(`hang: ${run.hang.base} seed ${run.hang.seed}`);
    seed = run.hang.seed + 1;
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const total = [...tally.values()].reduce((a, b) => a + b, 0);
console.log(`${total} cases (seeds ${first}..${last}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
for (const [k, n] of [...tally].sort()) console.log(`  ${k}: ${n}`);
for (const p of problems) console.log(p);
process.exitCode = problems.length > 0 ? 1 : 0;
