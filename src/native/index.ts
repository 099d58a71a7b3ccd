// Typed face of the C addon's daemon part (build/Release/nydus_native.node): /dev/fuse
// primitives for the session (a readability watch in the event loop's poller,
// non-blocking reads, writev), and the supervisor socket protocol of nydusd
// (docs/contract.md §4.1) for hot upgrade and failover. Every blocking call
// runs on the addon's own threads, never on the event loop or libuv's pool;
// failures become DaemonError/FuseError with the OS error as cause.
import { constants } from 'node:os';
import { DaemonError, FuseError } from '../errors.js';
import { loadAddon } from '../util/addon.js';

/** A readability watch on an fd in the event loop's poller (opaque). */
export type FdWatch = { readonly __brand: 'FdWatch' };

/** The raw addon. Sync calls return `-errno` where noted; async ones reject with {errno, syscall}. */
export interface NativeAddon {
  /**
   * A stopped watch calling `onReadable(status)` from the event loop while `fd` is
   * readable (level-triggered); status < 0 (libuv error, e.g. POLLERR) stops it. While
   * not closed it keeps the process alive, started or not.
   */
  watchReadable(fd: number, onReadable: (status: number) => void): FdWatch;
  watchStart(watch: FdWatch): void;
  watchStop(watch: FdWatch): void;
  /** Stops for good and releases the callback; the fd is the caller's to close afterwards. */
  watchClose(watch: FdWatch): void;
  /** One read(2) of a request: bytes, or -errno (-EAGAIN on a non-blocking fd with nothing queued). */
  readRequest(fd: number, buf: Uint8Array): number;
  /** One writev(2): bytes written or -errno. */
  writev(fd: number, bufs: readonly Uint8Array[]): number;
  /** One write(2) of the joined buffers on a job thread (for writes that may block). */
  writeAsync(fd: number, bufs: readonly Uint8Array[]): Promise<number>;
  dup(fd: number): number;
  close(fd: number): void;
  setNonBlocking(fd: number, on: boolean): void;
  unmount(path: string, flags: number): Promise<void>;
  readonly MNT_DETACH: number;
  readonly MNT_FORCE: number;
  sendStateWithFd(path: string, data: Uint8Array, fd: number, timeoutMs: number): Promise<void>;
  receiveStateWithFd(path: string, timeoutMs: number): Promise<{ data: Buffer; fds: number[] }>;
  listenUnix(path: string): number;
  shutdownListener(fd: number): void;
  acceptReceive(listenFd: number, timeoutMs: number): Promise<{ data: Buffer; fds: number[] }>;
  acceptSend(listenFd: number, data: Uint8Array, fd: number, timeoutMs: number): Promise<void>;
  /** Attaches `path` read-only to a free loop device (autoclear); `fd` keeps it attached until closed. */
  loopAttach(path: string, directIo: boolean, blockSize: number): Promise<{ index: number; fd: number; directIo: boolean }>;
  /** LOOP_CLR_FD on /dev/loop<index> (detached at its last close when still open). */
  loopDetach(index: number): Promise<void>;
  /** mount(2), MS_RDONLY when `readOnly`. */
  mountFs(source: string, target: string, fstype: string, readOnly: boolean, data: string): Promise<void>;
}

let addon: NativeAddon | undefined;

/** Loads the addon once, from the nearest `build/Release` above this module (sources or dist/). */
export function native(): NativeAddon {
  addon ??= loadAddon<NativeAddon>((m) => new FuseError('ERR_FUSE_SESSION', `failed to load the native addon: ${m}`));
  return addon;
}

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/** Node-style system error (`code`, negative `errno`, `syscall`) from an addon failure. */
export function systemError(err: unknown): NodeJS.ErrnoException {
  const raw = err as { errno?: number; syscall?: string; message?: string };
  if (typeof raw?.errno !== 'number') return err as NodeJS.ErrnoException;
  const code = errnoNames.get(raw.errno) ?? `E${raw.errno}`;
  const out: NodeJS.ErrnoException = new Error(`${raw.syscall ?? 'native'}: ${code}`);
  out.code = code;
  out.errno = -raw.errno;
  out.syscall = raw.syscall;
  return out;
}

/** The error code name (`ENOENT`) of a negative errno result. */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

function upgradeError(what: string, err: unknown): DaemonError {
  const cause = systemError(err);
  return new DaemonError('ERR_DAEMON_UPGRADE', `failed to ${what}: ${cause.message}`, { cause });
}

/** A duplicate of `fd` (close-on-exec), e.g. the /dev/fuse fd handed to a supervisor. */
export function dupFd(fd: number): number {
  try {
    return native().dup(fd);
  } catch (err) {
    const cause = systemError(err);
    throw new FuseError('ERR_FUSE_SESSION', `failed to duplicate fd ${fd}: ${cause.message}`, { cause });
  }
}

