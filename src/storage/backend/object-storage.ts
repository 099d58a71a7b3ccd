// What the object-storage backends (`s3`, `oss`; upstream storage/src/backend/
// object_storage.rs) share: a blob is the object `<object_prefix><blob id>` of one bucket,
// read with signed range GETs and sized with a signed HEAD over the same HttpConnection,
// retry loop and range copy as the registry backend. Subclasses say where an object lives
// and how a request is signed. Credentials are an access key pair, or none for anonymous
// requests; `setAuth` replaces them for the next request (PUT /api/v1/config). Messages
// name the bucket and the object, never a key: S3 error bodies are read only for their
// <Code>, since some echo the access key id and the string that was signed.
import type { Dispatcher } from 'undici';
import type { OssConfig } from '../../config/types.js';
import { StorageError } from '../../errors.js';
import { abandon, discard, header, readBody, statusError } from '../../http/client.js';
import { BackendMetrics, type BlobBackend } from './backend.js';
import { HttpConnection } from './connection.js';
import { checkReadOffset, copyRangeBody, withRetries, type RetryContext } from './http-read.js';

/** An access key pair. */
export interface AccessKeys {
  id: string;
  secret: string;
}

/** A request before signing: method, URL and the headers to send (lower-case names). */
export interface ObjectRequest {
  method: 'GET' | 'HEAD' | 'PUT';
  url: URL;
  headers: Record<string, string>;
}

// Blob ids become object keys; keep them to characters that need no escaping anywhere.
const SAFE_ID = /^[A-Za-z0-9._:-]+$/;
const ERROR_BODY_LIMIT = 16 * 1024;
const ERROR_CODE = /<Code>([A-Za-z0-9.]{1,64})<\/Code>/;

