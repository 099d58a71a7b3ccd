// Every admin API path in one place (upstream nydusd's HTTP_ROUTES plus the project's
// extensions), with the methods each answers. Routes, the client, nydusctl and the tests
// all read this table, so a path is spelled once. Nothing here talks HTTP.

/** Upstream v1 paths (nydus api/src/http_handler.rs; docs/contract.md §2.3). */
export const V1 = {
  daemon: '/api/v1/daemon',
  events: '/api/v1/daemon/events',
  backend: '/api/v1/daemon/backend',
  start: '/api/v1/daemon/start',
  exit: '/api/v1/daemon/exit',
  sendFd: '/api/v1/daemon/fuse/sendfd',
  takeover: '/api/v1/daemon/fuse/takeover',
  mount: '/api/v1/mount',
  metrics: '/api/v1/metrics',
  metricsFiles: '/api/v1/metrics/files',
  metricsPattern: '/api/v1/metrics/pattern',
  metricsBackend: '/api/v1/metrics/backend',
  metricsBlobcache: '/api/v1/metrics/blobcache',
  metricsInflight: '/api/v1/metrics/inflight',
  config: '/api/v1/config',
} as const;

/** Upstream v2 paths. */
export const V2 = {
  daemon: '/api/v2/daemon',
  blobs: '/api/v2/blobs',
} as const;

/** The project's extensions (not in upstream nydusd). */
export const EXT = {
  machine: '/api/v1/daemon/machine',
  journal: '/api/v1/daemon/journal',
  prometheus: '/api/v1/metrics/prometheus',
} as const;

/** An HTTP method the API answers. */
export type ApiMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** Every routed path and the methods it answers; any other method on it is a 400 `BadRequest`. */
export const ROUTES: ReadonlyArray<{ path: string; methods: readonly ApiMethod[]; extension: boolean }> = [
  { path: V1.daemon, methods: ['GET', 'PUT'], extension: false },
  { path: V1.events, methods: ['GET'], extension: false },
  { path: V1.backend, methods: ['GET'], extension: false },
  { path: V1.start, methods: ['PUT'], extension: false },
  { path: V1.exit, methods: ['PUT'], extension: false },
  { path: V1.sendFd, methods: ['PUT'], extension: false },
  { path: V1.takeover, methods: ['PUT'], extension: false },
  { path: V1.mount, methods: ['POST', 'PUT', 'DELETE'], extension: false },
  { path: V1.metrics, methods: ['GET'], extension: false },
  { path: V1.metricsFiles, methods: ['GET'], extension: false },
  { path: V1.metricsPattern, methods: ['GET'], extension: false },
  { path: V1.metricsBackend, methods: ['GET'], extension: false },
  { path: V1.metricsBlobcache, methods: ['GET'], extension: false },
  { path: V1.metricsInflight, methods: ['GET'], extension: false },
  { path: V1.config, methods: ['GET', 'PUT'], extension: false },
  { path: V2.daemon, methods: ['GET', 'PUT'], extension: false },
  { path: V2.blobs, methods: ['GET', 'PUT', 'DELETE'], extension: false },
  { path: EXT.machine, methods: ['GET'], extension: true },
  { path: EXT.journal, methods: ['GET'], extension: true },
  { path: EXT.prometheus, methods: ['GET'], extension: true },
];

/** Largest request body accepted, in bytes (dbs-uhttp's limit, docs/contract.md §2). */
export const MAX_BODY_BYTES = 51200;

/** A path with its query string, encoded as Go's url.Values.Encode does (keys sorted). */
export function withQuery(path: string, query: Record<string, string | number | boolean | undefined> = {}): string {
  const entries = Object.entries(query)
    .filter((e): e is [string, string | number | boolean] => e[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 0) return path;
  return `${path}?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString()}`;
}
