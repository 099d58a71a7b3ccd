// The `http-proxy` backend (upstream storage/src/backend/http_proxy.rs): blobs served by
// a plain HTTP server at `<addr><path>/<blob id>`, where `addr` is an http(s) URL or the
// absolute path of a unix socket. HEAD gives a blob's size (Content-Length), GET with a
// Range header its bytes. Retries, timeouts, proxy and mirrors work as for the registry
// backend; there is no authentication.
import type { HttpProxyConfig } from '../../config/types.js';
import { StorageError } from '../../errors.js';
import { BackendMetrics, type BlobBackend } from './backend.js';
import { HttpConnection } from './connection.js';
import { checkReadOffset, copyRangeBody, rangeReadError, sizeFromHead, withRetries, type RetryContext } from './http-read.js';

const SAFE_ID = /^[A-Za-z0-9._:-]+$/;

/** Reads blobs from an HTTP server (or one listening on a unix socket). */
export class HttpProxyBackend implements BlobBackend {
  readonly type = 'http-proxy';
  readonly metrics = new BackendMetrics('http-proxy');
  readonly connection: HttpConnection;
  readonly #base: string;
  readonly #config: HttpProxyConfig;
  readonly #id: string;
  readonly #remote: boolean;

  constructor(config: HttpProxyConfig, options: { id?: string; ca?: string[] } = {}) {
    this.#config = config;
    this.#id = options.id ?? '';
    this.#remote = /^https?:\/\//.test(config.addr);
    const path = config.path.replace(/^\/*/, '/').replace(/\/+$/, '');
    let origin: string;
    try {
      origin = this.#remote ? new URL(config.addr).href.replace(/\/+$/, '') : 'http://localhost';
    } catch {
      throw new StorageError('ERR_STORAGE_BACKEND', `failed to create http-proxy backend: invalid addr ${JSON.stringify(config.addr)}`);
    }
    this.#base = origin + (path === '/' ? '' : path);
    this.connection = new HttpConnection(config, { backend: 'http-proxy', id: this.#id }, this.#remote ? { ca: options.ca } : { socketPath: config.addr });
  }

  /** The URL of a blob. */
  blobUrl(blobId: string): URL {
    if (!SAFE_ID.test(blobId) || blobId === '.' || blobId === '..') {
      throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to find blob: invalid blob id ${JSON.stringify(blobId)}`);
    }
    return new URL(`${this.#base}/${blobId}`);
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const url = this.blobUrl(blobId);
    return withRetries(this.#ctx(blobId, `get the size of blob ${blobId}`, signal), async () => {
      const { res } = await this.connection.request({ method: 'HEAD', url, headers: {}, signal, mirrored: this.#remote });
      return sizeFromHead(res, blobId, () => this.#notFound(blobId));
    });
  }

  async read(blobId: string, buf: Uint8Array, offset: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await this.metrics.timed(buf.length, async () => {
      const url = this.blobUrl(blobId);
      checkReadOffset(blobId, offset);
      if (buf.length === 0) return;
      const headers = { range: `bytes=${offset}-${offset + buf.length - 1}` };
      const what = `blob ${blobId}`;
      await withRetries(this.#ctx(blobId, `read ${what}`, signal), async () => {
        const { res } = await this.connection.request({ method: 'GET', url, headers, signal, mirrored: this.#remote });
        if (res.statusCode === 200 || res.statusCode === 206) return copyRangeBody(res, buf, offset, what);
        throw await rangeReadError(res, what, offset, buf.length, () => this.#notFound(blobId));
      });
    });
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  #notFound(blobId: string): StorageError {
    return new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to find blob ${blobId} at ${this.#remote ? this.#base : `unix:${this.#config.addr}`}`);
  }

  #ctx(blobId: string, what: string, signal?: AbortSignal): RetryContext {
    return { backend: 'http-proxy', id: this.#id, blobId, retryLimit: this.#config.retry_limit, signal, what };
  }
}
