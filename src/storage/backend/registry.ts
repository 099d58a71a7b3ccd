// The `registry` backend: blob bytes from an OCI distribution registry with HTTP range
// requests on `/v2/<repo>/blobs/sha256:<blob id>` (upstream storage/src/backend/
// registry.rs). It authenticates as the registry's challenge asks (anonymous, Basic,
// Bearer; see src/http/auth.ts), follows redirects to blob storage and keeps the
// redirected URL per blob until a request to it fails, goes through the proxy or mirrors
// when configured (connection.ts), retries transient failures with backoff up to
// `retry_limit`, and records every read in its BackendMetrics. The Authorization header
// is sent to the registry only, never to the blob storage a redirect points at.
import type { Dispatcher } from 'undici';
import type { RegistryConfig } from '../../config/types.js';
import { StorageError } from '../../errors.js';
import { Authenticator } from '../../http/auth.js';
import { discard, header, isTransient, readJson, showUrl } from '../../http/client.js';
import { BackendMetrics, type BlobBackend } from './backend.js';
import { HttpConnection } from './connection.js';
import { checkReadOffset, copyRangeBody, rangeReadError, sizeFromHead, withRetries, type RetryContext } from './http-read.js';

const BLOB_ID = /^[0-9a-f]{64}$/;
const REPO = /^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$/;
const REDIRECT = new Set([301, 302, 303, 307, 308]);
const TOKEN_BODY_LIMIT = 1024 * 1024;

/** Counters for tests and diagnostics, beyond the upstream metrics. */
export interface RegistryStats {
  redirects: number;
  redirectCacheHits: number;
  redirectFailures: number;
  schemeFallbacks: number;
}

/** Checks `host` and `repo` of a registry config; throws ERR_CONFIG-like StorageErrors. */
function originOf(scheme: string, host: string, repo: string): URL {
  let url: URL;
  try {
    url = new URL(`${scheme}//${host}`);
  } catch {
    throw new StorageError('ERR_STORAGE_BACKEND', `failed to create registry backend: invalid host ${JSON.stringify(host)}`);
  }
  if (url.host !== host.toLowerCase() || url.pathname !== '/' || url.username !== '' || url.search !== '') {
    throw new StorageError('ERR_STORAGE_BACKEND', `failed to create registry backend: host must be "name[:port]", got ${JSON.stringify(host)}`);
  }
  if (!REPO.test(repo)) throw new StorageError('ERR_STORAGE_BACKEND', `failed to create registry backend: invalid repo ${JSON.stringify(repo)}`);
  return url;
}

function isTlsMismatch(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || e?.code === 'EPROTO' || /wrong version number/i.test(e?.message ?? '');
}

/** Reads blobs from a registry repository. */
export class RegistryBackend implements BlobBackend {
  readonly type = 'registry';
  readonly metrics = new BackendMetrics('registry');
  readonly stats: RegistryStats = { redirects: 0, redirectCacheHits: 0, redirectFailures: 0, schemeFallbacks: 0 };
  readonly auth: Authenticator;
  readonly connection: HttpConnection;
  readonly #config: RegistryConfig;
  readonly #id: string;
  #scheme: 'https:' | 'http:';
  readonly #probeScheme: boolean;
  readonly #redirects = new Map<string, URL>();

