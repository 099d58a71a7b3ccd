// HTTP plumbing shared by the registry backend, the http-proxy backend and the
// distribution client: undici agents built from nydusd's timeouts, header access,
// bounded body readers, and error classification. Messages built here name URLs by
// origin and path only: query strings (pre-signed blob URLs) and credentials never
// reach an error message, a log line or a metric.
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { ConfigError, StorageError } from '../errors.js';
import { showUrl } from './show-url.js';

/** Connection settings of one HTTP client (upstream ConnectionConfig, in ms). */
export interface AgentOptions {
  /** TCP/TLS connect timeout; 0 = undici's default. */
  connectTimeoutMs: number;
  /** Accept any TLS certificate (`skip_verify`). */
  skipVerify: boolean;
  /** Connect to this unix socket instead of the URL's host (http-proxy backend). */
  socketPath?: string;
  /** Extra trusted CAs (PEM), added to the system's (`ca_cert_files`). */
  ca?: string[];
}

/** TLS trust for `ca`: the system's roots plus these, as upstream adds root certificates. */
export function trustedCas(ca: string[] | undefined): { ca?: string[] } {
  return ca === undefined || ca.length === 0 ? {} : { ca: [...rootCertificates, ...ca] };
}

/** Reads the PEM files of `ca_cert_files` (asynchronously, once per backend). */
export async function readCaCerts(files: readonly string[]): Promise<string[]> {
  return Promise.all(
    files.map(async (f) => {
      try {
        return await readFile(f, 'utf8');
      } catch (err) {
        throw new ConfigError('ERR_CONFIG_INVALID', `failed to read ca_cert_files entry ${f}: ${(err as Error).message}`, { cause: err });
      }
    }),
  );
}

/** A pooling, keep-alive agent: connections to each origin are reused across requests. */
export function createAgent(opts: AgentOptions): Agent {
  return new Agent({
    connect: {
      ...(opts.connectTimeoutMs > 0 ? { timeout: opts.connectTimeoutMs } : {}),
      rejectUnauthorized: !opts.skipVerify,
      ...trustedCas(opts.ca),
      ...(opts.socketPath !== undefined ? { socketPath: opts.socketPath } : {}),
    },
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
  });
}

/** A response header as one string (the first value when repeated). */
export function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export { showUrl };

/** Discards a response body so its connection can be reused. */
export async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump({ limit: 64 * 1024 });
  } catch {
    // The connection is dropped instead; nothing to report.
  }
}

/** Drops a response body without reading it (its connection is closed, not reused). */
export function abandon(body: Dispatcher.ResponseData['body']): void {
  // undici reports destroying an unread body as an 'error'; nobody else listens.
  body.on('error', () => {});
  body.destroy();
}

/** Reads a whole body of at most `limit` bytes. */
export async function readBody(body: Dispatcher.ResponseData['body'], limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      abandon(body);
      throw new StorageError('ERR_STORAGE_BACKEND', `failed to read ${what}: response larger than ${limit} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts, size);
}

/** Reads and parses a JSON body of at most `limit` bytes. */
export async function readJson(body: Dispatcher.ResponseData['body'], limit: number, what: string): Promise<unknown> {
  const bytes = await readBody(body, limit, what);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new StorageError('ERR_STORAGE_BACKEND', `failed to parse ${what}: invalid JSON`, { cause: err });
  }
}

/** Network-level failures worth another attempt (resets, refusals, timeouts, cut bodies). */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'HPE_INVALID_CONSTANT',
  'HPE_INVALID_CHUNK_SIZE',
]);

/**
 * Whether `err` is transient: a network failure, or a StorageError marked
 * `detail.retryable` (5xx, 429, truncated or wrong-range bodies).
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof StorageError) return err.detail?.retryable === true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  return cause !== undefined && cause !== err && isTransient(cause);
}

/** A one-line description of a network error without URLs or headers. */
export function describeNetworkError(err: unknown): string {
  if (err instanceof StorageError) return err.message;
  const e = err as NodeJS.ErrnoException | undefined;
  const code = e?.code ?? e?.name ?? 'Error';
  const msg = (e?.message ?? String(err)).replace(/https?:\/\/\S+/g, (u) => showUrl(u));
  return msg.startsWith(code) ? msg : `${code}: ${msg}`;
}

/** A StorageError for an HTTP status; 5xx and 429 are transient. */
export function statusError(what: string, status: number): StorageError {
  const retryable = status >= 500 || status === 429 || status === 408;
  return new StorageError('ERR_STORAGE_BACKEND', `failed to ${what}: HTTP status ${status}`, { detail: { retryable, status } });
}
