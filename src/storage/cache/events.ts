// The blobcache's diagnostics channel, beside the backends' (backend/events.ts) and logged
// the same way (backend/log-events.ts): an exposed work_dir, writes that failed and left
// the cache degraded. Events are shaped as backend events, `backend` being `blobcache` and
// `id` the work_dir.
import { channel } from 'node:diagnostics_channel';
import type { BackendEvent } from '../backend/events.js';

/** Name of the channel (subscribers use it). */
export const CACHE_CHANNEL = 'nydus:storage:cache';
const cacheChannel = channel(CACHE_CHANNEL);

/** Publishes one cache event when anyone listens. */
export function publishCacheEvent(e: { level: BackendEvent['level']; workDir: string; blobId?: string; message: string }): void {
  if (!cacheChannel.hasSubscribers) return;
  const event: BackendEvent = { level: e.level, backend: 'blobcache', id: e.workDir, blobId: e.blobId, message: e.message };
  cacheChannel.publish(event);
}
