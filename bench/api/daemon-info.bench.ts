// Benchmark: GET /api/v1/daemon at a fixed rate (default 1000/s) from 16 clients, one
// kept-alive connection each, for ~10 s after a 2 s warm-up, as many supervisors polling one daemon, while another process reads
// files through the daemon's FUSE mount. Prints p50/p90/p99/max latency and errors.
// Latency counts from each request's scheduled time, so a stall is not hidden by the
// clients slowing down (no coordinated omission).
//
//   node --import tsx bench/api/daemon-info.bench.ts [--sock S] [--rate N] [--clients N] [--seconds N]
//
// Without --sock it starts the real nydusd on the v6 fixture when it can (root,
// /dev/fuse, fixtures, src/cli/nydusd.ts), otherwise the API over the test FakeControl
// in a child process (no mount, so no reads); --fake forces the latter.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ApiClient } from '../../src/api/client.js';
import { FIXTURES_DIR, FROM_SOURCE, haveFixtures, isRoot, V6_FIXTURE } from '../../test/helpers/env.js';
import { haveNydusd, startNydusd } from '../../test/api/nydusd-process.js';
import type { NydusdProcess } from '../../test/api/nydusd-process.js';

const { values } = parseArgs({
  options: {
    sock: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    clients: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '10' },
    fake: { type: 'boolean', default: false },
  },
});
const rate = Number(values.rate);
const clients = Number(values.clients);
const seconds = Number(values.seconds);

interface Target {
  sock: string;
  mnt: string | null;
  label: string;
  stop(): Promise<void>;
}

async function fakeTarget(): Promise<Target> {
  const script = fileURLToPath(new URL(`./fake-daemon.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url));
  const child = spawn(process.execPath, [...(FROM_SOURCE ? ['--import', 'tsx'] : []), script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const sock = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`fake daemon exited ${code}`)));
  });
  return {
    sock,
    mnt: null,
    label: 'FakeControl in a child process (no FUSE mount)',
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

async function realTarget(): Promise<Target> {
  const d: NydusdProcess = await startNydusd(V6_FIXTURE);
  return { sock: d.sock, mnt: d.mnt, label: `real nydusd on ${V6_FIXTURE.slice(FIXTURES_DIR.length + 1)}`, stop: async () => void (await d.stop()) };
}

/** A child process reading every file under `mnt` in a loop until killed; reports bytes read. */
function startReader(mnt: string): ChildProcess {
  const code = `
    const fs = require('node:fs'); const path = require('node:path');
    let bytes = 0, passes = 0;
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else if (e.isFile()) bytes += fs.readFileSync(p).length; else fs.lstatSync(p);
    } };
    process.on('SIGTERM', () => { process.stdout.write(JSON.stringify({ bytes, passes })); process.exit(0); });
    const loop = () => { walk(${JSON.stringify(mnt)}); passes++; setImmediate(loop); };
    loop();`;
  return spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Sends at `rate` for `secs` seconds over `pool`; measures only when `record`. */
async function load(pool: ApiClient[], secs: number): Promise<{ latencies: number[]; errors: number; reasons: Map<string, number>; sent: number; elapsed: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const reasons = new Map<string, number>();
  const fail = (why: string) => {
    errors++;
    reasons.set(why, (reasons.get(why) ?? 0) + 1);
  };
  let sent = 0;
  const interval = (1000 * clients) / rate; // ms between requests of one client
  const start = performance.now();
  const end = start + secs * 1000;
  await Promise.all(
    pool.map(async (client, k) => {
      let due = start + (k * interval) / clients; // stagger the clients evenly
      const inflight: Promise<void>[] = [];
      while (due < end) {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const scheduled = due;
        sent++;
        inflight.push(
          client.request('GET', '/api/v1/daemon').then(
            (res) => {
              if (res.status === 200) latencies.push(performance.now() - scheduled);
              else fail(`status ${res.status}`);
            },
            (err: Error) => fail(err.message.replace(/^.*?: /, '').slice(0, 80)),
          ),
        );
        due += interval;
      }
      await Promise.all(inflight);
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  return { latencies, errors, reasons, sent, elapsed };
}

const canRun = haveNydusd() && haveFixtures() && isRoot() && existsSync('/dev/fuse');
const target: Target = values.sock
  ? { sock: values.sock, mnt: null, label: `daemon at ${values.sock}`, stop: async () => {} }
  : canRun && !values.fake
    ? await realTarget()
    : await fakeTarget();
const reader = target.mnt === null ? null : startReader(target.mnt);
try {
  // One kept-alive connection per client, as one supervisor each; warm up (JIT, connections) first.
  const pool = Array.from({ length: clients }, () => new ApiClient(target.sock, { timeoutMs: 30_000, maxSockets: 1 }));
  await load(pool, 2);
  const r = await load(pool, seconds);
  pool.forEach((c) => c.close());
  let readerStats = 'none';
  if (reader) {
    reader.kill('SIGTERM');
    const out = await new Promise<string>((resolve) => {
      let s = '';
      reader.stdout!.setEncoding('utf8').on('data', (d: string) => (s += d));
      reader.once('exit', () => resolve(s));
    });
    const { bytes, passes } = JSON.parse(out || '{"bytes":0,"passes":0}') as { bytes: number; passes: number };
    readerStats = `${passes} passes over the mount, ${(bytes / 1048576).toFixed(1)} MiB read`;
  }
  const sorted = [...r.latencies].sort((a, b) => a - b);
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  console.log(`target:     ${target.label}`);
  console.log(`load:       ${rate} req/s from ${clients} clients for ${seconds} s (${r.sent} sent, ${(r.latencies.length / r.elapsed).toFixed(0)} ok/s)`);
  console.log(`reads:      ${readerStats}`);
  console.log(`latency:    p50 ${ms(percentile(sorted, 50))}  p90 ${ms(percentile(sorted, 90))}  p99 ${ms(percentile(sorted, 99))}  max ${ms(sorted.at(-1) ?? NaN)}`);
  console.log(`errors:     ${r.errors}${[...r.reasons].map(([why, n]) => `\n  ${n} x ${why}`).join('')}`);
} finally {
  await target.stop();
}
