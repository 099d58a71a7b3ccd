// Routes the network backends' diagnostics events (events.ts) to a logger: retries and
// health changes as warnings or info, reads that failed after their retries as errors.
// The messages carry no secrets (the backends never put any in them).
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { BackendEvent } from './events.js';

/** The logger methods used. */
export interface EventLogger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
}

// The blobcache's channel too (cache/events.ts): its events have the same shape.
const CHANNELS = ['nydus:storage:backend-retry', 'nydus:storage:backend-error', 'nydus:storage:backend-health', 'nydus:storage:cache'];

/** Logs every backend event to `logger` until the returned function is called. */
export function logBackendEvents(logger: EventLogger): () => void {
  const onEvent = (msg: unknown): void => {
    const e = msg as BackendEvent;
    const line = `${e.backend}${e.id ? ` ${e.id}` : ''}: ${e.message}`;
    logger[e.level](line);
  };
  for (const name of CHANNELS) subscribe(name, onEvent);
  return () => {
    for (const name of CHANNELS) unsubscribe(name, onEvent);
  };
}
