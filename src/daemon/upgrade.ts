// Hot upgrade and failover of one daemon (upstream's UpgradeManager, service/src/upgrade.rs):
// `save` (the sendFd actor) sends the daemon state and a dup of the /dev/fuse fd to the
// supervisor; `restore` (the restoreState actor of a takeover) receives them, rebuilds the
// image mounts at the same indexes, so every node id the kernel holds stays valid, and the
// config store, and holds the inherited connection until START, which first drains it by
// the failover policy. Whether the journal is still the predecessor's and whether this
// daemon restored are the lifecycle machine's (UpgradeMachine); the parts it works on come
// through narrow interfaces.
// Supervisor socket bytes are the addon's (src/native); the state format is upgrade-state.ts.
import { fstat, stat } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { DaemonContext, RestoreOutput } from '../../machines/daemon.js';
import { withoutObjectStorageKeys } from '../config/derive.js';
import { DaemonError, FuseError, type NydusError } from '../errors.js';
import { connectionId, findMount, writeConnectionControl } from '../fuse/mount-linux.js';
import type { FuseImpl, FuseTransport } from '../fuse/transport.js';
import { closeFd, receiveStateWithFd, sendStateWithFd } from '../native/index.js';
import { buildInfo } from '../util/build-info.js';
import type { Logger } from '../util/logger.js';
import type { FuseService } from './fuse-service.js';
import type { JournalSink } from './journal-sink.js';
import { KEPT_IN_MEMORY, replay, type MountEntry, type MountSpec } from './journal.js';
import { openMount, type DaemonMount, type MountEnv } from './mounts.js';
import { decodeDaemonState, encodeDaemonState, type DaemonState, type SavedMount } from './upgrade-state.js';

/** `--failover-policy`: what a takeover does with requests a dead predecessor had read (docs/contract.md §5.3). */
export type FailoverPolicy = 'none' | 'resend' | 'flush';

/** How long a transfer on the supervisor socket may take (the snapshotter's listener lives 10 s). */
const SUPERVISOR_TIMEOUT_MS = 10_000;
/** How often a successor tries to take the journal over once it has taken over the connection. */
const ATTACH_RETRY_MS = 200;

/** Who this daemon is and how it hands over. */
export interface UpgradeSettings {
  /** Host path of the FUSE mount. */
  readonly mountpoint: string;
  readonly supervisor: string | null;
  readonly id: string | null;
  readonly failoverPolicy: FailoverPolicy;
  readonly fuseImpl: FuseImpl;
  readonly logger: Logger;
}

/** The image mount table a takeover rebuilds (the pseudo filesystem's). */
export interface MountTable {
  mounts(): DaemonMount[];
  attach(m: DaemonMount): Promise<void>;
  detach(mountpoint: string): unknown;
  allocateIndex(): number;
  readonly nextIndex: number;
  /** Allocates from `n` on unless allocation is past it already. */
  reserveIndexesBelow(n: number): void;
}

/** The FUSE connection as it is handed over and taken over. */
export type FuseHandover = Pick<FuseService, 'handOver' | 'resume'>;

/** The journal as a takeover reads and writes it. */
export type UpgradeJournal = Pick<JournalSink, 'dir' | 'state' | 'append' | 'attach'>;

/** What the lifecycle machine knows that hand-overs depend on, and what it is told. */
export interface UpgradeMachine {
  /** The machine's context now (`journalDeferred`, `restored`, `config`). */
  context(): Readonly<Pick<DaemonContext, 'journalDeferred' | 'restored' | 'config'>>;
  /** Sends JOURNAL_ATTACHED: the journal is this daemon's from now on. */
  journalAttached(): Promise<void>;
  /** Runs `fn` in the controller's one-at-a-time chain of state changes. */
  serialise<T>(fn: () => Promise<T>): Promise<T>;
}

/** The parts an upgrade manager works on. */
export interface UpgradeParts {
  readonly mounts: MountTable;
  readonly fuse: FuseHandover;
  readonly journal: UpgradeJournal;
  readonly machine: UpgradeMachine;
  readonly env: MountEnv;
}

