// How nydusd decides, at start, that a predecessor crashed and a takeover should follow
// (upstream `create_fuse_daemon`, docs/contract.md §3.4): the mountpoint still carries
// a FUSE mount, the API socket file is still there, and nobody accepts connections on it.
// Nothing here may touch the mountpoint itself: after a crash the supervisor may hold the
// connection alive with nobody serving it, and any stat of it would wait for ever.
import { createConnection } from 'node:net';
import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { FuseError } from '../errors.js';
import { findMount } from '../fuse/mount-linux.js';

/** How long a connect to the API socket may take before it counts as refused. */
const CONNECT_TIMEOUT_MS = 1000;

/**
 * The canonical path of a mountpoint that may carry a mount nobody serves: the parent is
 * resolved, the last component is taken as given (resolving it would stat the mount).
 */
export async function mountpointPath(mountpoint: string): Promise<string> {
  const abs = resolve(mountpoint);
  if (abs === '/') return abs;
  try {
    return resolve(await realpath(dirname(abs)), basename(abs));
  } catch (err) {
    throw new FuseError('ERR_FUSE_MOUNT', `failed to resolve mountpoint ${mountpoint}: ${(err as Error).message}`, { cause: err });
  }
}

/** What the start-up check found. */
export interface CrashCheck {
  crashed: boolean;
  /** One sentence for the log: why this is (or is not) a crash. */
  reason: string;
}

/** True when something accepts a connection on the unix socket at `path` within the timeout. */
function accepts(path: string): Promise<boolean> {
  return new Promise((done) => {
    const sock = createConnection(path);
    const end = (live: boolean) => {
      sock.destroy();
      done(live);
    };
    // A full backlog leaves connect pending: someone is there, only busy.
    sock.setTimeout(CONNECT_TIMEOUT_MS, () => end(true));
    sock.once('connect', () => end(true));
    sock.once('error', () => end(false));
  });
}

/**
 * Upstream's crash check for a fusedev daemon started without --upgrade: `mountpoint`
 * (canonical, see mountpointPath) is a FUSE mount, `apisock` exists, and connecting to it
 * fails. Without an API socket there is no check (upstream: no socket, no crash detection).
 */
export async function detectCrash(mountpoint: string, apisock: string | undefined): Promise<CrashCheck> {
  if (apisock === undefined) return { crashed: false, reason: 'no --apisock, so no crash detection' };
  const mount = await findMount(mountpoint);
  if (mount === undefined || !mount.fstype.startsWith('fuse')) return { crashed: false, reason: `${mountpoint} carries no FUSE mount` };
  const st = await lstat(apisock).catch(() => null);
  if (st === null) return { crashed: false, reason: `${mountpoint} is a FUSE mount but the API socket ${apisock} is gone` };
  if (await accepts(apisock)) return { crashed: false, reason: `a daemon still answers on ${apisock}` };
  return { crashed: true, reason: `${mountpoint} is still a FUSE mount (${mount.fstype}) and ${apisock} exists but refuses connections: a previous daemon crashed` };
}
