// The /dev/fuse transport: one kernel FUSE connection served by a
// ProtocolServer. A reader worker owns the blocking reads and hands requests
// over through a shared ring (slot-ring.ts); the main thread decodes, serves
// and writes replies (writes to /dev/fuse never block). For hot upgrade and
// failover the session can stop reading while finishing what it read, hand
// out a dup of its fd with the INIT parameters, and a new process can resume
// the same connection from that fd without a new INIT. If the serving process
// dies and nobody else holds the fd, the kernel aborts the connection: the
// mount answers ENOTCONN until removed with `umount -l` (or `fusermount3 -u -z`).
import { Worker } from 'node:worker_threads';
import { constants } from 'node:os';
import { FuseError } from '../errors.js';
import { closeFd, dupFd, errnoName, native, systemError } from '../native/index.js';
import { NotifyCode } from './abi.js';
import type { FileSystem } from './filesystem.js';
import { requestBufferSize, validateInitParams, type InitParams } from './init.js';
import { checkMountpoint, connectionId, findMount, mountFuse, openFuseDevice, unmountFuse, type MountOptions } from './mount-linux.js';
import { ProtocolServer, type InflightRequest, type ProtocolOptions } from './protocol-server.js';
import { encodeNotification } from './reply.js';
import { writeU64 } from './request.js';
import { CMD_INDEX, Cmd, RingView, SLEEP_INDEX, Slot, type RingInit, type WorkerEvent } from './slot-ring.js';

const E = constants.errno;

/** Options of a /dev/fuse session. */
export interface SessionOptions extends ProtocolOptions, MountOptions {
  /** Request slots between the reader worker and the main thread (default 16). */
  slots?: number;
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
  /** The reader worker's own failure, if that is what ended the session. */
  error?: Error;
}

type ReadState = 'running' | 'pausing' | 'paused' | 'closed';

/** Starts the reader worker (reader-worker.ts beside this module). */
function startReader(workerData: RingInit): Worker {
  const name = 'nydus-fuse-reader';
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./reader-worker.js', import.meta.url), { workerData, name });
  // Running from TypeScript sources (tests under tsx): Node 20 workers do not
  // inherit tsx's loader hooks, so the worker registers them before importing.
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(new URL('./reader-worker.ts', import.meta.url).href);
  const boot = `import(${api}).then(({ register }) => { register(); return import(${entry}); })`;
  return new Worker(boot, { eval: true, workerData, name });
}

/** A served FUSE connection on /dev/fuse. */
export class FuseSession {
  readonly mountpoint: string;
  readonly connId: number;
  #fd: number;
  readonly #wakeFd: number;
  readonly #server: ProtocolServer;
  readonly #ring: RingView;
  readonly #worker: Worker;
  readonly #workerExit: Promise<void>;
  #cur = 0;
  #state: ReadState;
  #pausedWaiter: (() => void) | undefined;
  #transition: Promise<void> = Promise.resolve();
  #teardownDone: Promise<void> | undefined;
  #resolveEnded!: (end: SessionEnd) => void;
  /** Resolves when the session stops serving for good (the daemon exits on unmounted/aborted). */
  readonly ended: Promise<SessionEnd>;

