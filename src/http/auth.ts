// Registry authentication as the distribution spec and upstream's registry backend
// speak it: requests go out anonymously (or with a configured `registry_token`) until
// the registry answers 401; its `WWW-Authenticate` challenge then says how to
// authenticate: Basic with the configured `auth`, or Bearer with a token fetched from
// the challenge's realm (with `auth` as Basic credentials when given). The resulting
// Authorization value is cached and reused, refreshed shortly before the token expires
// and again whenever the registry answers 401. Secrets live only in this object: they
// are never part of an error message, a log line or a metric.
import { StorageError } from '../errors.js';
import { pickChallenge, type Challenge } from './challenge.js';
import { showUrl } from './show-url.js';

/** Upstream's client id in token requests. */
const CLIENT_ID = 'nydus-registry-client';
/** Docker's token spec default lifetime when the issuer states none. */
const DEFAULT_TOKEN_SECONDS = 60;
/** Refresh a bearer token this long before it expires. */
const REFRESH_MARGIN_MS = 10_000;

/** `user` and `password` decoded from a base64 `user:password` (`auth`, `IMAGE_PULL_AUTH`). */
export interface Credentials {
  username: string;
  password: string;
}

/** Decodes base64 `user:password`; throws ERR_STORAGE_AUTH (without echoing it) when malformed. */
export function decodeAuth(auth: string): Credentials {
  const text = auth.trim();
  const plain = /^[A-Za-z0-9+/=_-]+$/.test(text) ? Buffer.from(text, 'base64').toString('utf8') : '';
  const colon = plain.indexOf(':');
  if (colon <= 0) throw new StorageError('ERR_STORAGE_AUTH', 'failed to decode registry auth: expected base64 of "user:password"');
  return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
}

