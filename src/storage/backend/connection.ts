// One network backend's way to the server, in upstream's order (connection.rs `call`):
// the forward proxy while it is healthy (falling back to the next route on errors and
// 5xx answers when `fallback` is set), then each healthy mirror in turn (for requests to
// the registry itself), then the origin. One keep-alive agent serves every origin, so
// connections are reused across reads. Timeouts are idle timeouts: `timeout` bounds the
// wait for response headers and every gap between body bytes, so a stalled server fails
// the request while a slow but moving one does not.
import type { Dispatcher } from 'undici';
import type { HttpCommonConfig } from '../../config/types.js';
import { StorageError } from '../../errors.js';
import { createAgent, describeNetworkError, discard, showUrl } from '../../http/client.js';
import { healthChannel, publish } from './events.js';
import { ForwardProxy, Mirror, type EventSource } from './mirrors.js';

/** Which route answered a request. */
export type Route = 'proxy' | 'mirror' | 'origin';

/** A request as the backends issue it. */
export interface RouteRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';
  url: URL;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** May be served by a mirror (requests to the registry host; not token or redirected URLs). */
  mirrored: boolean;
}

/** A response and the route that produced it. */
export interface RoutedResponse {
  res: Dispatcher.ResponseData;
  route: Route;
}

/** Counters for tests and diagnostics. */
export interface ConnectionStats {
  requests: number;
  viaProxy: number;
  viaMirror: number;
  viaOrigin: number;
  proxyFallbacks: number;
  mirrorFallbacks: number;
}

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host !== '';
  } catch {
    return false;
  }
}

/** The HTTP side of a network backend. */
export class HttpConnection {
  readonly stats: ConnectionStats = { requests: 0, viaProxy: 0, viaMirror: 0, viaOrigin: 0, proxyFallbacks: 0, mirrorFallbacks: 0 };
  readonly agent: Dispatcher;
  readonly mirrors: Mirror[];
  readonly proxy: ForwardProxy | undefined;
  readonly #pingAgent: Dispatcher;
  readonly #timeoutMs: number;
  readonly #source: EventSource;
  #closed = false;

  /** `opts.ca`: the contents of `config.ca_cert_files`, read by the caller (readCaCerts). */
  constructor(config: HttpCommonConfig, source: EventSource, opts: { socketPath?: string; ca?: string[] } = {}) {
    if (config.proxy.url !== '' && config.mirrors.length > 0) {
      throw new StorageError('ERR_STORAGE_BACKEND', `failed to create ${source.backend} backend: proxy and mirrors cannot be configured together`);
    }
    for (const url of [...config.mirrors.map((m) => m.host), ...config.mirrors.map((m) => m.ping_url), config.proxy.url, config.proxy.ping_url]) {
      if (url !== '' && !isHttpUrl(url)) {
        throw new StorageError('ERR_STORAGE_BACKEND', `failed to create ${source.backend} backend: ${JSON.stringify(url)} is not an http(s) URL`);
      }
    }
    this.#timeoutMs = config.timeout * 1000;
    this.#source = source;
    const connectTimeoutMs = config.connect_timeout * 1000;
    this.agent = createAgent({ connectTimeoutMs, skipVerify: config.skip_verify, socketPath: opts.socketPath, ca: opts.ca });
    const pingAgent = createAgent({ connectTimeoutMs, skipVerify: config.skip_verify, ca: opts.ca });
    this.mirrors = config.mirrors.map((m) => new Mirror(m, pingAgent, this.#timeoutMs || 5000, source));
    this.proxy =
      config.proxy.url === ''
        ? undefined
        : new ForwardProxy(config.proxy, { connectTimeoutMs, skipVerify: config.skip_verify, ca: opts.ca, pingDispatcher: pingAgent, timeoutMs: connectTimeoutMs || 5000 }, source);
    this.#pingAgent = pingAgent;
  }

  /** Sends `req` along the first route that answers (see the module comment). */
  async request(req: RouteRequest): Promise<RoutedResponse> {
    if (this.#closed) throw new StorageError('ERR_STORAGE_BACKEND', `failed to request ${showUrl(req.url)}: ${this.#source.backend} backend is closed`);
    this.stats.requests++;
    const proxy = this.proxy;
    if (proxy?.healthy === true) {
      try {
        const res = await this.#send(proxy.dispatcher, proxy.rewrite(req.url), req.headers, req);
        if (!proxy.config.fallback || res.statusCode < 500) {
          this.stats.viaProxy++;
          return { res, route: 'proxy' };
        }
        await discard(res.body);
        this.#fallback('proxy', `HTTP status ${res.statusCode}`);
      } catch (err) {
        if (!proxy.config.fallback || req.signal?.aborted) throw err;
        this.#fallback('proxy', describeNetworkError(err));
      }
    }
    if (req.mirrored) {
      for (const mirror of this.mirrors) {
        if (!mirror.healthy) continue;
        try {
          const res = await this.#send(this.agent, mirror.rewrite(req.url), { ...req.headers, ...mirror.headers }, req);
          if (res.statusCode < 500) {
            mirror.recordSuccess();
            this.stats.viaMirror++;
            return { res, route: 'mirror' };
          }
          await discard(res.body);
          mirror.recordFailure(`HTTP status ${res.statusCode}`);
        } catch (err) {
          if (req.signal?.aborted) throw err;
          mirror.recordFailure(describeNetworkError(err));
        }
      }
      if (this.mirrors.length > 0) this.#fallback('mirror', 'no mirror answered');
    }
    const res = await this.#send(this.agent, req.url, req.headers, req);
    this.stats.viaOrigin++;
    return { res, route: 'origin' };
  }

  /** Stops health checks and closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of this.mirrors) m.close();
    await this.proxy?.close();
    await Promise.all([this.agent.close(), this.#pingAgent.close()].map((p) => p.catch(() => {})));
  }

  #send(dispatcher: Dispatcher, url: URL, headers: Record<string, string>, req: RouteRequest): Promise<Dispatcher.ResponseData> {
    return dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: req.method,
      headers,
      signal: req.signal,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
  }

  #fallback(from: 'proxy' | 'mirror', why: string): void {
    if (from === 'proxy') this.stats.proxyFallbacks++;
    else this.stats.mirrorFallbacks++;
    publish(healthChannel, { level: 'warn', ...this.#source, message: `${from} failed (${why}), falling back to the origin` });
  }
}
