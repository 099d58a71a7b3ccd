// A client of the OCI distribution API for what `nydus-image push`, `convert` and mounting
// an image by reference need: blob existence checks and monolithic uploads, manifest
// get/put, blob downloads to a file or (small ones) to memory with digest verification,
// and ranged reads of a blob (following redirects to blob storage without the
// registry's Authorization). Authentication is the same
// challenge-driven flow as the registry backend (auth.ts). Transient failures are
// retried with backoff up to `retryLimit` times.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { StorageError } from '../errors.js';
import { Authenticator } from '../http/auth.js';
import { retry } from '../util/retry.js';
import { createAgent, describeNetworkError, discard, header, isTransient, readBody, readJson, showUrl, statusError } from '../http/client.js';
import { copyRangeBody } from '../storage/backend/http-read.js';
import { isLoopbackHost, type ImageReference } from './reference.js';

/** Manifest media types a client accepts, OCI first. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');
const MANIFEST_LIMIT = 4 * 1024 * 1024;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const REDIRECT = new Set([301, 302, 303, 307, 308]);

export interface DistributionOptions {
  /** `name[:port]`. */
  host: string;
  repo: string;
  /** `http` or `https` (default). */
  scheme?: 'http' | 'https';
  /** base64 `user:password`. */
  auth?: string;
  registryToken?: string;
  skipVerify?: boolean;
  /** Idle timeout in seconds (default 30). */
  timeout?: number;
  connectTimeout?: number;
  /** Extra attempts on transient failures (default 2). */
  retryLimit?: number;
}

/** How the image-level operations (pull, push) reach a registry. */
export interface RegistryAccess {
  /** Talk plain http to the registry (default: only to loopback registries). */
  plainHttp?: boolean;
  /** base64 `user:password`. */
  auth?: string;
  skipVerify?: boolean;
  retryLimit?: number;
}

/** A client for the repository of `ref`, over plain http when asked or, by default, for a loopback registry. */
export function clientFor(ref: ImageReference, access: RegistryAccess): DistributionClient {
  return new DistributionClient({
    host: ref.host,
    repo: ref.repo,
    scheme: (access.plainHttp ?? isLoopbackHost(ref.host)) ? 'http' : 'https',
    auth: access.auth,
    skipVerify: access.skipVerify,
    retryLimit: access.retryLimit,
  });
}

/** A fetched manifest (or index). */
export interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: Record<string, unknown>;
}

type Body = () => Readable | Buffer;

/** One repository of one registry. */
export class DistributionClient {
  readonly auth: Authenticator;
  readonly stats = { requests: 0, uploads: 0, skippedUploads: 0, uploadedBytes: 0 };
  readonly #agent: Dispatcher;
  readonly #base: string;
  readonly #timeoutMs: number;
  readonly #retryLimit: number;

  constructor(readonly opts: DistributionOptions) {
    this.#base = `${opts.scheme ?? 'https'}://${opts.host}/v2/${opts.repo}`;
    this.#timeoutMs = (opts.timeout ?? 30) * 1000;
    this.#retryLimit = opts.retryLimit ?? 2;
    this.#agent = createAgent({ connectTimeoutMs: (opts.connectTimeout ?? 10) * 1000, skipVerify: opts.skipVerify ?? false });
    this.auth = new Authenticator({
      auth: opts.auth,
      registryToken: opts.registryToken,
      repo: opts.repo,
      requestToken: async (url, headers, signal) => {
        const res = await this.#send('GET', url, headers, undefined, signal);
        if (res.statusCode !== 200) {
          await discard(res.body);
          return { status: res.statusCode, body: undefined };
        }
        return { status: 200, body: await readJson(res.body, 1024 * 1024, `token from ${showUrl(url)}`) };
      },
    });
  }