  private constructor(fd: number, mountpoint: string, connId: number, fs: FileSystem, opts: SessionOptions, slotSize: number, init: InitParams | undefined, paused: boolean) {
    this.#fd = fd;
    this.mountpoint = mountpoint;
    this.connId = connId;
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#server = new ProtocolServer(fs, { writev: (bufs) => (this.#fd < 0 ? -E.ENODEV : native().writev(this.#fd, bufs)) }, opts);
    if (init) this.#server.restore(init);
    const addon = native();
    addon.setNonBlocking(fd, true); // shared by every dup: our reads always poll first
    this.#wakeFd = addon.eventfd();
    const slots = Math.max(2, Math.min(opts.slots ?? 16, 256));
    const sab = RingView.create(slots, slotSize, paused ? Cmd.PAUSE : Cmd.RUN);
    this.#ring = new RingView(sab, slots, slotSize);
    this.#state = paused ? 'pausing' : 'running';
    if (paused) {
      this.#transition = new Promise((resolve) => {
        this.#pausedWaiter = () => {
          if (this.#state === 'pausing') this.#state = 'paused';
          resolve();
        };
      });
    }
    const data: RingInit = { fd, wakeFd: this.#wakeFd, sab, slots, slotSize };
    this.#worker = startReader(data);
    this.#workerExit = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.on('message', (ev: WorkerEvent) => this.#onWorker(ev));
    this.#worker.on('error', (error) => void this.#teardown({ reason: 'failed', error }));
    this.#pump();
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
      const slotSize = requestBufferSize(opts.init?.maxWrite ?? 128 * 1024);
      session = new FuseSession(fd, path, connectionId(info.major, info.minor), fs, opts, slotSize, undefined, false);
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
    const session = new FuseSession(fd, state.mountpoint, state.connId, fs, opts, requestBufferSize(init.maxWrite), init, !start);
    if (!start) await session.#transition;
    return session;
  }

  /** Negotiated INIT parameters. */
  get initParams(): InitParams | undefined {
    return this.#server.initParams;
  }

  /** True while the reader takes requests from the kernel. */
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
      const paused = new Promise<void>((resolve) => (this.#pausedWaiter = resolve));
      this.#state = 'pausing';
      Atomics.store(this.#ring.ctl, CMD_INDEX, Cmd.PAUSE);
      native().eventfdSignal(this.#wakeFd);
      this.#ring.wakeAll();
      await Promise.race([paused, this.ended]);
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
      Atomics.store(this.#ring.ctl, CMD_INDEX, Cmd.RUN);
      Atomics.notify(this.#ring.ctl, CMD_INDEX);
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

  /** Serves every filled slot, in order, and frees it. */
  #drain(): void {
    const { ctl, lens, bufs, slots } = this.#ring;
    for (;;) {
      const idx = RingView.stateIndex(this.#cur);
      if (Atomics.load(ctl, idx) !== Slot.FILLED) return;
      this.#server.handle(bufs[this.#cur], lens[this.#cur]);
      Atomics.store(ctl, idx, Slot.FREE);
      Atomics.notify(ctl, idx);
      this.#cur = (this.#cur + 1) % slots;
    }
  }

  /**
   * Drains the ring, then announces it goes idle (SLEEP = 1) so the worker
   * posts a 'kick' for the next request. The re-check closes the race with a
   * request published just before the announcement.
   */
  #pump(): void {
    const ctl = this.#ring.ctl;
    while (this.#state !== 'closed') {
      this.#drain();
      Atomics.store(ctl, SLEEP_INDEX, 1);
      if (Atomics.load(ctl, RingView.stateIndex(this.#cur)) !== Slot.FILLED) return;
      // Something arrived meanwhile: take the flag back, unless the worker took it (then a kick is coming).
      if (Atomics.exchange(ctl, SLEEP_INDEX, 0) === 0) return;
    }
  }

  #onWorker(ev: WorkerEvent): void {
    if (ev.type === 'kick') return this.#pump();
    this.#drain();
    if (ev.type === 'paused') {
      const waiter = this.#pausedWaiter;
      this.#pausedWaiter = undefined;
      waiter?.();
      return;
    }
    const reason = ev.type === 'failed' ? 'failed' : ev.errno === E.ECONNABORTED ? 'aborted' : 'unmounted';
    void this.#teardown({ reason, errno: ev.errno });
  }

  #teardown(end: SessionEnd): Promise<void> {
    this.#teardownDone ??= (async () => {
      this.#state = 'closed';
      Atomics.store(this.#ring.ctl, CMD_INDEX, Cmd.EXIT);
      try {
        native().eventfdSignal(this.#wakeFd);
      } catch {
        // The worker is gone already.
      }
      this.#ring.wakeAll();
      await this.#workerExit;
      const fd = this.#fd;
      this.#fd = -1;
      closeFd(fd);
      closeFd(this.#wakeFd);
      this.#pausedWaiter?.();
      this.#resolveEnded(end);
    })();
    return this.#teardownDone;
  }

  #closedError(what: string): FuseError {
    return new FuseError('ERR_FUSE_SESSION', `failed to ${what}: the FUSE session on ${this.mountpoint} is closed`);
  }
}
