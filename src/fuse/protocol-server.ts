// Transport-neutral FUSE dispatch: takes one request frame, decodes it in
// place, serves it from the FileSystem through the opcode registry and
// writes the reply through a ReplyWriter. It keeps the in-flight table
// (for metrics, INTERRUPT and draining before a handover), negotiates INIT or
// restores saved InitParams, and never lets a failing handler stop the
// session: unexpected errors answer EIO and are reported through onError.
import { constants } from 'node:os';
import { FuseError, NydusError, toErrno } from '../errors.js';
import { Opcode, Size } from './abi.js';
import { BufferPool } from '../util/buffer-pool.js';
import type { FileSystem, MaybePromise } from './filesystem.js';
import { negotiateInit, validateInitParams, type InitOptions, type InitParams } from './init.js';
import { OPCODES, isPromise, type Dispatcher } from './opcodes.js';
import { Replier, type CacheTimeouts, type ReplyWriter } from './reply.js';
import { FuseRequest, frameLength, readU64, uniqueKey } from './request.js';

const E = constants.errno;

/** One request the kernel is waiting on (GET /api/v1/metrics/inflight). */
export interface InflightRequest {
  unique: number;
  opcode: number;
  nodeid: number;
  /** When it was received, ms since the epoch. */
  startTime: number;
}

/** Called once per request served: errno 0 on success, payload bytes written. */
export type CompletionHook = (opcode: number, nodeid: number, errno: number, latencyNs: number, bytes: number) => void;

export interface ProtocolOptions {
  init?: InitOptions;
  /** Kernel cache lifetimes in seconds (defaults: entry 1, attr 1, negative 0). */
  timeouts?: Partial<CacheTimeouts>;
  onComplete?: CompletionHook;
  /** Unexpected handler failures (answered EIO) and failed reply writes. */
  onError?: (err: unknown, opcode: number, nodeid: number) => void;
  onInit?: (params: InitParams) => void;
  onDestroy?: () => void;
}

/** Serves FUSE requests for one connection. */
export class ProtocolServer implements Dispatcher {
  readonly fs: FileSystem;
  readonly reply: Replier;
  readonly pool = new BufferPool();
  readonly #opts: ProtocolOptions;
  readonly #inflight = new Map<number, FuseRequest>();
  #init: InitParams | undefined;
  #idleWaiters: (() => void)[] = [];
  #initWaiters: ((p: InitParams) => void)[] = [];

  constructor(fs: FileSystem, writer: ReplyWriter, opts: ProtocolOptions = {}) {
    this.fs = fs;
    this.#opts = opts;
    this.reply = new Replier(writer, { entry: 1, attr: 1, negative: 0, ...opts.timeouts });
    this.reply.onWriteError = (errno, req) => {
      const err = new FuseError('ERR_FUSE_SESSION', `failed to write reply: errno ${-errno}`);
      this.#opts.onError?.(err, req?.opcode ?? 0, req?.nodeid ?? 0);
    };
  }

  /** The negotiated (or restored) parameters; undefined before INIT. */
  get initParams(): InitParams | undefined {
    return this.#init;
  }

  /** Adopts parameters saved by the process that negotiated INIT on this connection. */
  restore(params: InitParams): void {
    this.#setInit(validateInitParams(params));
  }

