// The fuzz cases run in this worker thread so that a hang (an endless loop in a parser)
// can be stopped from outside: the parent terminates the worker when a case takes too
// long and names its seed. Posts one message per case, in order.
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { findTargets, mutate } from './mutate.js';
import { runCase } from './run-case.js';

export interface FuzzBase {
  name: string;
  bootstrap: string;
  blobDir: string;
  blobSize: number;
}

export interface FuzzJob {
  bases: FuzzBase[];
  /** Seeds `firstSeed .. firstSeed + cases - 1`, each on every base. */
  firstSeed: number;
  cases: number;
}

export interface CaseReport {
  base: string;
  seed: number;
  kind: string;
  note: string;
  outcome: Awaited<ReturnType<typeof runCase>>;
}

const job = workerData as FuzzJob;
const loaded = job.bases.map((b) => {
  const bytes = readFileSync(b.bootstrap);
  return { ...b, bytes, targets: findTargets(bytes, b.blobSize) };
});
for (let seed = job.firstSeed; seed < job.firstSeed + job.cases; seed++) {
  for (const b of loaded) {
    const m = mutate(b.bytes, b.targets, seed);
    parentPort!.postMessage({ start: { base: b.name, seed } });
    const outcome = await runCase(m.bytes, b.blobDir);
    const report: CaseReport = { base: b.name, seed, kind: m.kind, note: m.note, outcome };
    parentPort!.postMessage({ report });
  }
}
parentPort!.postMessage({ done: true });