/** Percent-encodes an object key as S3 and OSS expect in a path: RFC 3986 unreserved characters and `/` stay. */
export function encodeKey(key: string): string {
  return key
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/**
 * Decodes `PUT /api/v1/config` `registry_auth` for an object store: base64 of
 * `access_key_id:access_key_secret`; empty means anonymous.
 */
export function decodeAccessKeys(auth: string | undefined): AccessKeys | undefined {
  const text = auth?.trim() ?? '';
  if (text === '') return undefined;
  const plain = /^[A-Za-z0-9+/=_-]+$/.test(text) ? Buffer.from(text, 'base64').toString('utf8') : '';
  const colon = plain.indexOf(':');
  // Same rule as registry_auth's check in PUT /api/v1/config, so a value it stored always applies.
  if (colon <= 0) {
    throw new StorageError('ERR_STORAGE_AUTH', 'failed to decode object storage keys: expected base64 of "access_key_id:access_key_secret"');
  }
  return { id: plain.slice(0, colon), secret: plain.slice(colon + 1) };
}

/** Reads blobs stored as objects of one bucket. */
export abstract class ObjectStorageBackend implements BlobBackend {
  abstract readonly type: 's3' | 'oss';
  readonly metrics: BackendMetrics;
  readonly connection: HttpConnection;
  protected readonly config: OssConfig;
  readonly #id: string;
  #keys: AccessKeys | undefined;
  /** Object key and URL per blob id, built once (an image has few blobs). */
  readonly #objects = new Map<string, { key: string; url: URL }>();

  /** `options.ca`: the contents of `config.ca_cert_files` (factory.ts reads them). */
  constructor(type: 's3' | 'oss', config: OssConfig, options: { id?: string; ca?: string[] } = {}) {
    this.config = config;
    this.#id = options.id ?? '';
    this.metrics = new BackendMetrics(type);
    this.#keys = config.access_key_id === '' ? undefined : { id: config.access_key_id, secret: config.access_key_secret };
    this.connection = new HttpConnection(config, { backend: type, id: this.#id }, { ca: options.ca });
  }

  /** The URL of the object named `key` (already prefixed). */
  abstract objectUrl(key: string): URL;

  /** `headers` plus what authenticates `req` with `keys`. */
  protected abstract sign(req: ObjectRequest, keys: AccessKeys): Promise<Record<string, string>>;

  /** Extra headers of an upload request (before signing). */
  protected uploadHeaders(): Record<string, string> {
    return {};
  }

  /** Called when the keys change, so a signer can drop what it derived from the old ones. */
  protected keysChanged(): void {}

  /** The object key of a blob: `object_prefix + blob id`, as upstream. */
  objectKey(blobId: string): string {
    if (!SAFE_ID.test(blobId) || blobId === '.' || blobId === '..') {
      throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to find blob: invalid blob id ${JSON.stringify(blobId)}`);
    }
    return this.config.object_prefix + blobId;
  }

  /** Replaces the access keys (base64 `access_key_id:access_key_secret`, empty for anonymous) from the next request on. */
  setAuth(auth: string | undefined): void {
    this.#keys = decodeAccessKeys(auth);
    this.keysChanged();
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const { key, url } = this.#object(blobId);
    return withRetries(this.#ctx(blobId, `get the size of ${this.#describe(key)}`, signal), async () => {
      const res = await this.#send({ method: 'HEAD', url, headers: {} }, signal);
      if (res.statusCode !== 200) throw await this.#failure(res, key, 'get the size of');
      await discard(res.body);
      const size = Number(header(res.headers, 'content-length'));
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new StorageError('ERR_STORAGE_BACKEND', `failed to get the size of ${this.#describe(key)}: no valid Content-Length`);
      }
      return size;
    });
  }

  async read(blobId: string, buf: Uint8Array, offset: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await this.metrics.timed(buf.length, async () => {
      const { key, url } = this.#object(blobId);
      checkReadOffset(blobId, offset);
      if (buf.length === 0) return;
      const range = `bytes=${offset}-${offset + buf.length - 1}`;
      const what = this.#describe(key);
      await withRetries(this.#ctx(blobId, `read ${what}`, signal), async () => {
        const res = await this.#send({ method: 'GET', url, headers: { range } }, signal);
        if (res.statusCode === 200 || res.statusCode === 206) return copyRangeBody(res, buf, offset, what);
        if (res.statusCode === 416) {
          await discard(res.body);
          throw new StorageError('ERR_STORAGE_SHORT_READ', `failed to read ${what}: range [${offset}, ${offset + buf.length}) is beyond its end`);
        }
        throw await this.#failure(res, key, 'read');
      });
    });
  }

  /**
   * Stores `size` bytes from `body` as the blob's object (one PUT; the payload is not
   * part of the signature). Used by `nydus-image push`; a failure is retried only by the caller.
   */
  async upload(blobId: string, body: () => NodeJS.ReadableStream, size: number, signal?: AbortSignal): Promise<void> {
    const { key, url } = this.#object(blobId);
    await withRetries(this.#ctx(blobId, `upload ${this.#describe(key)}`, signal), async () => {
      const headers = await this.#signed({ method: 'PUT', url, headers: { 'content-length': String(size), ...this.uploadHeaders() } });
      const res = await this.connection.agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'PUT',
        headers,
        body: body() as unknown as Dispatcher.DispatchOptions['body'],
        signal,
        headersTimeout: this.config.timeout * 1000,
        bodyTimeout: this.config.timeout * 1000,
      });
      if (res.statusCode !== 200) throw await this.#failure(res, key, 'upload');
      await discard(res.body);
    });
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  /** Whether requests are signed (keys configured). */
  get authenticated(): boolean {
    return this.#keys !== undefined;
  }

  #object(blobId: string): { key: string; url: URL } {
    let o = this.#objects.get(blobId);
    if (o === undefined) {
      const key = this.objectKey(blobId);
      o = { key, url: this.objectUrl(key) };
      this.#objects.set(blobId, o);
    }
    return o;
  }

  async #signed(req: ObjectRequest): Promise<Record<string, string>> {
    const keys = this.#keys;
    const headers = { host: req.url.host, ...req.headers };
    return keys === undefined ? headers : this.sign({ ...req, headers }, keys);
  }

  async #send(req: ObjectRequest, signal: AbortSignal | undefined): Promise<Dispatcher.ResponseData> {
    const headers = await this.#signed(req);
    // Mirrors serve registry paths; a signed object request goes to the store (or the proxy).
    const { res } = await this.connection.request({ method: req.method, url: req.url, headers, signal, mirrored: false });
    return res;
  }

  /** The error an unexpected answer stands for (its body is consumed). */
  async #failure(res: Dispatcher.ResponseData, key: string, verb: string): Promise<StorageError> {
    const status = res.statusCode;
    const code = await errorCode(res);
    const what = `${verb} ${this.#describe(key)}`;
    const why = code === undefined ? `HTTP status ${status}` : `HTTP status ${status}, ${code}`;
    if (status === 401 || status === 403) {
      const hint =
        this.#keys === undefined
          ? ' (anonymous request: no access keys configured)'
          : ` (check access_key_id, access_key_secret${this.type === 's3' ? ' and region' : ''})`;
      return new StorageError('ERR_STORAGE_AUTH', `failed to ${what}: access denied: ${why}${hint}`, { detail: { status } });
    }
    if (status === 404) {
      const message =
        code === 'NoSuchBucket'
          ? `failed to ${what}: bucket ${this.config.bucket_name} does not exist`
          : `failed to ${what}: no such object (${why})`;
      return new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', message, { detail: { status } });
    }
    const err = statusError(what, status);
    return code === undefined ? err : new StorageError('ERR_STORAGE_BACKEND', `failed to ${what}: ${why}`, { detail: { ...err.detail } });
  }

  #describe(key: string): string {
    return `object ${key} in bucket ${this.config.bucket_name}`;
  }

  #ctx(blobId: string, what: string, signal?: AbortSignal): RetryContext {
    return { backend: this.type, id: this.#id, blobId, retryLimit: this.config.retry_limit, signal, what };
  }
}

/** The <Code> of an XML error body, if the answer has one (HEAD answers have none). */
async function errorCode(res: Dispatcher.ResponseData): Promise<string | undefined> {
  if (!/xml/i.test(header(res.headers, 'content-type') ?? '')) {
    await discard(res.body);
    return undefined;
  }
  try {
    return ERROR_CODE.exec((await readBody(res.body, ERROR_BODY_LIMIT, 'error body')).toString('utf8'))?.[1];
  } catch {
    abandon(res.body);
    return undefined;
  }
}
