// The first middleware and the API's only exit: it turns every thrown error into
// upstream's status and `{code, message}` body (plus the project's `error_code` and
// `description`), then writes the response itself so that every answer, 204 included,
// carries `Server: Nydus API` and `Content-Type: application/json` (Koa's own respond
// strips Content-Type from a 204). It never lets an error escape to Koa.
import type { Next } from 'koa';
import { NydusError } from '../errors.js';
import type { ApiContext } from './request.js';
import { unexpectedFailure, upstreamFailure } from './upstream-errors.js';
import type { UpstreamFailure } from './upstream-errors.js';

/** Where the API reports what it cannot answer well; the daemon passes its logger. */
export interface ApiLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** The JSON body of every error answer. `code` and `message` are upstream's; the rest is ours. */
export interface ErrorBody {
  /** Always "UNDEFINED", as upstream sends. */
  code: string;
  /** Upstream's Debug string, e.g. `Mount(MountFilesystem(Other("object or filesystem already exists")))`. */
  message: string;
  /** The project's catalogue code (src/errors.ts), e.g. `ERR_DAEMON_MOUNT_EXISTS`. */
  error_code: string;
  /** The project's own message: "failed to <verb> <object>: <detail>". */
  description: string;
}

const debug = /\bnydus\b/.test(process.env.NODE_DEBUG ?? '');

function failureOf(err: unknown, ctx: ApiContext): UpstreamFailure & { errorCode: string; description: string } {
  if (err instanceof NydusError) {
    const d = err.detail;
    if (d?.request === true && typeof d.upstream === 'string') {
      const status = typeof d.status === 'number' ? d.status : err.httpStatus;
      return { status, message: d.upstream, errorCode: err.code, description: err.message };
    }
    return { ...upstreamFailure(err, ctx.state.wrapper, ctx.state.event), errorCode: err.code, description: err.message };
  }
  // A bug, not a refusal: the details stay in the log unless NODE_DEBUG=nydus.
  const description = debug ? String((err as Error)?.stack ?? err) : 'internal error';
  return { ...unexpectedFailure(ctx.state.wrapper), errorCode: 'ERR_API_INTERNAL', description };
}

/** Creates the first middleware of the API app. */
export function errorMiddleware(logger?: ApiLogger) {
  return async function handleErrors(ctx: ApiContext, next: Next): Promise<void> {
    try {
      await next();
    } catch (err) {
      const f = failureOf(err, ctx);
      if (f.status >= 500) {
        const why = err instanceof NydusError ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
        logger?.error(`api: ${ctx.method} ${ctx.path} answered ${f.status}: ${why}`);
      }
      ctx.status = f.status;
      const body: ErrorBody = { code: 'UNDEFINED', message: f.message, error_code: f.errorCode, description: f.description };
      ctx.body = JSON.stringify(body); // text, as sendJson does (routes/endpoint.ts)
    }
    send(ctx);
  };
}

/** Writes status, headers and body, bypassing Koa's respond. */
function send(ctx: ApiContext): void {
  ctx.respond = false;
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return;
  const status = ctx.status;
  const headers: Record<string, string | number> = {
    Server: 'Nydus API',
    'Content-Type': ctx.state.contentType ?? 'application/json',
  };
  if (ctx.state.close) headers.Connection = 'close';
  if (status === 204 || ctx.body === undefined || ctx.body === null) {
    // 204 carries no body and no Content-Length (RFC 9110 §8.6).
    if (status !== 204) headers['Content-Length'] = 0;
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = typeof ctx.body === 'string' ? ctx.body : JSON.stringify(ctx.body);
  const buf = Buffer.from(text, 'utf8');
  headers['Content-Length'] = buf.length;
  res.writeHead(status, headers);
  res.end(buf);
}
