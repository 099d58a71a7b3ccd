// Hot upgrade and failover of one daemon (upstream's UpgradeManager, service/src/upgrade.rs):
// `save` sends the daemon state and a dup of the /dev/fuse fd to the supervisor (sendfd);
// `restore` (the restoreState actor of a takeover) receives them, rebuilds the image mounts
// at the same indexes, so every node id the kernel holds stays valid, and holds the
// inherited connection until START, which first drains it by the failover policy.
// Supervisor socket bytes are the addon's (src/native); the state format is upgrade-state.ts.
import { fstat, stat } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { SessionOutput } from '../../machines/daemon.js';
import { withoutObjectStorageKeys } from '../config/derive.js';
import { DaemonError, FuseError, type NydusError } from '../errors.js';
import type { PseudoFs } from '../fs/pseudo-fs.js';
import { connectionId, findMount, writeConnectionControl } from '../fuse/mount-linux.js';
import type { FuseImpl, FuseTransport } from '../fuse/transport.js';
import { closeFd, receiveStateWithFd, sendStateWithFd } from '../native/index.js';
import { buildInfo } from '../util/build-info.js';
import type { Logger } from '../util/logger.js';
import type { FuseService } from './fuse-service.js';
import type { JournalSink } from './journal-sink.js';
import { replay, type MountEntry, type MountSpec } from './journal.js';
import { openMount, type DaemonMount, type MountEnv } from './mounts.js';
import { decodeDaemonState, encodeDaemonState, type DaemonState, type SavedMount } from './upgrade-state.js';

/** `--failover-policy`: what a takeover does with requests a dead predecessor had read (docs/contract.md §5.3). */
export type FailoverPolicy = 'none' | 'resend' | 'flush';

/** How long a transfer on the supervisor socket may take (the snapshotter's listener lives 10 s). */
const SUPERVISOR_TIMEOUT_MS = 10_000;
/** How often a successor tries to take the journal over once it has taken over the connection. */
const ATTACH_RETRY_MS = 200;

/** What the upgrade manager works on: the controller's parts. */
export interface UpgradeHost {
  /** Host path of the FUSE mount. */
  readonly mountpoint: string;
  readonly supervisor: string | null;
  readonly id: string | null;
  readonly failoverPolicy: FailoverPolicy;
  readonly fuseImpl: FuseImpl;
  readonly pseudoFs: PseudoFs<DaemonMount>;
  readonly fuse: FuseService;
  readonly sink: JournalSink;
  readonly env: MountEnv;
  readonly logger: Logger;
  /** Runs `fn` in the controller's one-at-a-time chain of state changes. */
  serialise<T>(fn: () => Promise<T>): Promise<T>;
}

/** A mount table to rebuild, and where it came from. */
interface Table {
  from: 'state' | 'journal';
  mounts: MountSpec[];
  nextIndex: number;
}

const upgradeError = (what: string, options?: { cause?: unknown }) => new DaemonError('ERR_DAEMON_UPGRADE', what, options);

function savedMount(m: DaemonMount): SavedMount {
  return { mountpoint: m.mountpoint, source: m.source, config: m.configText, fsType: m.fsType, prefetchFiles: m.prefetchFiles, index: m.index };
}

/** A mount as the journal stores it: without object storage keys (derive.ts). */
function journaledMount(m: DaemonMount): SavedMount {
  return { ...savedMount(m), config: withoutObjectStorageKeys(m.configText) };
}

function sameMount(m: DaemonMount, e: MountEntry): boolean {
  return (
    m.source === e.source &&
    withoutObjectStorageKeys(m.configText) === e.config &&
    m.fsType === e.fsType &&
    m.index === e.index &&
    JSON.stringify(m.prefetchFiles) === JSON.stringify(e.prefetchFiles)
  );
}

/**
 * The config to rebuild a journaled mount from: the journal lacks object storage keys, so
 * the supervisor's copy of the same mount (which has them) wins when it is the same config.
 */
function withStateKeys(config: string, mountpoint: string, state: readonly SavedMount[]): string {
  const saved = state.find((s) => s.mountpoint === mountpoint);
  return saved !== undefined && withoutObjectStorageKeys(saved.config) === config ? saved.config : config;
}

/**
 * The failover policy, run on an inherited connection before it is first read:
 * `resend` asks the kernel to re-queue requests a dead predecessor read but never answered
 * (FUSE_NOTIFY_RESEND, else the connection's `resend` control file), `flush` writes its
 * `flush` control file, `none` does nothing. Upstream only warns when this fails; so do we.
 */
