// Builds the admin API as a Koa app over a DaemonControl, without listening anywhere
// (listen-unix.ts and server.ts do that). Middleware order: errors and the response
// writer first, then the body reader (dbs-uhttp's limits), then the exact-path router,
// then NoRoute. There is no lock here: the controller serialises writes, reads never wait.
import Router from '@koa/router';
import Koa from 'koa';
import type { DaemonControl } from '../daemon/control.js';
import { errorMiddleware } from './error-middleware.js';
import type { ApiLogger } from './error-middleware.js';
import { readBodyMiddleware, requestError } from './request.js';
import type { ApiContext, ApiState } from './request.js';
import { registerEndpoints } from './routes/endpoint.js';
import { extEndpoints } from './routes/ext.js';
import { v1Endpoints } from './routes/v1.js';
import { v2Endpoints } from './routes/v2.js';

/** The Koa app of the admin API. Serve it with `app.callback()`. */
export function createApiApp(control: DaemonControl, logger?: ApiLogger): Koa<ApiState> {
  const app = new Koa<ApiState>();
  // Upstream matches the path exactly: no trailing slash, case-sensitive.
  const router = new Router<ApiState>({ strict: true, sensitive: true });
  registerEndpoints(router, [...v1Endpoints(control), ...v2Endpoints(control), ...extEndpoints(control)]);
  app.use(errorMiddleware(logger));
  app.use(readBodyMiddleware);
  app.use(router.routes());
  app.use(async (ctx: ApiContext) => {
    throw requestError('ERR_API_NO_ROUTE', 'NoRoute', `failed to serve ${ctx.method} ${ctx.path}: no such endpoint`);
  });
  // Errors never escape errorMiddleware; this only sees failures writing to a socket.
  app.on('error', (err: Error) => logger?.warn(`api: ${err.message}`));
  return app;
}