  /** Whether the repository holds blob `digest`. */
  async hasBlob(digest: string, signal?: AbortSignal): Promise<boolean> {
    checkDigest(digest);
    return this.#retry(`check blob ${digest}`, signal, async () => {
      const res = await this.#authed('HEAD', this.#url(`/blobs/${digest}`), {}, undefined, signal);
      await discard(res.body);
      if (res.statusCode === 200 || REDIRECT.has(res.statusCode)) return true;
      if (res.statusCode === 404) return false;
      throw statusError(`check blob ${digest}`, res.statusCode);
    });
  }

  /** Uploads a blob unless present; `open` yields its bytes afresh for each attempt. */
  async pushBlob(digest: string, size: number, open: Body, signal?: AbortSignal): Promise<'exists' | 'uploaded'> {
    if (await this.hasBlob(digest, signal)) {
      this.stats.skippedUploads++;
      return 'exists';
    }
    await this.#retry(`upload blob ${digest}`, signal, async () => {
      const start = await this.#authed('POST', this.#url('/blobs/uploads/'), { 'content-length': '0' }, undefined, signal);
      await discard(start.body);
      if (start.statusCode !== 202) throw statusError(`start the upload of blob ${digest}`, start.statusCode);
      const location = header(start.headers, 'location');
      if (location === undefined) throw new StorageError('ERR_STORAGE_BACKEND', `failed to upload blob ${digest}: no upload Location`);
      const target = new URL(location, this.#url('/blobs/uploads/'));
      target.searchParams.set('digest', digest);
      const headers = { 'content-type': 'application/octet-stream', 'content-length': String(size) };
      const done = await this.#authed('PUT', target, headers, open, signal);
      await discard(done.body);
      if (done.statusCode !== 201) throw statusError(`upload blob ${digest}`, done.statusCode);
    });
    this.stats.uploads++;
    this.stats.uploadedBytes += size;
    return 'uploaded';
  }

  /** Puts a manifest under `reference` (a tag or digest); returns its digest. */
  async putManifest(reference: string, mediaType: string, bytes: Buffer, signal?: AbortSignal): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await this.#retry(`put manifest ${reference}`, signal, async () => {
      const headers = { 'content-type': mediaType, 'content-length': String(bytes.length) };
      const res = await this.#authed('PUT', this.#url(`/manifests/${encodeURIComponent(reference)}`), headers, () => bytes, signal);
      const text = res.statusCode === 201 ? '' : (await readBody(res.body, 64 * 1024, 'manifest answer').catch(() => Buffer.alloc(0))).toString('utf8');
      if (res.statusCode === 201) await discard(res.body);
      else {
        const err = statusError(`put manifest ${reference}`, res.statusCode);
        throw new StorageError(err.code, `${err.message}: ${text.slice(0, 300)}`, { detail: err.detail });
      }
    });
    return digest;
  }

  /** Fetches the manifest or index `reference` (a tag or digest). */
  async getManifest(reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    return this.#retry(`get manifest ${reference}`, signal, async () => {
      const res = await this.#authed('GET', this.#url(`/manifests/${encodeURIComponent(reference)}`), { accept: MANIFEST_ACCEPT }, undefined, signal);
      if (res.statusCode !== 200) {
        await discard(res.body);
        if (res.statusCode === 404) {
          throw new StorageError('ERR_STORAGE_MANIFEST', `failed to find manifest ${reference} in ${this.opts.host}/${this.opts.repo}`);
        }
        throw statusError(`get manifest ${reference}`, res.statusCode);
      }
      const bytes = await readBody(res.body, MANIFEST_LIMIT, `manifest ${reference}`);
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      if (DIGEST.test(reference) && reference !== digest) {
        throw new StorageError('ERR_STORAGE_DIGEST_MISMATCH', `failed to verify manifest ${reference}: content digest is ${digest}`);
      }
      let json: unknown;
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch {
        throw new StorageError('ERR_STORAGE_MANIFEST', `failed to parse manifest ${reference}: invalid JSON`);
      }
      if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        throw new StorageError('ERR_STORAGE_MANIFEST', `failed to parse manifest ${reference}: not a JSON object`);
      }
      const obj = json as Record<string, unknown>;
      const mediaType = typeof obj.mediaType === 'string' ? obj.mediaType : (header(res.headers, 'content-type') ?? '');
      return { digest, mediaType, bytes, json: obj };
    });
  }

  /** Downloads blob `digest` (at most `limit` bytes) to `dest`, verifying its digest; written atomically. */
  async downloadBlob(digest: string, dest: string, limit: number, signal?: AbortSignal): Promise<number> {
    checkDigest(digest);
    return this.#retry(`download blob ${digest}`, signal, async () => {
      const res = await this.#getBlob(digest, {}, `download blob ${digest}`, signal);
      if (res.statusCode !== 200) throw await this.#blobError(res, `download blob ${digest}`, digest);
      const hash = createHash('sha256');
      let size = 0;
      const tmp = `${dest}.part-${process.pid}`;
      try {
        await pipeline(
          res.body,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              size += chunk.length;
              if (size > limit) throw new StorageError('ERR_STORAGE_BACKEND', `failed to download blob ${digest}: larger than ${limit} bytes`);
              hash.update(chunk);
              yield chunk;
            }
          },
          createWriteStream(tmp),
        );
        const got = `sha256:${hash.digest('hex')}`;
        if (got !== digest) throw new StorageError('ERR_STORAGE_DIGEST_MISMATCH', `failed to verify blob ${digest}: content digest is ${got}`, { detail: { retryable: true } });
        await rename(tmp, dest);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err instanceof StorageError ? err : new StorageError('ERR_STORAGE_BACKEND', `failed to download blob ${digest}: ${describeNetworkError(err)}`, { cause: err, detail: { retryable: isTransient(err) } });
      }
      return size;
    });
  }

  /** Fetches blob `digest` (at most `limit` bytes, e.g. an image config) into memory, verifying its digest. */
  async fetchBlob(digest: string, limit: number, signal?: AbortSignal): Promise<Buffer> {
    checkDigest(digest);
    return this.#retry(`fetch blob ${digest}`, signal, async () => {
      const res = await this.#getBlob(digest, {}, `fetch blob ${digest}`, signal);
      if (res.statusCode !== 200) throw await this.#blobError(res, `fetch blob ${digest}`, digest);
      const bytes = await readBody(res.body, limit, `blob ${digest}`);
      const got = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      if (got !== digest) throw new StorageError('ERR_STORAGE_DIGEST_MISMATCH', `failed to verify blob ${digest}: content digest is ${got}`, { detail: { retryable: true } });
      return bytes;
    });
  }

  /**
   * Reads bytes `[offset, offset + length)` of blob `digest` with an HTTP Range request
   * (a registry that ignores Range is read up to the range's end, then hung up on).
   * Nothing verifies these bytes against the digest: the caller checks what it reads.
   */
  async fetchRange(digest: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    checkDigest(digest);
    const what = `blob ${digest} bytes ${offset}-${offset + length - 1}`;
    return this.#retry(`read ${what}`, signal, async () => {
      const res = await this.#getBlob(digest, { range: `bytes=${offset}-${offset + length - 1}` }, `read ${what}`, signal);
      if (res.statusCode !== 200 && res.statusCode !== 206) throw await this.#blobError(res, `read ${what}`, digest);
      const buf = Buffer.allocUnsafe(length);
      await copyRangeBody(res, buf, offset, what);
      return buf;
    });
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** GET of blob `digest`, following a redirect to blob storage (without the registry's Authorization). */
  async #getBlob(digest: string, headers: Record<string, string>, what: string, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const res = await this.#authed('GET', this.#url(`/blobs/${digest}`), headers, undefined, signal);
    if (!REDIRECT.has(res.statusCode)) return res;
    const location = header(res.headers, 'location');
    await discard(res.body);
    if (location === undefined) throw new StorageError('ERR_STORAGE_BACKEND', `failed to ${what}: redirect without Location`);
    return this.#send('GET', new URL(location, this.#url(`/blobs/${digest}`)), headers, undefined, signal);
  }

  /** The error a blob GET stands for when it did not answer with the bytes (its body is discarded). */
  async #blobError(res: Dispatcher.ResponseData, what: string, digest: string): Promise<StorageError> {
    await discard(res.body);
    if (res.statusCode === 404) return new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to find blob ${digest} in ${this.opts.host}/${this.opts.repo}`);
    if (res.statusCode === 416) return new StorageError('ERR_STORAGE_SHORT_READ', `failed to ${what}: the range is beyond the blob's end`);
    return statusError(what, res.statusCode);
  }

  #url(path: string): URL {
    return new URL(this.#base + path);
  }

  async #authed(method: Dispatcher.HttpMethod, url: URL, headers: Record<string, string>, body: Body | undefined, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const sent = await this.auth.current(signal);
    let res = await this.#send(method, url, sent === undefined ? headers : { ...headers, authorization: sent }, body, signal);
    if (res.statusCode !== 401) return res;
    const challenge = res.headers['www-authenticate'];
    await discard(res.body);
    const next = await this.auth.onUnauthorized(challenge, sent, `registry ${this.opts.host}`, signal);
    res = await this.#send(method, url, { ...headers, authorization: next }, body, signal);
    if (res.statusCode === 401 || res.statusCode === 403) {
      await discard(res.body);
      throw new StorageError('ERR_STORAGE_AUTH', `failed to authenticate to registry ${this.opts.host}: access to ${this.opts.repo} refused`);
    }
    return res;
  }

  #send(method: Dispatcher.HttpMethod, url: URL, headers: Record<string, string>, body: Body | undefined, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    this.stats.requests++;
    return this.#agent.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method,
      headers,
      body: body?.(),
      signal,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
  }

  #retry<T>(what: string, signal: AbortSignal | undefined, op: () => Promise<T>): Promise<T> {
    return retry(
      {
        retries: this.#retryLimit,
        retryable: isTransient,
        signal,
        giveUp: (err) =>
          err instanceof StorageError ? err : new StorageError('ERR_STORAGE_BACKEND', `failed to ${what}: ${describeNetworkError(err)}`, { cause: err }),
      },
      op,
    );
  }
}

function checkDigest(digest: string): void {
  if (!DIGEST.test(digest)) throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to find blob ${JSON.stringify(digest)}: not a sha256 digest`);
}