export async function drainRequests(t: FuseTransport, policy: FailoverPolicy, logger: Logger): Promise<void> {
  if (policy === 'none') return;
  const conn = t.connId ?? -1;
  try {
    if (policy === 'flush') {
      await writeConnectionControl(conn, 'flush');
    } else {
      try {
        await t.notifyResend();
      } catch (err) {
        logger.debug(`upgrade: FUSE_NOTIFY_RESEND failed (${(err as Error).message}); trying the resend control file`);
        await writeConnectionControl(conn, 'resend');
      }
    }
    logger.info(`upgrade: failover policy ${policy} applied to FUSE connection ${conn}`);
  } catch (err) {
    logger.warn(`upgrade: failed to apply failover policy ${policy} to FUSE connection ${conn}: ${(err as Error).message}; serving anyway`);
  }
}

/** Fails unless `fd` is an open /dev/fuse (a supervisor may hand over anything). */
async function checkFuseDevice(fd: number): Promise<void> {
  const [mine, dev] = await Promise.all([promisify(fstat)(fd), promisify(stat)('/dev/fuse')]).catch((err: Error) => {
    throw upgradeError(`failed to take over: cannot stat the received fd ${fd}: ${err.message}`, { cause: err });
  });
  if (!mine.isCharacterDevice() || mine.rdev !== dev.rdev) throw upgradeError('failed to take over: the supervisor sent an fd that is not /dev/fuse');
}

/** Save and restore for one daemon. */
export class UpgradeManager {
  readonly #host: UpgradeHost;
  #awaiting: boolean;
  /** A restore rebuilt mounts the journal does not describe yet (written once the journal is ours). */
  #reconcile = false;
  #attachTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Where the journal stood when this daemon opened it: the predecessor's last record. */
  readonly #seqAtStart: number | null;

  /** `awaitingTakeover`: started with --upgrade, or after a crashed predecessor. Create before anything is journaled. */
  constructor(host: UpgradeHost, awaitingTakeover: boolean) {
    this.#host = host;
    this.#awaiting = awaitingTakeover;
    this.#seqAtStart = host.sink.deferred ? null : host.sink.state.lastSeq;
  }

  /** True from an upgrade or failover start until a takeover succeeded: the mounts will come from the predecessor. */
  get awaitingTakeover(): boolean {
    return this.#awaiting;
  }

