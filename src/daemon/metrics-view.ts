// Answers the metrics endpoints from the mounts' counters with upstream's instance rules
// (docs/contract.md §6): with `id`, the key must match exactly; without, the one
// registered instance, if there is exactly one. Anything else is ERR_API_NO_COUNTER.
// FS metrics are keyed by pseudo-fs mountpoint, backend and blobcache metrics by the
// config id (several mounts sharing an id share a key: the latest mount wins, as in
// upstream's global registry).
import { ApiError } from '../errors.js';
import type { MetricsKind, MetricsQuery } from './control.js';
import type { DaemonMount } from './mounts.js';

function noCounter(kind: MetricsKind, id: string | undefined): ApiError {
  const which = id === undefined ? 'no single instance' : `no instance ${JSON.stringify(id)}`;
  return new ApiError('ERR_API_NO_COUNTER', `failed to get ${kind} metrics: ${which}`);
}

function pick<T>(instances: Map<string, T>, kind: MetricsKind, id: string | undefined): T {
  if (id !== undefined) {
    const hit = instances.get(id);
    if (hit === undefined) throw noCounter(kind, id);
    return hit;
  }
  if (instances.size !== 1) throw noCounter(kind, id);
  return instances.values().next().value as T;
}

function byMetricsId(mounts: readonly DaemonMount[], withCache: boolean): Map<string, DaemonMount> {
  const out = new Map<string, DaemonMount>();
  for (const m of mounts) if (!withCache || m.storage.cache !== undefined) out.set(m.metricsId, m);
  return out;
}

/**
 * Mounts whose file requests this daemon sees. With the erofs fs driver the kernel answers
 * them, so there are no fs, files or pattern counters (as upstream's fscache daemon).
 */
function fileServed(mounts: readonly DaemonMount[]): DaemonMount[] {
  return mounts.filter((m) => m.fsDriver !== 'erofs');
}

/** The JSON of one metrics request over the current mounts (in mount order). */
export function metricsOf(mounts: readonly DaemonMount[], kind: MetricsKind, query: MetricsQuery): unknown {
  const fsInstances = new Map(fileServed(mounts).map((m) => [m.mountpoint, m]));
  switch (kind) {
    case 'fs':
      return pick(fsInstances, kind, query.id).stats.toJSON();
    case 'files': {
      const m = pick(fsInstances, kind, query.id);
      return query.latest === true ? m.stats.takeLatestReadFiles() : m.stats.filesJson();
    }
    case 'pattern':
      return pick(fsInstances, kind, query.id).stats.accessPattern();
    case 'backend':
      return pick(byMetricsId(mounts, false), kind, query.id).storage.backend.metrics.toJSON();
    case 'blobcache':
      return pick(byMetricsId(mounts, true), kind, query.id).storage.cache!.metrics.toJSON();
  }
}

/** The instance ids each kind has now. */
export function metricIdsOf(mounts: readonly DaemonMount[]): Record<MetricsKind, string[]> {
  const fs = fileServed(mounts).map((m) => m.mountpoint);
  return {
    fs,
    files: [...fs],
    pattern: [...fs],
    backend: [...byMetricsId(mounts, false).keys()],
    blobcache: [...byMetricsId(mounts, true).keys()],
  };
}
