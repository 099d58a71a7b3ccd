// Puts an HTTP server on a unix socket the way a supervisor needs it: the socket is
// mode 0600 before anyone can connect (bound in a private 0700 directory, chmod'ed,
// then renamed into place), a stale socket left by a dead daemon is replaced, a live
// one is refused, idle connections are never timed out, and close() removes the socket
// file (only if it is still ours) after in-flight answers are out.
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { chmod, lstat, mkdtemp, rename, rmdir, stat, unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { ApiError } from '../errors.js';

/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
const MAX_SUN_PATH = 107;
/** How long close() waits for in-flight answers before cutting connections. */
const CLOSE_GRACE_MS = 5000;

/** A listening socket. */
export interface UnixListener {
  /** Stops accepting, lets in-flight answers finish, closes every connection and removes the socket file. */
  close(): Promise<void>;
}

function listenError(path: string, detail: string, cause?: unknown): ApiError {
  return new ApiError('ERR_API_LISTEN', `failed to listen on ${path}: ${detail}`, { cause });
}

/** Whether something accepts connections on the socket at `path`. */
function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(path);
    const done = (live: boolean) => {
      sock.destroy();
      resolve(live);
    };
    sock.setTimeout(1000, () => done(true)); // accepted into a full backlog: someone is there
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Refuses a live socket or a non-socket at `path`; true when a stale socket is there. */
async function checkExisting(path: string): Promise<boolean> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw listenError(path, (err as Error).message, err);
  }
  if (!st.isSocket()) throw listenError(path, 'the path exists and is not a socket');
  if (await isLive(path)) {
    throw new ApiError('ERR_API_SOCKET_IN_USE', `failed to listen on ${path}: another process is serving this socket`);
  }
  return true;
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(listenError(path, err.message, err));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(path);
  });
}

/** Binds `server` to `path` with mode 0600, replacing a stale socket there. */
async function bindPrivately(server: Server, path: string, stale: boolean): Promise<void> {
  const dir = await mkdtemp(join(dirname(path), '.nydus-api-')).catch((err) => {
    throw listenError(path, (err as Error).message, err);
  });
  const tmp = join(dir, 's');
  try {
    if (Buffer.byteLength(tmp) <= MAX_SUN_PATH) {
      await listen(server, tmp);
      await chmod(tmp, 0o600);
      // rename() replaces a stale socket atomically: the path is never missing or open to others.
      await rename(tmp, path);
      return;
    }
  } catch (err) {
    if (server.listening) server.close();
    throw err instanceof ApiError ? err : listenError(path, (err as Error).message, err);
  } finally {
    await rmdir(dir).catch(() => {});
  }
  // The private path would be too long for sun_path: bind in place and chmod at once.
  if (stale) await unlink(path).catch(() => {});
  await listen(server, path);
  await chmod(path, 0o600);
}

/**
 * Listens on the unix socket `path`. Throws ApiError ERR_API_SOCKET_IN_USE when another
 * process serves it, ERR_API_LISTEN when it cannot bind.
 */
export async function listenUnix(server: Server, path: string): Promise<UnixListener> {
  // No timeout ever drops an idle kept-alive connection: a supervisor holds one as a liveness probe.
  server.keepAliveTimeout = 0;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  server.timeout = 0;

  const active = new Map<Socket, number>();
  let closing = false;
  server.on('connection', (sock: Socket) => {
    active.set(sock, 0);
    sock.once('close', () => active.delete(sock));
  });
  server.on('request', (req, res) => {
    const sock = req.socket;
    active.set(sock, (active.get(sock) ?? 0) + 1);
    res.once('close', () => {
      const n = (active.get(sock) ?? 1) - 1;
      if (active.has(sock)) active.set(sock, n);
      if (closing && n === 0) sock.end();
    });
  });

  const stale = await checkExisting(path);
  await bindPrivately(server, path, stale);
  const { ino, dev } = await stat(path);

  let closed: Promise<void> | undefined;
  return {
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const [sock, n] of active) if (n === 0) sock.end();
        const grace = setTimeout(() => {
          for (const sock of active.keys()) sock.destroy();
        }, CLOSE_GRACE_MS);
        grace.unref();
        try {
          const st = await stat(path).catch(() => null);
          // A successor may have replaced the file: only our own socket is removed.
          if (st !== null && st.ino === ino && st.dev === dev) await unlink(path).catch(() => {});
          await stopped;
        } finally {
          clearTimeout(grace);
        }
      })();
      return closed;
    },
  };
}