/** Closes an fd the caller owns (Node's fs.closeSync would also do; this one never throws EINTR). */
export function closeFd(fd: number): void {
  try {
    native().close(fd);
  } catch (err) {
    const cause = systemError(err);
    throw new FuseError('ERR_FUSE_SESSION', `failed to close fd ${fd}: ${cause.message}`, { cause });
  }
}

/** Options of the socket calls. `timeoutMs` <= 0 waits for ever. */
export interface SocketOptions {
  timeoutMs?: number;
}

/**
 * Daemon side of `sendfd`: connects to the supervisor socket, sends `state` with
 * exactly one fd attached to the first segment, writes the rest and closes.
 */
export async function sendStateWithFd(sockPath: string, state: Uint8Array, fd: number, opts: SocketOptions = {}): Promise<void> {
  if (state.length === 0) throw new DaemonError('ERR_DAEMON_UPGRADE', `failed to send state to supervisor ${sockPath}: the state is empty`);
  try {
    await native().sendStateWithFd(sockPath, state, fd, opts.timeoutMs ?? 0);
  } catch (err) {
    throw upgradeError(`send state to supervisor ${sockPath}`, err);
  }
}

/** What a restore receives: the state bytes and the fds that came with them (owned by the caller). */
export interface ReceivedState {
  data: Buffer;
  fds: number[];
}

/**
 * Daemon side of `takeover`: connects, receives the first segment (32 KiB, up to
 * 16 fds) and reads until the supervisor closes. Fails when no fd came along.
 */
export async function receiveStateWithFd(sockPath: string, opts: SocketOptions = {}): Promise<ReceivedState> {
  let got: ReceivedState;
  try {
    got = await native().receiveStateWithFd(sockPath, opts.timeoutMs ?? 0);
  } catch (err) {
    throw upgradeError(`receive state from supervisor ${sockPath}`, err);
  }
  if (got.fds.length === 0) {
    const why = got.data.length === 0 ? 'the peer closed without sending anything' : 'the peer sent no file descriptor';
    throw new DaemonError('ERR_DAEMON_UPGRADE', `failed to receive state from supervisor ${sockPath}: ${why}`);
  }
  return got;
}

/** What a supervisor keeps from a save: the bytes and the first fd of the first SCM_RIGHTS message. */
export interface SavedState {
  data: Buffer;
  fd: number;
}

/**
 * Supervisor side of the protocol (what nydus-snapshotter does): listens on a
 * path and serves one connection per call. Used by tests and by anyone who
 * needs a supervisor; the daemon itself only connects.
 */
export class SupervisorListener {
  readonly path: string;
  #fd: number;
  #pending = 0;
  #closing = false;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  /** Removes a stale socket file at `path`, binds and listens. */
  static listen(path: string): SupervisorListener {
    try {
      return new SupervisorListener(path, native().listenUnix(path));
    } catch (err) {
      throw upgradeError(`listen on supervisor socket ${path}`, err);
    }
  }

  /** Accepts one daemon's `sendfd` and reads until it closes. Fails if it sent no fd. */
  async receive(opts: SocketOptions = {}): Promise<SavedState> {
    const got = await this.#run('receive state on', () => native().acceptReceive(this.#fd, opts.timeoutMs ?? 0));
    if (got.fds.length === 0) {
      throw new DaemonError('ERR_DAEMON_UPGRADE', `failed to receive state on ${this.path}: the daemon sent no file descriptor`);
    }
    return { data: got.data, fd: got.fds[0] };
  }

  /** Accepts one daemon's `takeover` and sends `state` with `fd`, then closes; 10 s by default, as the snapshotter. */
  async send(state: Uint8Array, fd: number, opts: SocketOptions = {}): Promise<void> {
    if (state.length === 0) throw new DaemonError('ERR_DAEMON_UPGRADE', `failed to send state on ${this.path}: the state is empty`);
    await this.#run('send state on', () => native().acceptSend(this.#fd, state, fd, opts.timeoutMs ?? 10_000));
  }

  /** Stops listening; a pending receive or send fails with ECANCELED. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    try {
      native().shutdownListener(this.#fd);
    } catch {
      // Already shut down or never connected: closing below is what matters.
    }
    if (this.#pending === 0) this.#release();
  }

  async #run<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.#closing) throw new DaemonError('ERR_DAEMON_UPGRADE', `failed to ${what} ${this.path}: the listener is closed`);
    this.#pending++;
    try {
      return await op();
    } catch (err) {
      throw upgradeError(`${what} ${this.path}`, err);
    } finally {
      this.#pending--;
      if (this.#closing && this.#pending === 0) this.#release();
    }
  }

  #release(): void {
    if (this.#fd < 0) return;
    native().close(this.#fd);
    this.#fd = -1;
  }
}
