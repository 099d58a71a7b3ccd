// How the route modules declare an endpoint: per method, upstream's error wrapper and
// whether a body is required or forbidden. One dispatcher per path then behaves as
// upstream's handlers do: a method the path does not answer, a body where none is
// expected or a missing body is a 400 `BadRequest`, never a 405.
import type Router from '@koa/router';
import type { ApiMethod } from '../paths.js';
import { ROUTES } from '../paths.js';
import { badRequest } from '../request.js';
import type { ApiContext, ApiState } from '../request.js';
import type { HttpErrorWrapper } from '../upstream-errors.js';

/** One method of an endpoint. */
export interface MethodHandler {
  /** Upstream's HttpError variant for this method's failures. */
  wrapper: HttpErrorWrapper;
  /** The lifecycle event it sends (named in a refusal that does not say). */
  event?: string;
  /** `json`: a body is required; `none`: a body is refused. */
  body: 'none' | 'json';
  run(ctx: ApiContext): Promise<void> | void;
}

/** An endpoint: a path and its methods. */
export interface Endpoint {
  path: string;
  /** Runs before the method is looked at (upstream's mount handler reads its query first). */
  precheck?(ctx: ApiContext): void;
  methods: Partial<Record<ApiMethod, MethodHandler>>;
}

/**
 * Answers 200 with a JSON body. The body is stored as text: given an object, Koa's body
 * setter asks whether it is a fetch `Response`, and that first look loads Node's bundled
 * undici (~28 ms under a profiler), on the path of the first answer a failed-over daemon gives.
 */
export function sendJson(ctx: ApiContext, value: unknown): void {
  ctx.status = 200;
  ctx.body = JSON.stringify(value);
}

/** Answers 204 with no body. */
export function sendNoContent(ctx: ApiContext): void {
  ctx.status = 204;
}

/** Registers each endpoint on `router`; every path must be one of paths.ts ROUTES with the same methods. */
export function registerEndpoints(router: Router<ApiState>, endpoints: readonly Endpoint[]): void {
  for (const ep of endpoints) {
    const declared = ROUTES.find((r) => r.path === ep.path);
    const methods = Object.keys(ep.methods).sort().join(',');
    if (declared === undefined || [...declared.methods].sort().join(',') !== methods) {
      throw new TypeError(`endpoint ${ep.path} (${methods}) does not match paths.ts`);
    }
    router.all(ep.path, async (ctx: ApiContext) => {
      ep.precheck?.(ctx);
      const handler = ep.methods[ctx.method as ApiMethod];
      if (handler === undefined) {
        throw badRequest(`failed to serve ${ctx.method} ${ep.path}: the method is not allowed (allowed: ${methods})`);
      }
      ctx.state.wrapper = handler.wrapper;
      ctx.state.event = handler.event;
      const hasBody = ctx.state.body !== null;
      if (handler.body === 'none' && hasBody) throw badRequest(`failed to serve ${ctx.method} ${ep.path}: it takes no request body`);
      if (handler.body === 'json' && !hasBody) throw badRequest(`failed to serve ${ctx.method} ${ep.path}: a JSON request body is required`);
      await handler.run(ctx);
    });
  }
}