/** A mount table to rebuild, and where it came from. */
interface Table {
  from: 'state' | 'journal';
  mounts: MountSpec[];
  nextIndex: number;
  /** The config store to restore. */
  config: Record<string, string>;
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
  readonly #settings: UpgradeSettings;
  readonly #parts: UpgradeParts;
  #attachTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Where the journal stood when this daemon opened it: the predecessor's last record (null while held elsewhere). */
  readonly #seqAtStart: number | null;

  /** `seqAtStart`: the journal's last seq when this daemon opened it, null when the predecessor held it. */
  constructor(settings: UpgradeSettings, parts: UpgradeParts, seqAtStart: number | null) {
    this.#settings = settings;
    this.#parts = parts;
    this.#seqAtStart = seqAtStart;
  }

  /**
   * sendfd: the state and a dup of the /dev/fuse fd to the supervisor. ERR_DAEMON_NOT_READY
   * (503) before FUSE INIT; ERR_DAEMON_UPGRADE (500) without --supervisor or when the
   * transfer fails. Call inside the controller's chain, so the mount table holds still.
   */
  async save(signal?: AbortSignal): Promise<void> {
    const { fuse, journal, mounts: table, machine } = this.#parts;
    const { logger } = this.#settings;
    const { session, fd } = fuse.handOver();
    try {
      const sock = this.#supervisor('send the daemon state');
      // A successor writes the journal once its predecessor let go: the position is then real.
      if (machine.context().journalDeferred) await this.#tryAttach(machine.context().restored);
      signal?.throwIfAborted();
      const mounts = table.mounts().map(savedMount);
      const deferred = machine.context().journalDeferred;
      const bytes = encodeDaemonState({
        daemon: { id: this.#settings.id, pid: process.pid, build: `${buildInfo().package_ver} (${buildInfo().git_commit})`, savedAt: new Date().toISOString() },
        fuse: session,
        mounts,
        nextIndex: table.nextIndex,
        journal: { dir: resolve(journal.dir), seq: deferred ? null : journal.state.lastSeq },
        config: { ...machine.context().config },
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
  async restore(signal?: AbortSignal): Promise<RestoreOutput> {
    const { fuse, mounts: table } = this.#parts;
    const { logger } = this.#settings;
    const sock = this.#supervisor('take over');
    // Refused before the supervisor's one transfer is spent on a daemon that cannot use it.
    if (this.#settings.fuseImpl !== 'fusedev') {
      throw new FuseError('ERR_FUSE_NOT_IMPLEMENTED', `failed to take over: the ${this.#settings.fuseImpl} transport cannot serve an inherited FUSE connection; use --fuse-impl fusedev`);
    }
    if (table.mounts().length > 0) throw upgradeError(`failed to take over: ${table.mounts().length} image mounts exist already; a takeover rebuilds the predecessor's`);
    const started = performance.now();
    signal?.throwIfAborted();
    const got = await receiveStateWithFd(sock, { timeoutMs: SUPERVISOR_TIMEOUT_MS });
    const [fd, ...extra] = got.fds;
    for (const e of extra) closeFd(e);
    if (extra.length > 0) logger.warn(`upgrade: the supervisor sent ${got.fds.length} fds; using the first`);
    let owned = true;
    try {
      const state = decodeDaemonState(got.data);
      await checkFuseDevice(fd);
      await this.#checkConnection(state);
      const chosen = await this.#chooseTable(state);
      signal?.throwIfAborted();
      const mounts = await this.#openAll(chosen);
      try {
        // The last point where giving up leaves nothing behind: past it the connection is ours.
        signal?.throwIfAborted();
        await fuse.resume(fd, state.fuse, (t) => drainRequests(t, this.#settings.failoverPolicy, logger));
        owned = false;
      } catch (err) {
        for (const m of mounts) {
          table.detach(m.mountpoint);
          await m.storage.close().catch(() => undefined);
        }
        throw err;
      }
      logger.info(
        `upgrade: took over FUSE connection ${state.fuse.connId} at ${state.fuse.mountpoint} in ${Math.round(performance.now() - started)} ms from pid ${state.daemon.pid} ` +
          `(${state.daemon.build}, saved ${state.daemon.savedAt}); ${mounts.length} mounts from the ${chosen.from}: ${mounts.map((m) => `${m.mountpoint} (index ${m.index})`).join(', ')}`,
      );
      // The rebuilt table is journaled once the journal is ours: now, or when the retry gets it.
      if (!(await this.#tryAttach(true))) this.#retryAttach();
      return { connId: state.fuse.connId, config: chosen.config };
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
    const ctx = this.#parts.machine.context();
    if (ctx.journalDeferred && !this.#closed && (await this.#tryAttach(ctx.restored))) clearTimeout(this.#attachTimer);
  }

  /** Stops retrying to take the journal over (the daemon is closing). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#attachTimer);
  }

  #supervisor(what: string): string {
    const sock = this.#settings.supervisor;
    if (sock === null) throw upgradeError(`failed to ${what}: no supervisor socket (start nydusd with --supervisor and --id)`);
    return sock;
  }

  /** The state must be for this daemon's mount, and that mount must carry the state's connection. */
  async #checkConnection(state: DaemonState): Promise<void> {
    const mp = this.#settings.mountpoint;
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
    const { journal: sink, machine } = this.#parts;
    const { logger } = this.#settings;
    const fromState: Table = { from: 'state', mounts: state.mounts, nextIndex: state.nextIndex, config: state.config ?? {} };
    if (state.journal.seq === null || resolve(state.journal.dir) !== resolve(sink.dir)) return fromState;
    const deferred = machine.context().journalDeferred;
    let journal;
    try {
      journal = deferred ? await replay(sink.dir) : sink.state;
    } catch (err) {
      logger.warn(`upgrade: cannot read the journal in ${sink.dir} (${(err as NydusError).message}); using the supervisor's state`);
      return fromState;
    }
    // Records this daemon appended since (the TAKEOVER event) say nothing of the predecessor.
    const seq = deferred ? journal.lastSeq : (this.#seqAtStart ?? 0);
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
    // The journal has every config change the predecessor made, also those after the state
    // was saved; object storage keys it kept off the disk come from the state, if it has them.
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(journal.config)) {
      const value = v === KEPT_IN_MEMORY ? state.config?.[k] : v;
      if (value !== undefined) config[k] = value;
    }
    return { from: 'journal', mounts, nextIndex: Math.max(journal.nextIndex, state.nextIndex), config };
  }

  /** Opens and attaches every mount of `table` (saved indexes first); on failure nothing stays. */
  async #openAll(table: Table): Promise<DaemonMount[]> {
    const { mounts: pseudoFs, env } = this.#parts;
    const ordered = [...table.mounts.filter((m) => m.index !== null), ...table.mounts.filter((m) => m.index === null)];
    const done: DaemonMount[] = [];
    try {
      pseudoFs.reserveIndexesBelow(table.nextIndex);
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
      pseudoFs.reserveIndexesBelow(table.nextIndex);
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
   * Takes the journal over once the predecessor released it; with `reconcile` (this daemon
   * rebuilt its mounts by a takeover), then records the mount table it serves where the
   * journal says otherwise. False while the predecessor lives.
   */
  async #attach(reconcile: boolean): Promise<boolean> {
    const { journal: sink, mounts: pseudoFs, machine } = this.#parts;
    const { logger } = this.#settings;
    if (machine.context().journalDeferred) {
      try {
        await sink.attach();
      } catch (err) {
        if (err instanceof DaemonError && typeof err.detail?.holder === 'number') return false;
        logger.error(`upgrade: cannot write the journal in ${sink.dir}: ${(err as Error).message}; its records stay in memory`);
        this.close();
        return false;
      }
      // Indexes the predecessor allocated after the state was taken are journaled: never reuse them.
      pseudoFs.reserveIndexesBelow(sink.state.nextIndex);
      await machine.journalAttached();
      logger.info(`upgrade: the predecessor released the journal in ${sink.dir}; writing it from now on`);
    }
    if (!reconcile) return true;
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
  async #tryAttach(reconcile: boolean): Promise<boolean> {
    try {
      return await this.#attach(reconcile);
    } catch (err) {
      this.#settings.logger.error(`upgrade: failed to journal the mount table after the takeover: ${(err as Error).message}`);
      return true;
    }
  }

  #retryAttach(): void {
    if (this.#closed) return;
    this.#attachTimer = setTimeout(() => {
      const { machine } = this.#parts;
      void machine.serialise(() => this.#tryAttach(machine.context().restored)).then((done) => done || this.#retryAttach());
    }, ATTACH_RETRY_MS);
    this.#attachTimer.unref();
  }
}

