// The /dev/fuse transport: one kernel FUSE connection served by a
// ProtocolServer on the event loop. The non-blocking fd is watched by the
// loop's own poller (as a socket is); when it is readable the session reads
// requests until EAGAIN (at most a batch per turn), serving each as it is read,
// and writes replies (writes to /dev/fuse never block). See decision 0007. For hot upgrade and
// failover the session can stop reading while finishing what it read, hand
// out a dup of its fd with the INIT parameters, and a new process can resume
// the same connection from that fd without a new INIT. If the serving process
// dies and nobody else holds the fd, the kernel aborts the connection: the
// mount answers ENOTCONN until removed with `umount -l` (or `fusermount3 -u -z`).
import { constants } from 'node:os';
import { FuseError } from '../errors.js';
import { closeFd, dupFd, errnoName, native, systemError, type FdWatch } from '../native/index.js';
import { NotifyCode } from './abi.js';
import type { FileSystem } from './filesystem.js';
import { requestBufferSize, validateInitParams, type InitParams } from './init.js';
import { checkMountpoint, connectionId, findMount, mountFuse, openFuseDevice, unmountFuse, type MountOptions } from './mount-linux.js';
import { ProtocolServer, type InflightRequest, type ProtocolOptions } from './protocol-server.js';
import { encodeNotification } from './reply.js';
import { writeU64 } from './request.js';

const E = constants.errno;

/** Options of a /dev/fuse session. */
export interface SessionOptions extends ProtocolOptions, MountOptions {
  /**
   * Requests read per turn of the event loop before other events get theirs (default
   * 32); more stay queued in the kernel and are read on the next turn.
   */
  readBatch?: number;
  /** How long mount() waits for the kernel's INIT (default 10 s). */
  initTimeoutMs?: number;
}

/** What a new process needs, with a dup of the fd, to serve the same connection (JSON-serializable). */
export interface SessionState {
  version: 1;
  mountpoint: string;
  /** Kernel connection id (/sys/fs/fuse/connections/<connId>). */
  connId: number;
  init: InitParams;
}

/** Why a session stopped serving. */
export interface SessionEnd {
  /** unmounted: ENODEV; aborted: ECONNABORTED (connection abort); closed: close(); failed: read error. */
  reason: 'unmounted' | 'aborted' | 'closed' | 'failed';
  errno?: number;
  /** The failure of the read side, if that is what ended the session. */
  error?: Error;
}

type ReadState = 'running' | 'pausing' | 'paused' | 'closed';

/** A served FUSE connection on /dev/fuse. */
export class FuseSession {
  readonly mountpoint: string;
  readonly connId: number;
  #fd: number;
  readonly #server: ProtocolServer;
  readonly #watch: FdWatch;
  /** One request at a time: the server decodes what it needs before handle() returns. */
  readonly #buf: Buffer;
  readonly #batch: number;
  #state: ReadState;
  #transition: Promise<void> = Promise.resolve();
  #teardownDone: Promise<void> | undefined;
  #resolveEnded!: (end: SessionEnd) => void;
  /** Resolves when the session stops serving for good (the daemon exits on unmounted/aborted). */
  readonly ended: Promise<SessionEnd>;

