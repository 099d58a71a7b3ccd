// The FUSE side of the lifecycle: the effects the machine's actors stand for, over one
// transport. mountSession mounts and negotiates INIT, then stops reading so that READY
// really has no reader (upstream starts its workers only at Start); startService and
// stopService resume and pause reading; unmountSession unmounts. fuse-native cannot
// pause (libfuse owns its loop): there start/stop/interrupt are no-ops and the mount
// serves from mount to unmount. For a hot upgrade it hands out its session state and a
// dup of the fd, and holds a connection handed over by a predecessor (read from START).
// A connection the kernel ends on its own (umount -l, abort) is reported once through onLost.
import { DaemonError, FuseError } from '../errors.js';
import type { FileSystem } from '../fuse/filesystem.js';
import { FuseSession, type SessionEnd, type SessionOptions, type SessionState } from '../fuse/session.js';
import { mountTransport, resumeTransport, type FuseImpl, type FuseTransport } from '../fuse/transport.js';
import type { InflightRequest } from '../fuse/protocol-server.js';
import type { KernelNotifier } from '../fs/pseudo-fs.js';
import type { ActorEffects } from './lifecycle.js';

/** How long a cache invalidation may take before the caller stops waiting for it. */
const NOTIFY_TIMEOUT_MS = 2000;

export interface FuseServiceOptions {
  mountpoint: string;
  impl: FuseImpl;
  fs: FileSystem;
  session: SessionOptions;
  /** The kernel ended the connection without being asked (umount -l, abort). */
  onLost(end: SessionEnd): void;
  /** The session is mounted: invalidations can go to the kernel now. */
  onNotifier(notifier: KernelNotifier | undefined): void;
}

function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Owns the daemon's FUSE transport. */
export class FuseService {
  readonly #opts: FuseServiceOptions;
  #transport: FuseTransport | undefined;
  /** Set once we unmount or close on purpose: the end that follows is not a loss. */
  #leaving = false;
  #ended = false;
  /**
   * Invalidations asked for while nobody reads /dev/fuse (READY): the kernel may hold the
   * inode lock they need for a request queued behind them, and the write would block a
   * threadpool thread until START. They are sent once reading resumes.
   */
  #deferred: (() => Promise<void>)[] = [];
  /** The failover policy's drain, run once before an inherited connection is first read. */
  #drain: ((t: FuseTransport) => Promise<void>) | undefined;

  constructor(opts: FuseServiceOptions) {
    this.#opts = opts;
  }

  get transport(): FuseTransport | undefined {
    return this.#transport;
  }

  /** In-flight requests (empty before mount and for fuse-native). */
  inflight(): InflightRequest[] {
    return this.#transport?.inflight() ?? [];
  }

  /** The machine's session effects for this transport (restoreState is the upgrade manager's, which calls resume()). */
  effects(): Pick<ActorEffects, 'mountSession' | 'startService' | 'stopService' | 'interruptService' | 'unmountSession'> {
    const pausable = (): FuseTransport | undefined => (this.#ended || !this.#transport?.canHandOver ? undefined : this.#transport);
    return {
      mountSession: async (_input, signal) => {
        signal.throwIfAborted();
        const t = await mountTransport(this.#opts.impl, this.#opts.fs, this.#opts.mountpoint, this.#opts.session);
        this.#install(t);
        if (t.canHandOver) await t.stopReading();
        return { connId: t.connId ?? null };
      },
      startService: async (_input, signal) => {
        signal.throwIfAborted();
        const drain = this.#drain;
        this.#drain = undefined;
        const t = pausable();
        if (drain !== undefined && t !== undefined) await drain(t);
        await t?.resumeReading();
        const jobs = this.#deferred;
        this.#deferred = [];
        await Promise.all(jobs.map((job) => within(job(), NOTIFY_TIMEOUT_MS).catch(() => undefined)));
      },
      stopService: async () => {
        await pausable()?.stopReading();
      },
      interruptService: async () => {
        await pausable()?.stopReading();
      },
      unmountSession: async () => {
        const t = this.#transport;
        if (t === undefined || this.#ended) return;
        this.#leaving = true;
        try {
          await t.unmount();
        } catch (err) {
          this.#leaving = false;
          throw err;
        }
      },
    };
  }

  /** Kernel cache invalidations through the /dev/fuse session (none for fuse-native). */
  #notifier(t: FuseTransport): KernelNotifier | undefined {
    const session = (t as { session?: unknown }).session;
    if (!(session instanceof FuseSession)) return undefined;
    const send = async (job: () => Promise<void>): Promise<void> => {
      if (!session.reading) {
        this.#deferred.push(job);
        return;
      }
      await within(job(), NOTIFY_TIMEOUT_MS);
    };
    return {
      invalEntry: (parent, name) => send(() => session.notifyInvalEntry(parent, name)),
      invalInode: (nodeId) => send(() => session.notifyInvalInode(nodeId, 0, 0)),
    };
  }

  /**
   * Holds a connection a predecessor handed over (a /dev/fuse `fd`, owned from now on, and
   * the session state it exported) without reading it: reading starts at START, after
   * `drain` (the failover policy) has run. fusedev only.
   */
  async resume(fd: number, state: SessionState, drain: (t: FuseTransport) => Promise<void>): Promise<FuseTransport> {
    if (this.#opts.impl !== 'fusedev') {
      throw new FuseError('ERR_FUSE_NOT_IMPLEMENTED', `failed to take over: the ${this.#opts.impl} transport cannot serve an inherited FUSE connection; use --fuse-impl fusedev`);
    }
    if (this.#transport !== undefined) throw new DaemonError('ERR_DAEMON_UPGRADE', 'failed to take over: this daemon already holds a FUSE connection');
    const t = await resumeTransport(fd, state, this.#opts.fs, { ...this.#opts.session, start: false });
    this.#drain = drain;
    this.#install(t);
    return t;
  }

  /**
   * What a supervisor keeps for a successor: the session state and a dup of the /dev/fuse
   * fd (the caller closes it). ERR_DAEMON_NOT_READY before a connection is held or after it
   * ended; fuse-native refuses (ERR_FUSE_NOT_IMPLEMENTED).
   */
  handOver(): { session: SessionState; fd: number } {
    const t = this.#transport;
    if (t === undefined || this.#ended) throw new DaemonError('ERR_DAEMON_NOT_READY', 'failed to send the FUSE fd: no live FUSE connection (FUSE INIT has not completed)');
    const session = t.exportState();
    return { session, fd: t.dupFd() };
  }

  #install(t: FuseTransport): void {
    this.#transport = t;
    void t.ended.then((end) => {
      this.#ended = true;
      this.#opts.onNotifier(undefined);
      if (!this.#leaving) this.#opts.onLost(end);
    });
    this.#opts.onNotifier(this.#notifier(t));
  }

  /** Stops serving without unmounting (after exit: the connection stays for a successor or dies with us). */
  async release(): Promise<void> {
    const t = this.#transport;
    if (t === undefined || this.#ended || !t.canHandOver) return;
    this.#leaving = true;
    await t.close().catch(() => undefined);
  }
}