/** base64 `user:password`. */
export function encodeAuth(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

/** What a token request returns: status and parsed JSON body (undefined if not JSON). */
export interface TokenResponse {
  status: number;
  body: unknown;
}

/** Performs a GET of a token realm URL with the given headers. */
export type TokenRequester = (url: URL, headers: Record<string, string>, signal?: AbortSignal) => Promise<TokenResponse>;

export interface AuthenticatorOptions {
  /** base64 `user:password`, optional. */
  auth?: string;
  /** A bearer token used as is until the registry refuses it. */
  registryToken?: string;
  /** Repository the client works on; the scope asked for when a challenge names none. */
  repo: string;
  requestToken: TokenRequester;
  /** Clock (ms), for tests. */
  now?: () => number;
}

/** Counters for tests and diagnostics (no secrets). */
export interface AuthStats {
  challenges: number;
  tokenFetches: number;
  tokenRefreshes: number;
}

interface BearerState {
  header: string;
  expiresAt: number;
  challenge: Challenge;
}

/** The Authorization state of one registry client. */
export class Authenticator {
  readonly stats: AuthStats = { challenges: 0, tokenFetches: 0, tokenRefreshes: 0 };
  #basic: string | undefined;
  #static: string | undefined;
  #bearer: BearerState | undefined;
  #useBasic = false;
  #inflight = new Map<string, Promise<BearerState>>();
  readonly #repo: string;
  readonly #request: TokenRequester;
  readonly #now: () => number;

  constructor(opts: AuthenticatorOptions) {
    this.#repo = opts.repo;
    this.#request = opts.requestToken;
    this.#now = opts.now ?? Date.now;
    this.setAuth(opts.auth);
    const token = opts.registryToken?.trim();
    if (token) this.#static = `Bearer ${token}`;
  }

  /** Replaces the Basic credentials (config hot reload, IMAGE_PULL_AUTH). Cached tokens are dropped. */
  setAuth(auth: string | undefined): void {
    const trimmed = auth?.trim();
    if (trimmed) decodeAuth(trimmed);
    this.#basic = trimmed ? `Basic ${trimmed}` : undefined;
    this.#bearer = undefined;
    this.#useBasic = false;
  }

  /** Whether Basic credentials are configured. */
  get hasCredentials(): boolean {
    return this.#basic !== undefined;
  }

  /**
   * The Authorization value for the next request, or undefined for anonymous. A bearer
   * token about to expire is refreshed first (from the challenge that produced it).
   */
  async current(signal?: AbortSignal): Promise<string | undefined> {
    const b = this.#bearer;
    if (b !== undefined) {
      if (this.#now() + REFRESH_MARGIN_MS < b.expiresAt) return b.header;
      this.stats.tokenRefreshes++;
      try {
        return (await this.#fetchToken(b.challenge, signal)).header;
      } catch {
        // Let the request go out with the old token; a 401 brings a fresh challenge.
        return b.header;
      }
    }
    if (this.#useBasic) return this.#basic;
    return this.#static;
  }

  /**
   * Handles a 401 answered to a request sent with Authorization `sent`. Returns the value
   * to retry with, or throws ERR_STORAGE_AUTH when the challenge cannot be met.
   */
  async onUnauthorized(wwwAuthenticate: string | string[] | undefined, sent: string | undefined, what: string, signal?: AbortSignal): Promise<string> {
    this.stats.challenges++;
    const challenge = pickChallenge(wwwAuthenticate);
    if (challenge === undefined) {
      throw new StorageError('ERR_STORAGE_AUTH', `failed to authenticate to ${what}: unauthorized, and no usable WWW-Authenticate challenge`);
    }
    if (sent !== undefined && sent === this.#static) this.#static = undefined;
    if (challenge.scheme === 'basic') {
      if (this.#basic === undefined) {
        throw new StorageError('ERR_STORAGE_AUTH', `failed to authenticate to ${what}: the registry requires credentials (auth or IMAGE_PULL_AUTH)`);
      }
      if (sent === this.#basic) throw new StorageError('ERR_STORAGE_AUTH', `failed to authenticate to ${what}: credentials rejected`);
      this.#bearer = undefined;
      this.#useBasic = true;
      return this.#basic;
    }
    const fresh = this.#bearer;
    if (fresh !== undefined && fresh.header !== sent && this.#now() < fresh.expiresAt) return fresh.header; // refreshed meanwhile
    const state = await this.#fetchToken(challenge, signal);
    if (sent === state.header) {
      throw new StorageError('ERR_STORAGE_AUTH', `failed to authenticate to ${what}: a fresh token was refused (insufficient scope?)`);
    }
    return state.header;
  }

  /** One token fetch per distinct challenge at a time; concurrent 401s share it. */
  #fetchToken(challenge: Challenge, signal?: AbortSignal): Promise<BearerState> {
    const key = `${challenge.params.realm ?? ''}\n${challenge.params.service ?? ''}\n${challenge.params.scope ?? ''}`;
    let p = this.#inflight.get(key);
    if (p === undefined) {
      p = this.#doFetch(challenge, signal).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #doFetch(challenge: Challenge, signal?: AbortSignal): Promise<BearerState> {
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new StorageError('ERR_STORAGE_AUTH', `failed to fetch registry token: challenge realm ${JSON.stringify(realm ?? '')} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new StorageError('ERR_STORAGE_AUTH', `failed to fetch registry token: realm scheme ${url.protocol} is not http(s)`);
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', challenge.params.scope || `repository:${this.#repo}:pull`);
    url.searchParams.set('client_id', CLIENT_ID);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#basic !== undefined) {
      headers.authorization = this.#basic;
      url.searchParams.set('account', this.#account());
    }
    this.stats.tokenFetches++;
    const res = await this.#request(url, headers, signal);
    if (res.status !== 200) {
      const why = res.status === 401 || res.status === 403 ? 'credentials rejected' : 'unexpected answer';
      throw new StorageError('ERR_STORAGE_AUTH', `failed to fetch registry token from ${showUrl(url)}: ${why} (HTTP status ${res.status})`, {
        detail: { retryable: res.status >= 500, status: res.status },
      });
    }
    const body = (res.body ?? {}) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof body.token === 'string' && body.token !== '' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
      throw new StorageError('ERR_STORAGE_AUTH', `failed to fetch registry token from ${showUrl(url)}: no token in the answer`);
    }
    const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    const state = { header: `Bearer ${token}`, expiresAt: this.#now() + seconds * 1000, challenge };
    this.#bearer = state;
    this.#useBasic = false;
    return state;
  }

  #account(): string {
    return this.#basic === undefined ? '' : decodeAuth(this.#basic.slice('Basic '.length)).username;
  }
}
