// What the routes see of a request: the Koa state they share, the request body read
// under dbs-uhttp's rules (Content-Length required, at most 51200 bytes, an empty body
// is no body), query parameters decoded as upstream's url crate does, and the one way
// to refuse a malformed request with upstream's message.
import type { Next, ParameterizedContext } from 'koa';
import { ApiError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { mountpointTooLong } from '../util/path-limits.js';
import { MAX_BODY_BYTES } from './paths.js';
import { rustDebugString } from './upstream-errors.js';
import type { HttpErrorWrapper } from './upstream-errors.js';

/** Per-request state shared by the middlewares and routes. */
export interface ApiState {
  /** The request body; null when there is none (absent or empty). */
  body: Buffer | null;
  /** Upstream's HttpError variant for failures of the endpoint being served. */
  wrapper?: HttpErrorWrapper;
  /** The lifecycle event the endpoint sends, named in a refusal that does not say. */
  event?: string;
  /** Close the connection after answering (a body was left unread). */
  close?: boolean;
  /** Content-Type of a non-JSON answer (the Prometheus exposition); default application/json. */
  contentType?: string;
}

/** The Koa context every API middleware and route receives. */
export type ApiContext = ParameterizedContext<ApiState>;

/**
 * A malformed request: answered with `status` (default: the code's) and `upstream` as the
 * body's `message`, exactly as upstream's HTTP layer answers it before any daemon work.
 */
export function requestError(code: ErrorCode, upstream: string, description: string, status?: number): ApiError {
  return new ApiError(code, description, { detail: { request: true, upstream, status } });
}

/** Upstream's bare `BadRequest` (wrong method, body present or missing, bad query). */
export function badRequest(description: string): ApiError {
  return requestError('ERR_API_BAD_REQUEST', 'BadRequest', description);
}

/**
 * Reads the request body into `ctx.state.body` before routing, as dbs-uhttp does:
 * a body without Content-Length (chunked) is refused with 411, one declared larger than
 * MAX_BODY_BYTES with 413 before a byte of it is read; either way the connection closes.
 */
export async function readBodyMiddleware(ctx: ApiContext, next: Next): Promise<void> {
  ctx.state.body = null;
  const headers = ctx.req.headers;
  if (headers['transfer-encoding'] !== undefined) {
    ctx.state.close = true;
    throw requestError('ERR_API_LENGTH_REQUIRED', 'BadRequest', 'failed to read request body: Content-Length is required, Transfer-Encoding is not supported');
  }
  const declared = headers['content-length'];
  const length = declared === undefined ? 0 : Number(declared);
  if (length > MAX_BODY_BYTES) {
    ctx.state.close = true;
    throw requestError(
      'ERR_API_BODY_TOO_LARGE',
      'BadRequest',
      `failed to read request body: Content-Length ${length} is larger than the limit of ${MAX_BODY_BYTES} bytes`,
    );
  }
  if (length > 0) ctx.state.body = await readExactly(ctx.req, length);
  await next();
}

function readExactly(stream: NodeJS.ReadableStream, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      // Node's parser never delivers more than Content-Length bytes.
      chunk.copy(buf, got);
      got += chunk.length;
    };
    const onEnd = () => {
      cleanup();
      if (got === length) resolve(buf);
      else reject(badRequest(`failed to read request body: got ${got} of ${length} bytes`));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(badRequest(`failed to read request body: ${err.message}`));
    };
    const onAborted = () => onError(new Error('client closed the connection'));
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('aborted', onAborted);
  });
}

/**
 * A query parameter as upstream reads it: form-urlencoded (`+` is a space), the first
 * occurrence wins; undefined when absent.
 */
export function queryParam(ctx: ApiContext, key: string): string | undefined {
  return new URLSearchParams(ctx.querystring).get(key) ?? undefined;
}

/** The required `mountpoint` query, refused with upstream's exact message when missing. */
export function requireMountpoint(ctx: ApiContext): string {
  const mountpoint = queryParam(ctx, 'mountpoint');
  if (mountpoint === undefined) {
    throw requestError(
      'ERR_API_BAD_REQUEST',
      `QueryString(${rustDebugString("'mountpoint' should be specified in query string")})`,
      'failed to serve request: the mountpoint query parameter is required',
    );
  }
  // Beyond the kernel's limits nothing can be served there (a longer name breaks the listing of its parent).
  const tooLong = mountpointTooLong(mountpoint);
  if (tooLong !== undefined) {
    const text = `failed to serve request: the mountpoint ${tooLong}`;
    throw requestError('ERR_API_BAD_REQUEST', `QueryString(${rustDebugString(text)})`, text);
  }
  return mountpoint;
}
