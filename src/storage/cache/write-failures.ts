// What the log says of one blob's failing cache writes (a full disk, EIO, EACCES): reads
// go on from the backend, so without a line nobody would notice that caching stopped. The
// first failure of each cause is logged at once; then at most one line per cause and
// interval, counting those left out; and one line when a write succeeds again.
import { publishCacheEvent } from './events.js';

/** Minimum time between two lines about the same cause of the same blob. */
const REPORT_INTERVAL_MS = 60_000;

export class WriteFailureReport {
  readonly #causes = new Map<string, { loggedAt: number; unreported: number }>();
  #degraded = false;

  constructor(
    private readonly workDir: string,
    private readonly blobId: string,
  ) {}

  /** One failed write of `what` (chunk data, chunk map). */
  failed(err: unknown, what: string): void {
    this.#degraded = true;
    const cause = (err as NodeJS.ErrnoException).code ?? 'error';
    const now = Date.now();
    const seen = this.#causes.get(cause);
    if (seen !== undefined && now - seen.loggedAt < REPORT_INTERVAL_MS) {
      seen.unreported++;
      return;
    }
    const more = seen !== undefined && seen.unreported > 0 ? ` (${seen.unreported} more like it since the last line)` : '';
    this.#causes.set(cause, { loggedAt: now, unreported: 0 });
    const message = `caching degraded for blob ${this.blobId}: failed to write ${what}: ${(err as Error).message}${more}; reads are served from the backend`;
    publishCacheEvent({ level: 'warn', workDir: this.workDir, blobId: this.blobId, message });
  }

  /** A write went through: caching works again if it had stopped. */
  succeeded(): void {
    if (!this.#degraded) return;
    this.#degraded = false;
    publishCacheEvent({ level: 'info', workDir: this.workDir, blobId: this.blobId, message: `caching resumed for blob ${this.blobId}` });
  }
}
