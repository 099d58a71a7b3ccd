// The process frame of the registry benchmarks: an Owner whose cleanups run when the
// benchmark ends (servers, temp dirs), stderr progress lines, and the run itself, which
// exits explicitly so servers and agents cannot keep the process alive.
import type { Owner } from '../../test/helpers/registry-server.js';

const cleanups: (() => unknown)[] = [];

/** The command-line options both start-up benchmarks take (node:util parseArgs form). */
export const commonOptions = {
  rootfs: { type: 'string', default: '/tmp/registry-bench/rootfs' },
  runs: { type: 'string', default: '5' },
  json: { type: 'string' },
  mbit: { type: 'string' },
  'rtt-ms': { type: 'string', default: '0' },
} as const;

/** Owns what a benchmark starts; cleaned up in reverse order when it ends. */
export const owner = { after: (fn: () => unknown) => void cleanups.push(fn) } as Owner;

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Runs `main`, then every cleanup, then exits. */
export async function runBench(main: () => Promise<void>): Promise<never> {
  try {
    await main();
  } finally {
    for (const fn of cleanups.reverse()) await fn();
  }
  process.exit(process.exitCode ?? 0);
}
