// Registry mirrors and the forward proxy (such as a Dragonfly peer) of the network
// backends, with upstream's health rules (storage/src/backend/connection.rs): a mirror
// that fails `failure_limit` times is skipped, and while skipped it is pinged every
// `health_check_interval` seconds (`ping_url`, else `<host>/v2`) until it answers below
// 500; a proxy with a `ping_url` is pinged every `check_interval` seconds and used only
// while the ping answers 2xx/3xx. Health timers are unref'd and stop on close().
import { ProxyAgent, type Dispatcher } from 'undici';
import type { MirrorConfig, ProxyConfig } from '../../config/types.js';
import { describeNetworkError, discard, showUrl, trustedCas } from '../../http/client.js';
import { healthChannel, publish } from './events.js';

/** Who the health events are about. */
export interface EventSource {
  backend: string;
  id: string;
}

/** One request the health checks make: GET `url`, resolve to the status. */
async function ping(dispatcher: Dispatcher, url: URL, timeoutMs: number): Promise<number> {
  const res = await dispatcher.request({
    origin: url.origin,
    path: url.pathname + url.search,
    method: 'GET',
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(Math.max(timeoutMs, 1)),
  });
  await discard(res.body);
  return res.statusCode;
}

/** A registry mirror and its health. */
export class Mirror {
  healthy = true;
  failures = 0;
  readonly #origin: URL;
  readonly #pingUrl: URL;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    readonly config: MirrorConfig,
    private readonly dispatcher: Dispatcher,
    private readonly timeoutMs: number,
    private readonly source: EventSource,
  ) {
    this.#origin = new URL(config.host);
    this.#pingUrl = new URL(config.ping_url || `${config.host.replace(/\/+$/, '')}/v2`);
  }

  /** `url` (on the registry) moved to this mirror: same path and query, the mirror's scheme, host and port. */
  rewrite(url: URL): URL {
    const out = new URL(url.href);
    out.protocol = this.#origin.protocol;
    out.host = this.#origin.host;
    return out;
  }

  /** The mirror's own headers (`headers` in its config). */
  get headers(): Record<string, string> {
    return this.config.headers;
  }

  /** Counts a failed request; at `failure_limit` the mirror is skipped until a ping succeeds. */
  recordFailure(why: string): void {
    this.failures++;
    if (!this.healthy || this.failures < this.config.failure_limit) return;
    this.healthy = false;
    publish(healthChannel, {
      level: 'warn',
      ...this.source,
      message: `mirror ${this.#origin.origin} disabled after ${this.failures} failures (last: ${why})`,
    });
    this.#schedule();
  }

  recordSuccess(): void {
    this.failures = 0;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#check(), Math.max(this.config.health_check_interval, 0) * 1000 || 1);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    try {
      const status = await ping(this.dispatcher, this.#pingUrl, this.timeoutMs);
      if (status < 500) {
        this.healthy = true;
        this.failures = 0;
        publish(healthChannel, { level: 'info', ...this.source, message: `mirror ${this.#origin.origin} recovered` });
        return;
      }
    } catch {
      // Still down: check again later.
    }
    this.#schedule();
  }
}

/** The forward proxy of a backend (`proxy.url`) and its health. */
export class ForwardProxy {
  healthy = true;
  readonly dispatcher: ProxyAgent;
  readonly #pingUrl: URL | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    readonly config: ProxyConfig,
    opts: { connectTimeoutMs: number; skipVerify: boolean; ca?: string[]; pingDispatcher: Dispatcher; timeoutMs: number },
    private readonly source: EventSource,
  ) {
    const tls = { rejectUnauthorized: !opts.skipVerify, ...trustedCas(opts.ca), ...(opts.connectTimeoutMs > 0 ? { timeout: opts.connectTimeoutMs } : {}) };
    // Plain-http targets are forwarded in absolute form (what Dragonfly's dfdaemon
    // proxies); https targets go through a CONNECT tunnel.
    this.dispatcher = new ProxyAgent({ uri: config.url, proxyTunnel: false, requestTls: tls, proxyTls: tls });
    this.#pingUrl = config.ping_url ? new URL(config.ping_url) : undefined;
    if (this.#pingUrl !== undefined) void this.#check(opts.pingDispatcher, opts.timeoutMs);
  }

  /** With `use_http`, https URLs are sent to the proxy as http. */
  rewrite(url: URL): URL {
    if (!this.config.use_http || url.protocol !== 'https:') return url;
    const out = new URL(url.href);
    out.protocol = 'http:';
    return out;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.dispatcher.close().catch(() => {});
  }

  async #check(dispatcher: Dispatcher, timeoutMs: number): Promise<void> {
    let ok = false;
    let why = '';
    try {
      const status = await ping(dispatcher, this.#pingUrl!, timeoutMs);
      ok = status >= 200 && status < 400;
      why = `HTTP status ${status}`;
    } catch (err) {
      why = describeNetworkError(err);
    }
    if (ok !== this.healthy) {
      publish(healthChannel, {
        level: ok ? 'info' : 'warn',
        ...this.source,
        message: ok ? `proxy ${showUrl(this.config.url)} recovered` : `proxy ${showUrl(this.config.url)} unhealthy: ${why}`,
      });
    }
    this.healthy = ok;
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#check(dispatcher, timeoutMs), Math.max(this.config.check_interval, 0) * 1000 || 1);
    this.#timer.unref();
  }
}
