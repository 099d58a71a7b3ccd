// Diagnostics channels of the network backends. The daemon subscribes to turn them into
// log lines and into the ring of backend errors that GET /api/v1/daemon/events reports
// (docs/contract.md §6.7); tests subscribe to observe retries and fallbacks. Messages
// published here never carry credentials or query strings.
import { channel } from 'node:diagnostics_channel';

/** One backend event. `level` is what a logger should use for it. */
export interface BackendEvent {
  level: 'info' | 'warn' | 'error';
  /** `registry`, `http-proxy`. */
  backend: string;
  /** Backend instance id (the config's `id`), when known. */
  id: string;
  blobId?: string;
  /** Retry number (1-based) for retries. */
  attempt?: number;
  message: string;
}

/** A failed attempt that will be retried (warn). */
export const retryChannel = channel('nydus:storage:backend-retry');
/** A read or size query that failed after its retries (error). */
export const errorChannel = channel('nydus:storage:backend-error');
/** Health changes of mirrors and proxies, fallbacks to the origin (info/warn). */
export const healthChannel = channel('nydus:storage:backend-health');

/** Publishes `event` on `ch` when anyone listens. */
export function publish(ch: ReturnType<typeof channel>, event: BackendEvent): void {
  if (ch.hasSubscribers) ch.publish(event);
}
