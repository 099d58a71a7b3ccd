// The `http-proxy` backend (upstream storage/src/backend/http_proxy.rs): blobs served by
// a plain HTTP server at `<addr><path>/<blob id>`, where `addr` is an http(s) URL or the
// absolute path of a unix socket. HEAD gives a blob's size (Content-Length), GET with a
// Range header its bytes. Retries, timeouts, proxy and mirrors work as for the registry
// backend; there is no authentication.
import { performance } from 'node:perf_hooks';
import type { HttpProxyConfig } from '../../config/types.js';
import { StorageError } from '../../errors.js';
import { discard, header, statusError } from '../../registry/http.js';
import { BackendMetrics, type BlobBackend } from './backend.js';
import { HttpConnection } from './connection.js';
import { copyRangeBody, withRetries, type RetryContext } from './http-read.js';

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

  constructor(config: HttpProxyConfig, options: { id?: string } = {}) {
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
    this.connection = new HttpConnection(config, { backend: 'http-proxy', id: this.#id }, this.#remote ? {} : { socketPath: config.addr });
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
      await discard(res.body);
      if (res.statusCode === 404) throw this.#notFound(blobId);
      if (res.statusCode !== 200) throw statusError(`get the size of blob ${blobId}`, res.statusCode);
      const size = Number(header(res.headers, 'content-length'));
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new StorageError('ERR_STORAGE_BACKEND', `failed to get the size of blob ${blobId}: no valid Content-Length`);
      }
      return size;
    });
  }

  async read(blobId: string, buf: Uint8Array, offset: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const start = performance.now();
    try {
      const url = this.blobUrl(blobId);
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new StorageError('ERR_STORAGE_SHORT_READ', `failed to read blob ${blobId}: invalid offset ${offset}`);
      }
      if (buf.length > 0) {
        const headers = { range: `bytes=${offset}-${offset + buf.length - 1}` };
        await withRetries(this.#ctx(blobId, `read blob ${blobId}`, signal), async () => {
          const { res } = await this.connection.request({ method: 'GET', url, headers, signal, mirrored: this.#remote });
          if (res.statusCode === 200 || res.statusCode === 206) return copyRangeBody(res, buf, offset, `blob ${blobId}`);
          await discard(res.body);
          if (res.statusCode === 404) throw this.#notFound(blobId);
          if (res.statusCode === 416) {
            throw new StorageError('ERR_STORAGE_SHORT_READ', `failed to read blob ${blobId}: range [${offset}, ${offset + buf.length}) is beyond its end`);
          }
          throw statusError(`read blob ${blobId}`, res.statusCode);
        });
      }
      this.metrics.record(buf.length, performance.now() - start, true);
    } catch (err) {
      this.metrics.record(buf.length, performance.now() - start, false);
      throw err;
    }
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
