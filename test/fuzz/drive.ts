// Runs a fuzz job in a worker thread and watches it: a case that gives no answer within
// `caseTimeoutMs` is a hang, the worker is terminated and the case named. Shared by the
// permanent test and the longer run in bench/fuzz/.
import { Worker } from 'node:worker_threads';
import type { CaseReport, FuzzJob } from './fuzz-worker.js';

export interface FuzzRun {
  reports: CaseReport[];
  /** The case that hung, if one did. */
  hang?: { base: string; seed: number };
  /** An error of the worker itself (not of a case). */
  workerError?: string;
}

export function runFuzz(job: FuzzJob, caseTimeoutMs = 10_000, onReport?: (r: CaseReport) => void): Promise<FuzzRun> {
  return new Promise((resolve) => {
    const worker = new Worker(new URL('./fuzz-worker.js', import.meta.url), { workerData: job });
    const run: FuzzRun = { reports: [] };
    let current: { base: string; seed: number } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        run.hang = current;
        void worker.terminate();
      }, caseTimeoutMs);
    };
    arm();
    worker.on('message', (m: { start?: { base: string; seed: number }; report?: CaseReport; done?: boolean }) => {
      if (m.start) {
        current = m.start;
        arm();
      }
      if (m.report) {
        run.reports.push(m.report);
        onReport?.(m.report);
      }
      if (m.done) void worker.terminate();
    });
    worker.on('error', (err) => (run.workerError = err.stack ?? err.message));
    worker.on('exit', () => {
      clearTimeout(timer);
      resolve(run);
    });
  });
}