  /** Resolves once INIT was negotiated or restored. */
  whenInitialized(): Promise<InitParams> {
    if (this.#init) return Promise.resolve(this.#init);
    return new Promise((resolve) => this.#initWaiters.push(resolve));
  }

  /** Requests read but not yet answered. */
  get pending(): number {
    return this.#inflight.size;
  }

  /** Snapshot of the in-flight table. */
  inflight(): InflightRequest[] {
    const out: InflightRequest[] = [];
    for (const r of this.#inflight.values()) {
      out.push({ unique: r.unique, opcode: r.opcode, nodeid: r.nodeid, startTime: r.startTime });
    }
    return out;
  }

  /** Resolves when no request is waiting for a reply. */
  idle(): Promise<void> {
    if (this.#inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Serves one frame of `n` bytes. Everything the handler needs is decoded
   * before this returns, so the caller may reuse `buf` at once.
   */
  handle(buf: Buffer, n: number): void {
    if (frameLength(buf, n) < 0) {
      this.#opts.onError?.(new FuseError('ERR_FUSE_PROTOCOL', `failed to decode request: frame of ${n} bytes`), 0, 0);
      return;
    }
    const req = new FuseRequest(buf, Date.now(), performance.now());
    const info = OPCODES.get(req.opcode);
    if (!info || info.replies) this.#inflight.set(req.key, req);
    if (!info) return this.fail(req, E.ENOSYS);
    if (info.modifying) return this.fail(req, E.EROFS);
    if (!info.handler) return this.fail(req, E.ENOSYS);
    if (n - Size.IN_HEADER < info.minBody) {
      if (info.replies) this.fail(req, E.EINVAL);
      return;
    }
    try {
      info.handler(this, req, buf, n);
    } catch (err) {
      this.#failWith(req, err);
    }
  }

  call<T>(req: FuseRequest, invoke: () => MaybePromise<T>, ok: (value: T) => number): void {
    let r: MaybePromise<T>;
    try {
      r = invoke();
    } catch (err) {
      return this.#failWith(req, err);
    }
    if (isPromise(r)) {
      r.then(
        (v) => this.#succeed(req, ok, v),
        (err: unknown) => this.#failWith(req, err),
      );
    } else {
      this.#succeed(req, ok, r);
    }
  }

  fail(req: FuseRequest, errno: number): void {
    if (req.done) return;
    this.reply.error(req, errno);
    this.#finish(req, errno, 0);
  }

  control(req: FuseRequest, body: Buffer): void {
    switch (req.opcode) {
      case Opcode.INIT:
        return this.#handleInit(req, body);
      case Opcode.INTERRUPT: {
        // Interrupts come after the request they target (the kernel only
        // interrupts requests already read); an unknown target is finished.
        const target = this.#inflight.get(uniqueKey(body.readUInt32LE(0), body.readUInt32LE(4)));
        if (target && !target.done) {
          target.interrupt();
          this.fail(target, E.EINTR);
        }
        return this.#noReply(req);
      }
      case Opcode.DESTROY:
        this.#safely(req, () => this.fs.destroy?.());
        this.reply.ok(req);
        this.#finish(req, 0, 0);
        this.#opts.onDestroy?.();
        return;
      case Opcode.FORGET: {
        const nlookup = readU64(body, 0);
        this.#safely(req, () => this.fs.forget?.(req.nodeid, nlookup));
        return this.#noReply(req);
      }
      case Opcode.BATCH_FORGET: {
        const count = Math.min(body.readUInt32LE(0), Math.floor((body.length - Size.BATCH_FORGET_IN) / Size.FORGET_ONE));
        for (let i = 0, off = Size.BATCH_FORGET_IN; i < count; i++, off += Size.FORGET_ONE) {
          const ino = readU64(body, off);
          const nlookup = readU64(body, off + 8);
          this.#safely(req, () => this.fs.forget?.(ino, nlookup));
        }
        return this.#noReply(req);
      }
      default:
        return this.fail(req, E.ENOSYS);
    }
  }

  #handleInit(req: FuseRequest, body: Buffer): void {
    const out = negotiateInit(body, { readdirplus: typeof this.fs.readdirplus === 'function' }, this.#opts.init);
    if (out.kind === 'error') return this.fail(req, out.errno);
    if (out.kind === 'ok') this.reply.minor = out.params.minor;
    this.reply.bytes(req, out.reply);
    this.#finish(req, 0, out.reply.length);
    if (out.kind === 'ok') {
      this.#setInit(out.params);
      this.#opts.onInit?.(out.params);
    }
  }

  #setInit(params: InitParams): void {
    this.#init = params;
    this.reply.minor = params.minor;
    const waiters = this.#initWaiters;
    this.#initWaiters = [];
    for (const w of waiters) w(params);
  }

  #succeed<T>(req: FuseRequest, ok: (value: T) => number, value: T): void {
    if (req.done) return;
    let n: number;
    try {
      n = ok(value);
    } catch (err) {
      return this.#failWith(req, err);
    }
    if (!req.done) this.#finish(req, 0, n > Size.OUT_HEADER ? n - Size.OUT_HEADER : 0);
  }

  #failWith(req: FuseRequest, err: unknown): void {
    if (!(err instanceof NydusError) && typeof (err as NodeJS.ErrnoException | undefined)?.code !== 'string') {
      this.#opts.onError?.(err, req.opcode, req.nodeid);
    }
    this.fail(req, toErrno(err));
  }

  #safely(req: FuseRequest, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#opts.onError?.(err, req.opcode, req.nodeid);
    }
  }

  #noReply(req: FuseRequest): void {
    req.done = true;
    this.#opts.onComplete?.(req.opcode, req.nodeid, 0, Math.round((performance.now() - req.startHr) * 1e6), 0);
  }

  #finish(req: FuseRequest, errno: number, bytes: number): void {
    req.done = true;
    const key = req.key;
    if (this.#inflight.get(key) === req) this.#inflight.delete(key);
    this.#opts.onComplete?.(req.opcode, req.nodeid, errno, Math.round((performance.now() - req.startHr) * 1e6), bytes);
    if (this.#inflight.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
