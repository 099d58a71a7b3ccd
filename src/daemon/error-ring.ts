// Upstream's ring of storage read failures (nydus error/src/logger.rs ErrorHolder), read
// through GET /api/v1/daemon/events: at most 500 entries and 51200 bytes of text, the
// oldest dropped first, each entry `<HTTP-date> - <error>`.
import type { ErrorEvents } from './control.js';
import { describeError } from '../errors.js';
import { httpDate } from './upstream-format.js';

export const MAX_ERRORS = 500;
export const MAX_ERROR_BYTES = 51200;

/** A bounded list of error lines. */
export class ErrorRing {
  readonly #lines: string[] = [];
  #head = 0;
  #bytes = 0;

  /** Records one failure now. */
  push(err: unknown): void {
    let line = `${httpDate()} - ${describeError(err)}`;
    if (Buffer.byteLength(line) > MAX_ERROR_BYTES) line = line.slice(0, MAX_ERROR_BYTES / 2);
    const size = Buffer.byteLength(line);
    this.#lines.push(line);
    this.#bytes += size;
    while (this.#lines.length - this.#head > MAX_ERRORS || this.#bytes > MAX_ERROR_BYTES) {
      this.#bytes -= Buffer.byteLength(this.#lines[this.#head++]);
    }
    if (this.#head > 1024) {
      this.#lines.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** Upstream's payload: the totals describe what the ring holds now. */
  toJSON(): ErrorEvents {
    return {
      max_errors: MAX_ERRORS,
      total_errors: this.#lines.length - this.#head,
      max_size: MAX_ERROR_BYTES,
      total_size: this.#bytes,
      errors: this.#lines.slice(this.#head),
    };
  }
}
