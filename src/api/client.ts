// A small client of the admin API over its unix socket (node:http with socketPath and
// a keep-alive agent), used by nydusctl, the examples and the tests. It speaks the
// paths of paths.ts and turns an error answer into an ApiError carrying the daemon's
// own code (the body's `error_code`) and upstream's message.
import { Agent, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type {
  BlobCacheEntry,
  BlobObject,
  DaemonInfo,
  ErrorEvents,
  InflightEntry,
  MachineView,
  MetricsKind,
  MetricsQuery,
  MountCmd,
} from '../daemon/control.js';
import { ApiError, ERROR_CODES } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { ErrorBody } from './error-middleware.js';
import { EXT, V1, V2, withQuery } from './paths.js';
import type { ApiMethod } from './paths.js';
import type { JournalPage } from './routes/ext.js';

/** A raw answer. */
export interface ApiResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as text ('' for none). */
  text: string;
}

/** Options of a raw request. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  /** A value sent as JSON, or a string/Buffer sent as is. */
  body?: unknown;
  headers?: Record<string, string>;
}

const METRICS_PATHS: Record<MetricsKind, string> = {
  fs: V1.metrics,
  files: V1.metricsFiles,
  pattern: V1.metricsPattern,
  backend: V1.metricsBackend,
  blobcache: V1.metricsBlobcache,
};

/** A client of one daemon's admin API. */
export class ApiClient {
  readonly socketPath: string;
  readonly #timeoutMs: number;
  readonly #agent: Agent;

  /**
   * `timeoutMs` bounds each request (default 30 s, as nydus-snapshotter's client);
   * `maxSockets` caps the kept-alive connections (default: one per concurrent request).
   */
  constructor(socketPath: string, opts: { timeoutMs?: number; maxSockets?: number } = {}) {
    this.socketPath = socketPath;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#agent = new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? Infinity });
  }

  /** Sends one request and returns the answer whatever its status. */
  request(method: ApiMethod | string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    const body =
      opts.body === undefined
        ? undefined
        : Buffer.isBuffer(opts.body)
          ? opts.body
          : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    const headers: Record<string, string | number> = { ...opts.headers };
    if (body !== undefined) {
      headers['Content-Type'] ??= 'application/json';
      headers['Content-Length'] = body.length;
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { socketPath: this.socketPath, agent: this.#agent, method, path: withQuery(path, opts.query), headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (err) => reject(this.#unavailable(err)));
        },
      );
      req.setTimeout(this.#timeoutMs, () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', (err) => reject(this.#unavailable(err)));
      req.end(body);
    });
  }

  #unavailable(err: Error): ApiError {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
    return new ApiError('ERR_API_UNAVAILABLE', `failed to reach the daemon at ${this.socketPath}: ${why}`, { cause: err });
  }

  /**
   * Sends one request; resolves with the parsed JSON body (null for 204), rejects with an
   * ApiError for any other status than 200/204 (code: the daemon's `error_code`).
   */
  async call(method: ApiMethod, path: string, opts: RequestOptions = {}): Promise<unknown> {
    const res = await this.request(method, path, opts);
    if (res.status === 204) return null;
    let parsed: unknown;
    try {
      parsed = res.text === '' ? null : JSON.parse(res.text);
    } catch {
      parsed = undefined;
    }
    if (res.status === 200 && parsed !== undefined) return parsed;
    const err = (parsed ?? {}) as Partial<ErrorBody>;
    const code: ErrorCode = typeof err.error_code === 'string' && err.error_code in ERROR_CODES ? (err.error_code as ErrorCode) : 'ERR_API_RESPONSE';
    const message = typeof err.message === 'string' ? err.message : res.text.slice(0, 200) || '(no body)';
    const more = typeof err.description === 'string' && err.description !== message ? ` (${err.description})` : '';
    throw new ApiError(code, `failed to ${method} ${path}: ${res.status} ${message}${more}`, {
      detail: { status: res.status, body: parsed ?? res.text },
    });
  }

  /** The text of a 200 answer (Prometheus exposition). */
  async text(path: string): Promise<string> {
    const res = await this.request('GET', path);
    if (res.status !== 200) await this.call('GET', path);
    return res.text;
  }

  info = () => this.call('GET', V1.daemon) as Promise<DaemonInfo>;
  infoV2 = () => this.call('GET', V2.daemon) as Promise<DaemonInfo>;
  errorEvents = () => this.call('GET', V1.events) as Promise<ErrorEvents>;
  backendInfo = (mountpoint: string) => this.call('GET', V1.backend, { query: { mountpoint } }) as Promise<Record<string, unknown>>;
  setLogLevel = async (level: string) => void (await this.call('PUT', V1.daemon, { body: { log_level: level } }));
  start = async () => void (await this.call('PUT', V1.start));
  exit = async () => void (await this.call('PUT', V1.exit));
  sendFd = async () => void (await this.call('PUT', V1.sendFd));
  takeover = async () => void (await this.call('PUT', V1.takeover));
  mount = async (mountpoint: string, cmd: MountCmd) => void (await this.call('POST', V1.mount, { query: { mountpoint }, body: cmd }));
  remount = async (mountpoint: string, cmd: MountCmd) => void (await this.call('PUT', V1.mount, { query: { mountpoint }, body: cmd }));
  umount = async (mountpoint: string) => void (await this.call('DELETE', V1.mount, { query: { mountpoint } }));
  metrics = (kind: MetricsKind, query: MetricsQuery = {}) =>
    this.call('GET', METRICS_PATHS[kind], { query: { id: query.id, latest: query.latest === undefined ? undefined : String(query.latest) } });
  /** In-flight FUSE requests; [] when the daemon answers 204 (idle). */
  inflight = async () => ((await this.call('GET', V1.metricsInflight)) ?? []) as InflightEntry[];
  getConfig = (id?: string) => this.call('GET', V1.config, { query: { id } }) as Promise<Record<string, string>>;
  putConfig = async (id: string, values: Record<string, string>) => void (await this.call('PUT', V1.config, { query: { id }, body: values }));
  addBlob = async (entry: BlobCacheEntry) => void (await this.call('PUT', V2.blobs, { body: entry }));
  blobObjects = (domain_id: string, blob_id?: string) => this.call('GET', V2.blobs, { query: { domain_id, blob_id } }) as Promise<BlobObject[]>;
  deleteBlobs = async (query: { domain_id?: string; blob_id?: string }) => void (await this.call('DELETE', V2.blobs, { query }));
  machine = () => this.call('GET', EXT.machine) as Promise<MachineView>;
  journal = (since = 0, limit?: number) => this.call('GET', EXT.journal, { query: { since, limit } }) as Promise<JournalPage>;
  prometheus = () => this.text(EXT.prometheus);

  /** Closes kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }
}