  private constructor(fd: number, mountpoint: string, connId: number, fs: FileSystem, opts: SessionOptions, bufSize: number, init: InitParams | undefined, paused: boolean) {
    this.#fd = fd;
    this.mountpoint = mountpoint;
    this.connId = connId;
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#server = new ProtocolServer(fs, { writev: (bufs) => (this.#fd < 0 ? -E.ENODEV : native().writev(this.#fd, bufs)) }, opts);
    if (init) this.#server.restore(init);
    this.#buf = Buffer.allocUnsafeSlow(bufSize);
    this.#batch = Math.max(1, Math.min(opts.readBatch ?? 32, 1024));
    const addon = native();
    addon.setNonBlocking(fd, true); // shared by every dup: a successor's reads never block either
    this.#watch = addon.watchReadable(fd, (status) => this.#onReadable(status));
    this.#state = paused ? 'paused' : 'running';
    if (!paused) addon.watchStart(this.#watch);
  }

  /**
   * Mounts `fs` at `mountpoint` (root only) and serves it; resolves after the
   * kernel's INIT was negotiated. Fails with ERR_FUSE_MOUNT and leaves nothing mounted.
   */
  static async mount(fs: FileSystem, mountpoint: string, opts: SessionOptions = {}): Promise<FuseSession> {
    const path = await checkMountpoint(mountpoint);
    const fd = await openFuseDevice();
    try {
      await mountFuse(fd, path, opts);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    let session: FuseSession | undefined;
    try {
      const info = await findMount(path);
      if (!info) throw new FuseError('ERR_FUSE_MOUNT', `failed to mount at ${path}: the mount is missing from /proc/self/mountinfo`);
      const bufSize = requestBufferSize(opts.init?.maxWrite ?? 128 * 1024);
      session = new FuseSession(fd, path, connectionId(info.major, info.minor), fs, opts, bufSize, undefined, false);
      await session.#waitInit(opts.initTimeoutMs ?? 10_000);
      return session;
    } catch (err) {
      await unmountFuse(path).catch(() => undefined);
      if (session) await session.#teardown({ reason: 'failed' });
      else closeFd(fd);
      throw err;
    }
  }

  /**
   * Serves a connection another process mounted and negotiated: `fd` is a
   * /dev/fuse fd of it (ownership passes to the session) and `state` what
   * that process exported. No INIT is expected. With `start: false` the
   * session holds off reading until resumeReading() (a takeover before `start`).
   */
  static async fromFd(fd: number, state: SessionState, fs: FileSystem, opts: SessionOptions & { start?: boolean } = {}): Promise<FuseSession> {
    if (state?.version !== 1 || typeof state.mountpoint !== 'string' || !Number.isSafeInteger(state.connId)) {
      throw new FuseError('ERR_FUSE_SESSION', `failed to restore FUSE session: unsupported state ${JSON.stringify(state)?.slice(0, 200)}`);
    }
    const init = validateInitParams(state.init);
    const start = opts.start ?? true;
    return new FuseSession(fd, state.mountpoint, state.connId, fs, opts, requestBufferSize(init.maxWrite), init, !start);
  }

  /** Negotiated INIT parameters. */
  get initParams(): InitParams | undefined {
    return this.#server.initParams;
  }

  /** True while the session takes requests from the kernel. */
  get reading(): boolean {
    return this.#state === 'running';
  }

  /** Requests read and not yet answered (GET /api/v1/metrics/inflight). */
  inflight(): InflightRequest[] {
    return this.#server.inflight();
  }

  /**
   * Stops taking requests from the kernel (they queue there) and resolves once
   * every request already read has been answered. The fd stays open.
   */
  stopReading(): Promise<void> {
    this.#transition = this.#transition.then(async () => {
      if (this.#state === 'closed') throw this.#closedError('stop reading');
      if (this.#state === 'paused') return;
      // Nothing is read after this (a batch being read stops at its next request).
      this.#state = 'pausing';
      native().watchStop(this.#watch);
      await this.#server.idle();
      if (this.#state === 'pausing') this.#state = 'paused';
    });
    return this.#transition;
  }

  /** Takes requests from the kernel again after stopReading(). */
  resumeReading(): Promise<void> {
    this.#transition = this.#transition.then(() => {
      if (this.#state === 'closed') throw this.#closedError('resume reading');
      if (this.#state === 'running') return;
      this.#state = 'running';
      // Level-triggered: requests that queued meanwhile are read on the next turn.
      native().watchStart(this.#watch);
    });
    return this.#transition;
  }

  /** A dup of the /dev/fuse fd (close-on-exec) for a supervisor; the caller owns it. */
  dupFd(): number {
    if (this.#fd < 0) throw this.#closedError('duplicate the fd');
    return dupFd(this.#fd);
  }

  /** What a successor needs besides the fd. */
  exportState(): SessionState {
    const init = this.#server.initParams;
    if (!init) throw new FuseError('ERR_FUSE_SESSION', 'failed to export FUSE session state: INIT has not completed');
    return { version: 1, mountpoint: this.mountpoint, connId: this.connId, init: { ...init } };
  }

  /**
   * FUSE_NOTIFY_RESEND (Linux 6.9+, protocol 7.40): the kernel re-queues every
   * request that was read but not answered, e.g. by a process killed mid-request.
   */
  notifyResend(): Promise<void> {
    return this.#notify('resend', NotifyCode.RESEND, []);
  }

  /** Drops the kernel's cached dentry `name` under `parent`. */
  notifyInvalEntry(parent: number, name: Buffer | string): Promise<void> {
    const n = typeof name === 'string' ? Buffer.from(name) : name;
    const head = Buffer.alloc(16);
    writeU64(head, 0, parent);
    head.writeUInt32LE(n.length, 8);
    return this.#notify('invalidate entry', NotifyCode.INVAL_ENTRY, [head, n, Buffer.alloc(1)]);
  }

  /** Drops cached data of `ino` from `offset` for `length` bytes (0: to the end; offset < 0: attributes only). */
  notifyInvalInode(ino: number, offset = 0, length = 0): Promise<void> {
    const b = Buffer.alloc(24);
    writeU64(b, 0, ino);
    b.writeBigInt64LE(BigInt(offset), 8);
    b.writeBigInt64LE(BigInt(length), 16);
    return this.#notify('invalidate inode', NotifyCode.INVAL_INODE, [b]);
  }

  /** Unmounts (lazily when busy) and stops serving. */
  async unmount(): Promise<void> {
    await unmountFuse(this.mountpoint);
    await this.#teardown({ reason: 'unmounted' });
  }

  /** Stops serving without unmounting: finishes in-flight requests, closes the fd (exit after a handover). */
  async close(): Promise<void> {
    if (this.#state !== 'closed') await this.stopReading().catch(() => undefined);
    await this.#teardown({ reason: 'closed' });
  }

  async #notify(what: string, code: number, payload: Uint8Array[]): Promise<void> {
    if (this.#fd < 0) throw this.#closedError(what);
    try {
      // On a job thread: an invalidation can wait for inode locks held by a request we serve.
      await native().writeAsync(this.#fd, encodeNotification(code, payload));
    } catch (err) {
      const cause = systemError(err);
      throw new FuseError('ERR_FUSE_SESSION', `failed to ${what} on FUSE connection ${this.connId}: ${cause.message}`, { cause });
    }
  }

  async #waitInit(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FuseError('ERR_FUSE_MOUNT', `failed to mount at ${this.mountpoint}: no FUSE INIT from the kernel within ${timeoutMs} ms`)), timeoutMs);
    });
    const ended = this.ended.then((end) => {
      const why = end.error?.message ?? (end.errno ? errnoName(end.errno) : end.reason);
      throw new FuseError('ERR_FUSE_MOUNT', `failed to mount at ${this.mountpoint}: the connection ended before INIT (${why})`, { cause: end.error });
    });
    try {
      await Promise.race([this.#server.whenInitialized(), timeout, ended]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The fd is readable (or, with status < 0, in error: the connection ended): reads and
   * serves requests until the kernel has none queued, the batch is used up (the watch is
   * level-triggered, so the rest come on the next turn), or reading was stopped.
   */
  #onReadable(status: number): void {
    const addon = native();
    for (let i = 0; i < this.#batch && this.#state === 'running'; i++) {
      const n = addon.readRequest(this.#fd, this.#buf);
      if (n > 0) {
        this.#server.handle(this.#buf, n);
        continue;
      }
      const errno = -n;
      if (errno === E.EAGAIN) {
        // Nothing queued: the usual end of a batch. After an error report from the poller
        // (which stopped the watch) the read should have told why; fail rather than go deaf.
        if (status < 0) void this.#teardown({ reason: 'failed', errno: -status });
        return;
      }
      // EINTR: a signal; ENOENT: the request was interrupted while being read.
      if (errno === E.EINTR || errno === E.ENOENT) continue;
      if (errno === E.ENODEV || errno === E.ECONNABORTED) {
        void this.#teardown({ reason: errno === E.ECONNABORTED ? 'aborted' : 'unmounted', errno });
      } else {
        void this.#teardown({ reason: 'failed', errno });
      }
      return;
    }
    // The batch is used up after an error report (which stopped the watch): watch again,
    // so the next turn reads on and learns why.
    if (status < 0 && this.#state === 'running') addon.watchStart(this.#watch);
  }

  #teardown(end: SessionEnd): Promise<void> {
    this.#teardownDone ??= (async () => {
      this.#state = 'closed';
      // Unregister from the poller before the fd goes: epoll would keep watching a closed fd's file.
      native().watchClose(this.#watch);
      const fd = this.#fd;
      this.#fd = -1;
      closeFd(fd);
      this.#resolveEnded(end);
    })();
    return this.#teardownDone;
  }

  #closedError(what: string): FuseError {
    return new FuseError('ERR_FUSE_SESSION', `failed to ${what}: the FUSE session on ${this.mountpoint} is closed`);
  }
}