  /**
   * sendfd: the state and a dup of the /dev/fuse fd to the supervisor. ERR_DAEMON_NOT_READY
   * (503) before FUSE INIT; ERR_DAEMON_UPGRADE (500) without --supervisor or when the
   * transfer fails. Call inside the controller's chain, so the mount table holds still.
   */
  async save(): Promise<void> {
    const { fuse, sink, pseudoFs, logger } = this.#host;
    const { session, fd } = fuse.handOver();
    try {
      const sock = this.#supervisor('send the daemon state');
      // A successor writes the journal once its predecessor let go: the position is then real.
      if (sink.deferred) await this.#tryAttach();
      const mounts = pseudoFs.mounts().map(savedMount);
      const bytes = encodeDaemonState({
        daemon: { id: this.#host.id, pid: process.pid, build: `${buildInfo().package_ver} (${buildInfo().git_commit})`, savedAt: new Date().toISOString() },
        fuse: session,
        mounts,
        nextIndex: pseudoFs.nextIndex,
        journal: { dir: resolve(sink.dir), seq: sink.deferred ? null : sink.state.lastSeq },
      });
      await sendStateWithFd(sock, bytes, fd, { timeoutMs: SUPERVISOR_TIMEOUT_MS });
      logger.info(`upgrade: sent the state (${mounts.length} mounts, ${bytes.length} bytes) and the FUSE fd of connection ${session.connId} to ${sock}`);
    } finally {
      closeFd(fd);
    }
  }

  /**
   * The restoreState actor: receive state and fd from the supervisor, rebuild the mounts,
   * hold the connection (READY; read from START). Any failure leaves nothing behind: the fd
   * is closed, no mount stays, the daemon returns to INIT, and whoever serves goes on.
   */
  async restore(): Promise<SessionOutput> {
    const { fuse, pseudoFs, logger } = this.#host;
    const sock = this.#supervisor('take over');
    // Refused before the supervisor's one transfer is spent on a daemon that cannot use it.
    if (this.#host.fuseImpl !== 'fusedev') {
      throw new FuseError('ERR_FUSE_NOT_IMPLEMENTED', `failed to take over: the ${this.#host.fuseImpl} transport cannot serve an inherited FUSE connection; use --fuse-impl fusedev`);
    }
    if (pseudoFs.mounts().length > 0) throw upgradeError(`failed to take over: ${pseudoFs.mounts().length} image mounts exist already; a takeover rebuilds the predecessor's`);
    const started = performance.now();
    const got = await receiveStateWithFd(sock, { timeoutMs: SUPERVISOR_TIMEOUT_MS });
    const [fd, ...extra] = got.fds;
    for (const e of extra) closeFd(e);
    if (extra.length > 0) logger.warn(`upgrade: the supervisor sent ${got.fds.length} fds; using the first`);
    let owned = true;
    try {
      const state = decodeDaemonState(got.data);
      await checkFuseDevice(fd);
      await this.#checkConnection(state);
      const table = await this.#chooseTable(state);
      const mounts = await this.#openAll(table);
      try {
        await fuse.resume(fd, state.fuse, (t) => drainRequests(t, this.#host.failoverPolicy, logger));
        owned = false;
      } catch (err) {
        for (const m of mounts) {
          pseudoFs.detach(m.mountpoint);
          await m.storage.close().catch(() => undefined);
        }
        throw err;
      }
      this.#awaiting = false;
      this.#reconcile = true;
      logger.info(
        `upgrade: took over FUSE connection ${state.fuse.connId} at ${state.fuse.mountpoint} in ${Math.round(performance.now() - started)} ms from pid ${state.daemon.pid} ` +
          `(${state.daemon.build}, saved ${state.daemon.savedAt}); ${mounts.length} mounts from the ${table.from}: ${mounts.map((m) => `${m.mountpoint} (index ${m.index})`).join(', ')}`,
      );
      if (!(await this.#tryAttach())) this.#retryAttach();
      return { connId: state.fuse.connId };
    } finally {
      if (owned) closeFd(fd);
    }
  }

  /**
   * Takes the journal over now if a predecessor held it and has left (at START, when both
   * supervisor orders have ended the predecessor); otherwise the retry timer goes on.
   * Call inside the controller's chain.
   */
  async claimJournal(): Promise<void> {
    if (this.#host.sink.deferred && !this.#closed && (await this.#tryAttach())) clearTimeout(this.#attachTimer);
  }

  /** Stops retrying to take the journal over (the daemon is closing). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#attachTimer);
  }

  #supervisor(what: string): string {
    const sock = this.#host.supervisor;
    if (sock === null) throw upgradeError(`failed to ${what}: no supervisor socket (start nydusd with --supervisor and --id)`);
    return sock;
  }

  /** The state must be for this daemon's mount, and that mount must carry the state's connection. */
  async #checkConnection(state: DaemonState): Promise<void> {
    const mp = this.#host.mountpoint;
    if (state.fuse.mountpoint !== mp) throw upgradeError(`failed to take over: the state is for the FUSE mount at ${state.fuse.mountpoint}, this daemon serves ${mp}`);
    const m = await findMount(mp);
    if (m === undefined || !m.fstype.startsWith('fuse')) throw upgradeError(`failed to take over: ${mp} carries no FUSE mount any more`);
    const conn = connectionId(m.major, m.minor);
    if (conn !== state.fuse.connId) throw upgradeError(`failed to take over: the state is for FUSE connection ${state.fuse.connId} but ${mp} carries connection ${conn}`);
  }

  /**
   * The state or the journal, whichever is newer. Both describe the predecessor's mounts;
   * the journal is fsync'd before every mount change is answered, so when it is the same
   * journal (same directory) and has reached the state's position, it is at least as new.
   * A journal that is elsewhere, unreadable, or behind the state (replaced or rolled back)
   * loses to the state.
   */
  async #chooseTable(state: DaemonState): Promise<Table> {
    const { sink, logger } = this.#host;
    const fromState: Table = { from: 'state', mounts: state.mounts, nextIndex: state.nextIndex };
    if (state.journal.seq === null || resolve(state.journal.dir) !== resolve(sink.dir)) return fromState;
    let journal;
    try {
      journal = sink.deferred ? await replay(sink.dir) : sink.state;
    } catch (err) {
      logger.warn(`upgrade: cannot read the journal in ${sink.dir} (${(err as NydusError).message}); using the supervisor's state`);
      return fromState;
    }
    // Records this daemon appended since (the TAKEOVER event) say nothing of the predecessor.
    const seq = sink.deferred ? journal.lastSeq : (this.#seqAtStart ?? 0);
    if (seq < state.journal.seq) {
      logger.warn(`upgrade: the journal in ${sink.dir} ends at seq ${seq}, before the state's ${state.journal.seq}; using the supervisor's state`);
      return fromState;
    }
    const mounts = [...journal.mounts].map(([mountpoint, e]) => ({
      mountpoint,
      source: e.source,
      config: withStateKeys(e.config, mountpoint, state.mounts),
      fsType: e.fsType,
      prefetchFiles: e.prefetchFiles,
      index: e.index,
    }));
    const changed = JSON.stringify(mounts.map((m) => [m.mountpoint, m.index]).sort()) !== JSON.stringify(state.mounts.map((m) => [m.mountpoint, m.index]).sort());
    if (changed) logger.info(`upgrade: the journal (seq ${seq}) has mount changes made after the state was saved (seq ${state.journal.seq}); using the journal`);
    return { from: 'journal', mounts, nextIndex: Math.max(journal.nextIndex, state.nextIndex) };
  }

  /** Opens and attaches every mount of `table` (saved indexes first); on failure nothing stays. */
  async #openAll(table: Table): Promise<DaemonMount[]> {
    const { pseudoFs, env } = this.#host;
    const ordered = [...table.mounts.filter((m) => m.index !== null), ...table.mounts.filter((m) => m.index === null)];
    const done: DaemonMount[] = [];
    try {
      pseudoFs.nextIndex = table.nextIndex;
      for (const spec of ordered) {
        const cmd = { source: spec.source, fs_type: spec.fsType, config: spec.config, prefetch_files: spec.prefetchFiles };
        let m: DaemonMount;
        try {
          m = await openMount(spec.mountpoint, spec.index ?? pseudoFs.allocateIndex(), cmd, env);
        } catch (err) {
          throw upgradeError(`failed to take over: cannot rebuild the mount at ${spec.mountpoint} from ${spec.source}: ${(err as Error).message}`, { cause: err });
        }
        try {
          await pseudoFs.attach(m);
        } catch (err) {
          await m.storage.close().catch(() => undefined);
          throw err;
        }
        done.push(m);
      }
      pseudoFs.nextIndex = Math.max(pseudoFs.nextIndex, table.nextIndex);
      return done;
    } catch (err) {
      for (const m of done) {
        pseudoFs.detach(m.mountpoint);
        await m.storage.close().catch(() => undefined);
      }
      throw err;
    }
  }

  /**
   * Takes the journal over once the predecessor released it, then records the mount table
   * this daemon serves where the journal says otherwise. False while the predecessor lives.
   */
  async #attach(): Promise<boolean> {
    const { sink, pseudoFs, logger } = this.#host;
    if (sink.deferred) {
      try {
        await sink.attach();
      } catch (err) {
        if (err instanceof DaemonError && typeof err.detail?.holder === 'number') return false;
        logger.error(`upgrade: cannot write the journal in ${sink.dir}: ${(err as Error).message}; its records stay in memory`);
        this.close();
        return false;
      }
      // Indexes the predecessor allocated after the state was taken are journaled: never reuse them.
      pseudoFs.nextIndex = Math.max(pseudoFs.nextIndex, sink.state.nextIndex);
      logger.info(`upgrade: the predecessor released the journal in ${sink.dir}; writing it from now on`);
    }
    if (!this.#reconcile) return true;
    this.#reconcile = false;
    const served = new Map(pseudoFs.mounts().map((m) => [m.mountpoint, m]));
    for (const [mp, e] of sink.state.mounts) {
      const m = served.get(mp);
      if (m === undefined || !sameMount(m, e)) await sink.append({ type: 'umount', mountpoint: mp });
    }
    for (const m of served.values()) {
      if (!sink.state.mounts.has(m.mountpoint)) await sink.append({ type: 'mount', ...journaledMount(m) });
    }
    return true;
  }

  /** #attach that never throws: a journal that fails must not undo a takeover that worked. True: stop trying. */
  async #tryAttach(): Promise<boolean> {
    try {
      return await this.#attach();
    } catch (err) {
      this.#host.logger.error(`upgrade: failed to journal the mount table after the takeover: ${(err as Error).message}`);
      return true;
    }
  }

  #retryAttach(): void {
    if (this.#closed) return;
    this.#attachTimer = setTimeout(() => {
      void this.#host.serialise(() => this.#tryAttach()).then((done) => done || this.#retryAttach());
    }, ATTACH_RETRY_MS);
    this.#attachTimer.unref();
  }
}

