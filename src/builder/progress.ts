// Build progress for people: on a terminal, one bar with files, bytes and throughput;
// anywhere else (pipes, CI logs, tests) nothing at all.
import cliProgress from 'cli-progress';

/** What the builder reports as it goes. */
export interface Progress {
  /** Starts the display; `total` is the number of bytes expected (0 when unknown). */
  start(total: number): void;
  /** The number of bytes expected, once known. */
  total(total: number): void;
  /** One more entry scanned or added. */
  entry(): void;
  /** `n` more bytes processed. */
  bytes(n: number): void;
  stop(): void;
}

/** A progress that shows nothing. */
export const silentProgress: Progress = { start() {}, total() {}, entry() {}, bytes() {}, stop() {} };

function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${n.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** A bar on `stream` when it is a terminal, otherwise the silent progress. */
export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return silentProgress;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{bar} {percentage}% | {files} entries | {done} | {rate}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let files = 0;
  let done = 0;
  let total = 1;
  let started = 0;
  let running = false;
  const payload = (): Record<string, string | number> => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    return { files, done: total > 1 ? `${human(done)}/${human(total)}` : human(done), rate: `${human(done / secs)}/s` };
  };
  return {
    start(t) {
      total = Math.max(t, 1);
      started = Date.now();
      running = true;
      bar.start(total, 0, payload());
    },
    total(t) {
      total = Math.max(t, 1);
      if (running) bar.setTotal(total);
    },
    entry() {
      files++;
      if (running) bar.update(Math.min(done, total), payload());
    },
    bytes(n) {
      done += n;
      if (running) bar.update(Math.min(done, total), payload());
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