  /** `options.ca`: the contents of `config.ca_cert_files` (readCaCerts); `options.now`: the clock token expiry is judged by. */
  constructor(config: RegistryConfig, options: { id?: string; ca?: string[]; now?: () => number } = {}) {
    this.#config = config;
    this.#id = options.id ?? '';
    this.#scheme = config.scheme === 'http' ? 'http:' : 'https:';
    this.#probeScheme = config.scheme === '';
    originOf(this.#scheme, config.host, config.repo);
    this.connection = new HttpConnection(config, { backend: 'registry', id: this.#id }, { ca: options.ca });
    this.auth = new Authenticator({
      auth: config.auth,
      registryToken: config.registry_token,
      repo: config.repo,
      now: options.now,
      requestToken: async (url, headers, signal) => {
        const { res } = await this.#send('GET', url, headers, signal, false);
        if (res.statusCode !== 200) {
          await discard(res.body);
          return { status: res.statusCode, body: undefined };
        }
        return { status: 200, body: await readJson(res.body, TOKEN_BODY_LIMIT, `token from ${showUrl(url)}`) };
      },
    });
  }

  /** `<scheme>://<host>/v2/<repo>/blobs/sha256:<blobId>`. */
  blobUrl(blobId: string): URL {
    return new URL(`${this.#scheme}//${this.#config.host}/v2/${this.#config.repo}/blobs/sha256:${blobId}`);
  }

  /** Replaces the registry credentials (base64 `user:password`) from the next request on. */
  setAuth(auth: string | undefined): void {
    this.auth.setAuth(auth);
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    this.#checkId(blobId);
    return withRetries(this.#ctx(blobId, `get the size of blob ${blobId}`, signal), async () => {
      let res = await this.#authed('HEAD', this.blobUrl(blobId), {}, signal);
      if (REDIRECT.has(res.statusCode)) {
        const target = this.#redirectTarget(res, blobId);
        await discard(res.body);
        res = (await this.#send('HEAD', target, {}, signal, false)).res;
      }
      return sizeFromHead(res, blobId, () => this.#notFound(blobId));
    });
  }

  async read(blobId: string, buf: Uint8Array, offset: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await this.metrics.timed(buf.length, async () => {
      this.#checkId(blobId);
      checkReadOffset(blobId, offset);
      if (buf.length > 0) await withRetries(this.#ctx(blobId, `read blob ${blobId}`, signal), () => this.#readOnce(blobId, buf, offset, signal));
    });
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  /** One attempt: the cached redirect first, then the registry (following a redirect). */
  async #readOnce(blobId: string, buf: Uint8Array, offset: number, signal?: AbortSignal): Promise<void> {
    const headers = { range: `bytes=${offset}-${offset + buf.length - 1}` };
    const what = `blob ${blobId}`;
    const cached = this.#redirects.get(blobId);
    if (cached !== undefined) {
      this.stats.redirectCacheHits++;
      try {
        const { res } = await this.#send('GET', cached, headers, signal, false);
        if (res.statusCode === 200 || res.statusCode === 206) return await copyRangeBody(res, buf, offset, what);
        await discard(res.body);
      } catch (err) {
        if (signal?.aborted || (!isTransient(err) && err instanceof StorageError)) throw err;
      }
      // Expired, refused or unreachable: forget it and ask the registry again.
      if (this.#redirects.get(blobId) === cached) this.#redirects.delete(blobId);
      this.stats.redirectFailures++;
    }
    const res = await this.#authed('GET', this.blobUrl(blobId), headers, signal);
    if (res.statusCode === 200 || res.statusCode === 206) return copyRangeBody(res, buf, offset, what);
    if (REDIRECT.has(res.statusCode)) {
      const target = this.#redirectTarget(res, blobId);
      await discard(res.body);
      this.stats.redirects++;
      this.#redirects.set(blobId, target);
      const { res: moved } = await this.#send('GET', target, headers, signal, false);
      if (moved.statusCode === 200 || moved.statusCode === 206) return copyRangeBody(moved, buf, offset, what);
      await discard(moved.body);
      this.#redirects.delete(blobId);
      // A fresh redirect that fails is worth another round through the registry.
      throw new StorageError('ERR_STORAGE_BACKEND', `failed to read ${what} from blob storage ${showUrl(target)}: HTTP status ${moved.statusCode}`, {
        detail: { retryable: true, status: moved.statusCode },
      });
    }
    throw await rangeReadError(res, what, offset, buf.length, () => this.#notFound(blobId));
  }

  /** A registry request with authentication: one retry after a 401 with what the challenge asks. */
  async #authed(method: 'GET' | 'HEAD', url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const sent = await this.auth.current(signal);
    let { res } = await this.#send(method, url, sent === undefined ? headers : { ...headers, authorization: sent }, signal, true);
    if (res.statusCode !== 401) return res;
    const challenge = res.headers['www-authenticate'];
    await discard(res.body);
    const next = await this.auth.onUnauthorized(challenge, sent, `registry ${this.#config.host}`, signal);
    ({ res } = await this.#send(method, url, { ...headers, authorization: next }, signal, true));
    if (res.statusCode === 401) {
      await discard(res.body);
      throw new StorageError('ERR_STORAGE_AUTH', `failed to authenticate to registry ${this.#config.host}: access to ${this.#config.repo} refused`);
    }
    return res;
  }

  /** Sends one request; with `scheme: ""` an https attempt at a plain-http server switches to http for good. */
  async #send(method: 'GET' | 'HEAD', url: URL, headers: Record<string, string>, signal: AbortSignal | undefined, mirrored: boolean) {
    try {
      return await this.connection.request({ method, url, headers, signal, mirrored });
    } catch (err) {
      if (!this.#probeScheme || this.#scheme !== 'https:' || !mirrored || !isTlsMismatch(err)) throw err;
      this.#scheme = 'http:';
      this.stats.schemeFallbacks++;
      const plain = new URL(url.href);
      plain.protocol = 'http:';
      return this.connection.request({ method, url: plain, headers, signal, mirrored });
    }
  }

  /** The Location of a redirect, with `blob_url_scheme` / `blob_redirected_host` applied. */
  #redirectTarget(res: Dispatcher.ResponseData, blobId: string): URL {
    const location = header(res.headers, 'location');
    let url: URL;
    try {
      url = new URL(location ?? '', this.blobUrl(blobId));
    } catch {
      throw new StorageError('ERR_STORAGE_BACKEND', `failed to follow the redirect for blob ${blobId}: invalid Location`);
    }
    if (location === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new StorageError('ERR_STORAGE_BACKEND', `failed to follow the redirect for blob ${blobId}: missing or non-http Location`);
    }
    if (this.#config.blob_url_scheme !== '') url.protocol = `${this.#config.blob_url_scheme}:`;
    if (this.#config.blob_redirected_host !== '') url.host = this.#config.blob_redirected_host;
    return url;
  }

  #checkId(blobId: string): void {
    if (!BLOB_ID.test(blobId)) {
      throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to find blob ${JSON.stringify(blobId)}: a registry blob id is 64 hex digits`);
    }
  }

  #notFound(blobId: string): StorageError {
    return new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to find blob ${blobId} in ${this.#config.host}/${this.#config.repo}`);
  }

  #ctx(blobId: string, what: string, signal?: AbortSignal): RetryContext {
    return { backend: 'registry', id: this.#id, blobId, retryLimit: this.#config.retry_limit, signal, what };
  }
}
