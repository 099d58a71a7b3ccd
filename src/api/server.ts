// The daemon's entry to the admin API: builds the app over its DaemonControl and serves
// it on the --apisock unix socket until close().
import { createServer } from 'node:http';
import type { DaemonControl } from '../daemon/control.js';
import { createApiApp } from './app.js';
import type { ApiLogger } from './error-middleware.js';
import { listenUnix } from './listen-unix.js';

/**
 * Serves the admin API for `control` on the unix socket `socketPath` (mode 0600; a stale
 * socket is replaced, a live one is ApiError ERR_API_SOCKET_IN_USE). `close()` stops
 * accepting, lets answers in flight finish, and removes the socket file.
 */
export async function startApiServer(
  control: DaemonControl,
  socketPath: string,
  logger?: ApiLogger,
): Promise<{ close(): Promise<void> }> {
  const app = createApiApp(control, logger);
  // Idle and header timeouts are set to never by listenUnix; 0 here too for the record.
  const server = createServer({ keepAliveTimeout: 0, requestTimeout: 0, headersTimeout: 0 }, app.callback());
  const listener = await listenUnix(server, socketPath);
  logger?.info(`api: listening on ${socketPath}`);
  return {
    async close() {
      await listener.close();
      logger?.info(`api: closed ${socketPath}`);
    },
  };
}
