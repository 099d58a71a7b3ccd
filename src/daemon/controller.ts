// The daemon: owns the lifecycle machine (run by lifecycle.ts with the FUSE effects of
// fuse-service.ts), the pseudo filesystem and its image mounts, and the journal, and
// implements DaemonControl for the admin API. Every state-changing request is a machine
// event (the machine alone decides whether it may run now), sent one at a time and
// journaled (fsync'd) before it resolves; reads answer from memory at once. nydusd drives
// it: startup() walks INIT→READY→RUNNING, shutdown() is SIGTERM's TRIGGER_STOP, exit()
// the API's TRIGGER_EXIT, and `ended` resolves at STOPPED with the machine's end reason.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonTag, type DaemonActorInput, type DaemonActorName, type DaemonContext, type EndReason, type EventReason, type RestoreOutput } from '../../machines/daemon.js';
import type { FsDriver } from '../config/types.js';
import { withoutObjectStorageKeys } from '../config/derive.js';
import { ApiError, ConfigError, DaemonError } from '../errors.js';
import { decodeAuth } from '../http/auth.js';
import type { SessionEnd, SessionOptions } from '../fuse/session.js';
import type { FuseImpl } from '../fuse/transport.js';
import { BlobViewsFs, type ViewSet } from '../fs/blob-views-fs.js';
import type { FileSystem } from '../fuse/filesystem.js';
import { PseudoFs, normalizeMountpoint } from '../fs/pseudo-fs.js';
import { buildInfo } from '../util/build-info.js';
import { parseLogLevel, silentLogger, type Logger } from '../util/logger.js';
import type {
  BlobCacheEntry, BlobObject, DaemonControl, DaemonInfo, ErrorEvents, InflightEntry, MachineView, MetricsKind, MetricsQuery, MountCmd,
} from './control.js';
import { machineGraph } from './diagram.js';
import { ErofsDriver, viewsDirOf } from './erofs-driver.js';
import { ErrorRing } from './error-ring.js';
import { FuseService } from './fuse-service.js';
import { JournalSink } from './journal-sink.js';
import { KEPT_IN_MEMORY, type JournalOptions, type JournalRecord } from './journal.js';
import { Lifecycle, type ActorEffects } from './lifecycle.js';
import { metricIdsOf, metricsOf } from './metrics-view.js';
import { openMount, publicConfig, type DaemonMount, type MountEnv } from './mounts.js';
import { UpgradeManager, type FailoverPolicy } from './upgrade.js';

export type { FailoverPolicy } from './upgrade.js';

/** How a daemon is set up. */
export interface DaemonOptions {
  /** Host path of the FUSE mount (fusedev), or where the images are mounted with erofs. */
  mountpoint: string;
  fuseImpl?: FuseImpl;
  /** `erofs`: the kernel's erofs serves the images over blob views; the FUSE mount is then `<stateDir>/views`. */
  fsDriver?: FsDriver;
  /** erofs: `loop` puts images on loop devices even where the kernel mounts files (NYDUSD_EROFS_BACKING). */
  erofsBacking?: 'file' | 'loop';
  /** Directory of the journal. */
  stateDir: string;
  id?: string | null;
  supervisor?: string | null;
  failoverPolicy?: FailoverPolicy;
  /**
   * Wait in INIT for a takeover (--upgrade, or a crashed predecessor was detected): image
   * mounts are refused until then, and a journal its predecessor still holds is deferred.
   */
  upgrade?: boolean;
  logger?: Logger;
  /** Extra session options (tests tune INIT and timeouts here). */
  session?: SessionOptions;
  journal?: JournalOptions;
}

export type { EndReason } from '../../machines/daemon.js';

/** Kernel cache lifetimes: an image never changes, so as long as upstream's (2^32 s) where invalidations reach the kernel. */
const LONG_TIMEOUT = 2 ** 32;
const CONFIG_KEYS = new Set(['registry_auth', 'proxy_url', 'dragonfly_scheduler_endpoint']);

/** The daemon's controller. */
export class DaemonController implements DaemonControl {
  readonly options: Readonly<DaemonOptions>;
  readonly pseudoFs: PseudoFs<DaemonMount>;
  readonly logger: Logger;
  /** Resolves once the machine is STOPPED, with what stopped it. */
  readonly ended: Promise<EndReason>;
  readonly #sink: JournalSink;
  readonly #fuse: FuseService;
  readonly #upgrade: UpgradeManager;
  readonly #lifecycle: Lifecycle;
  readonly #errors = new ErrorRing();
  readonly #env: MountEnv;
  readonly #timeouts: { entry: number; attr: number; negative: number };
  /** Set with the erofs fs driver. */
  readonly #erofs: ErofsDriver | undefined;
  #serial: Promise<unknown> = Promise.resolve();

  /** `seqAtStart`: the journal's last record before this daemon's own (null while its predecessor holds it). */
  private constructor(options: DaemonOptions, sink: JournalSink, journalDeferred: boolean, seqAtStart: number | null) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.#sink = sink;
    const startTime = Math.floor(Date.now() / 1000);
    const uid = process.geteuid?.() ?? 0;
    const gid = process.getegid?.() ?? 0;
    const fsDriver = options.fsDriver ?? 'fusedev';
    this.#env = { uid, gid, startTime, fsDriver, onReadError: (err) => this.#onReadError(err), warn: (m) => this.logger.warn(m) };
    this.pseudoFs = new PseudoFs<DaemonMount>({ uid, gid, startTime });
    this.pseudoFs.nextIndex = sink.state.nextIndex;
    const impl = options.fuseImpl ?? 'fusedev';
    const t = impl === 'fusedev' ? LONG_TIMEOUT : 1;
    this.#timeouts = { entry: t, attr: t, negative: 0, ...options.session?.timeouts };
    // With erofs, the FUSE connection serves only the blob views, privately, and the
    // mount table is the source of both the views and the erofs mounts.
    let served: FileSystem = this.pseudoFs;
    let fuseMountpoint = options.mountpoint;
    if (fsDriver === 'erofs') {
      fuseMountpoint = viewsDirOf(options.stateDir);
      this.#erofs = new ErofsDriver({ mountpoint: options.mountpoint, viewsDir: fuseMountpoint, backing: options.erofsBacking, logger: this.logger });
      served = new BlobViewsFs(
        {
          // The mount itself is the view set: nothing is allocated per request.
          viewSet: (index) => {
            const m = this.pseudoFs.mountAtIndex(index);
            return m?.views === undefined || m.bootstrapBytes === undefined ? undefined : (m as ViewSet);
          },
          indexes: () => this.pseudoFs.mounts().map((m) => m.index).sort((a, b) => a - b),
        },
        { uid, gid, startTime, onReadError: (err) => this.#onReadError(err) },
      );
    }
    this.#fuse = new FuseService({
      mountpoint: fuseMountpoint,
      impl,
      fs: served,
      session: {
        fsName: fsDriver === 'erofs' ? 'nydus-blob-views' : 'rafs',
        onComplete: (op, node, errno, ns, bytes) => this.#onComplete(op, node, errno, ns, bytes),
        onError: (err, op, node) => this.logger.warn(`fuse: opcode ${op} on node ${node} failed unexpectedly: ${(err as Error)?.message ?? String(err)}`),
        ...options.session,
        // Loop devices read the views with asynchronous O_DIRECT: let those be concurrent READs
        // (file-backed erofs reads them buffered; the readahead's READs are concurrent anyway).
        ...(fsDriver === 'erofs' ? { allowOther: false, init: { asyncDio: true, ...options.session?.init } } : {}),
        timeouts: this.#timeouts,
      },
      onLost: (end) => this.#onLost(end),
      // Invalidations name pseudo-fs node ids: meaningless on the views' connection.
      onNotifier: (n) => this.pseudoFs.setNotifier(fsDriver === 'erofs' ? undefined : n),
    });
    const { supervisor = null, id = null, failoverPolicy = 'resend' } = options;
    const sessionEffects = this.#fuse.effects();
    const erofs = this.#erofs;
    if (erofs !== undefined) {
      // SIGTERM: the erofs mounts go first (their loop devices then detach), then the views.
      const unmountViews = sessionEffects.unmountSession;
      sessionEffects.unmountSession = async (input, signal) => {
        for (const m of this.pseudoFs.mounts()) await erofs.detach(m);
        await unmountViews(input, signal);
      };
    }
    const effects: ActorEffects = {
      ...sessionEffects,
      restoreState: async (_input, signal) => {
        const out = await this.#upgrade.restore(signal);
        // Credentials set through the predecessor's API reach the rebuilt mounts.
        for (const m of this.pseudoFs.mounts()) this.#applyAuth(m, out.config);
        return out;
      },
      changeImage: (input, signal) => this.#changeImage(input, signal),
      sendFd: (_input, signal) => this.#upgrade.save(signal),
    };
    const actions = {
      applyConfig: (ctx: DaemonContext, configId: string, values: Record<string, string>) => this.#applyConfig(ctx, configId, values),
      journalOutput: (actor: DaemonActorName, output: unknown) => (actor === 'restoreState' ? this.#offDisk(output as RestoreOutput) : output),
    };
    this.#lifecycle = new Lifecycle(effects, actions, sink, {
      awaitingTakeover: options.upgrade === true,
      journalDeferred,
    });
    this.#upgrade = new UpgradeManager(
      { mountpoint: fuseMountpoint, supervisor, id, failoverPolicy, fuseImpl: impl, logger: this.logger },
      {
        mounts: this.pseudoFs,
        fuse: this.#fuse,
        journal: sink,
        env: this.#env,
        machine: {
          context: () => this.#lifecycle.context,
          journalAttached: () => this.#lifecycle.notify({ type: 'JOURNAL_ATTACHED', reason: 'startup' }),
          serialise: (fn) => this.#serialise(fn),
        },
      },
      seqAtStart,
    );
    this.ended = new Promise((resolve) => {
      this.#lifecycle.actor.subscribe({ complete: () => resolve(this.#lifecycle.context.endReason ?? 'signal') });
    });
  }

  /**
   * Opens the journal in `stateDir` and sets up an INIT daemon. On a normal start the
   * journal's mounts (left by an earlier process) are recorded as gone; with `upgrade`
   * they stay: they are what a takeover rebuilds.
   */
  static async create(options: DaemonOptions): Promise<DaemonController> {
    const sink = await JournalSink.open(options.stateDir, { deferIfHeld: options.upgrade === true, journal: options.journal });
    if (options.fsDriver === 'erofs') await mkdir(viewsDirOf(options.stateDir), { recursive: true, mode: 0o700 });
    if (options.upgrade !== true) {
      for (const mountpoint of sink.state.mounts.keys()) await sink.append({ type: 'umount', mountpoint });
    }
    // The machine's input, journaled first: a replay of this process's records starts here.
    const journalDeferred = sink.deferred;
    const seqAtStart = journalDeferred ? null : sink.state.lastSeq;
    await sink.append({ type: 'start', pid: process.pid, input: { awaitingTakeover: options.upgrade === true, journalDeferred } });
    return new DaemonController(options, sink, journalDeferred, seqAtStart);
  }

  /** The reported state. */
  get state(): string {
    return this.#lifecycle.state;
  }

  /** The kernel cache lifetimes the session uses (seconds). */
  get timeouts(): { entry: number; attr: number } {
    return { entry: this.#timeouts.entry, attr: this.#timeouts.attr };
  }

  // ---- lifecycle driven by nydusd --------------------------------------------------

  /** MOUNT then START (reason `startup`): INIT → READY → RUNNING. */
  startup(): Promise<void> {
    return this.#serialise(async () => {
      await this.#lifecycle.send({ type: 'MOUNT', reason: 'startup' });
      await this.#lifecycle.send({ type: 'START', reason: 'startup' });
      await this.#attachKernel();
    });
  }

  /** After a failed startup: unmount whatever was mounted and stop (INIT/READY → STOPPED). */
  abortStartup(): Promise<void> {
    return this.#serialise(async () => {
      await this.#lifecycle.trigger('TRIGGER_STOP', 'startup').catch(() => this.#forceStop('startup'));
      for (const m of this.pseudoFs.mounts()) await this.#umount(m.mountpoint).catch(() => undefined);
    });
  }

  /** Upstream trigger_stop (SIGTERM/SIGINT, or the kernel ended the connection): stop serving and unmount. */
  shutdown(reason: EventReason): Promise<void> {
    return this.#serialise(async () => {
      try {
        await this.#lifecycle.trigger('TRIGGER_STOP', reason);
      } catch (err) {
        this.logger.error(`daemon: failed to stop cleanly (${(err as Error).message}); leaving the mount in place`);
        await this.#forceStop(reason);
      }
    });
  }

  /** Releases storage, the FUSE fd (never unmounting) and the journal. Call after `ended`. */
  async close(): Promise<void> {
    this.#upgrade.close();
    await this.#serialise(async () => {
      await this.#fuse.release();
      for (const m of this.pseudoFs.mounts()) await m.storage.close().catch(() => undefined);
      await this.#lifecycle.flush().catch(() => undefined);
      await this.#sink.close();
    });
  }

  // ---- DaemonControl: reads -------------------------------------------------------

  info(): DaemonInfo {
    const collection: DaemonInfo['backend_collection'] = {};
    for (const m of this.pseudoFs.mounts()) {
      collection[m.mountpoint] = { backend_type: 'Rafs', mountpoint: m.mountpoint, mounted_time: m.mountedTime, config: publicConfig(m) };
    }
    return {
      version: buildInfo(),
      id: this.options.id ?? null,
      supervisor: this.options.supervisor ?? null,
      state: this.#lifecycle.state,
      backend_collection: collection,
    };
  }

  errorEvents(): ErrorEvents {
    return this.#errors.toJSON();
  }

  backendInfo(mountpoint: string): Record<string, unknown> {
    const m = this.pseudoFs.get(normalizeMountpoint(mountpoint));
    if (m === undefined) throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to get backend info: nothing is mounted at ${mountpoint}`);
    return m.fs.sb.superblockJson({ attrTimeout: this.#timeouts.attr, entryTimeout: this.#timeouts.entry });
  }

  machine(): MachineView {
    return {
      definition: machineGraph(),
      state: this.#lifecycle.state,
      stateKey: this.#lifecycle.stateKey,
      context: structuredClone(this.#lifecycle.context),
      transitions: this.#sink.state.transitions.map((t) => ({ ...t })),
    };
  }

  metrics(kind: MetricsKind, query: MetricsQuery): unknown {
    return metricsOf(this.pseudoFs.mounts(), kind, query);
  }

  metricIds(): Record<MetricsKind, string[]> {
    return metricIdsOf(this.pseudoFs.mounts());
  }

  inflight(): InflightEntry[] {
    return this.#fuse.inflight().map((r) => ({ inode: r.nodeid, opcode: r.opcode, unique: r.unique, timestamp_secs: Math.floor(r.startTime / 1000) }));
  }

  getConfig(id: string | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.#lifecycle.context.config)) {
      if (id === undefined) out[k] = v;
      else if (k.startsWith(`${id}:`)) out[k.slice(id.length + 1)] = v;
    }
    return out;
  }

  journal(query: { sinceSeq: number; limit: number }): Promise<JournalRecord[]> {
    return this.#sink.records(query);
  }

  // ---- DaemonControl: writes ------------------------------------------------------

  setLogLevel(level: string): Promise<void> {
    return this.#serialise(async () => {
      const parsed = parseLogLevel(level);
      if (parsed === undefined) throw new ConfigError('ERR_CONFIG_INVALID', `failed to set log level: ${JSON.stringify(level)} is not one of trace, debug, info, warn, error, off`);
      await this.#sink.append({ type: 'log-level', level: parsed });
      this.logger.setLevel(parsed);
    });
  }

  start(): Promise<void> {
    return this.#serialise(async () => {
      await this.#lifecycle.send({ type: 'START', reason: 'api' });
      await this.#upgrade.claimJournal();
      await this.#attachKernel();
    });
  }

  exit(): Promise<void> {
    return this.#serialise(() => this.#lifecycle.trigger('TRIGGER_EXIT', 'api'));
  }

  /** SEND_FD: accepted where the daemon holds a FUSE connection (READY, RUNNING, INTERRUPTED; docs/contract.md §7.5), else 503. */
  sendFd(): Promise<void> {
    return this.#serialise(() => this.#lifecycle.send({ type: 'SEND_FD', reason: 'api' }));
  }

  takeover(): Promise<void> {
    return this.#serialise(() => this.#lifecycle.send({ type: 'TAKEOVER', reason: 'api' }));
  }

  mount(mountpoint: string, cmd: MountCmd): Promise<void> {
    return this.#serialise(() => this.#lifecycle.send({ type: 'MOUNT_IMAGE', reason: 'api', mountpoint: normalizeMountpoint(mountpoint), cmd }));
  }

  remount(mountpoint: string, cmd: MountCmd): Promise<void> {
    return this.#serialise(() => this.#lifecycle.send({ type: 'REMOUNT_IMAGE', reason: 'api', mountpoint: normalizeMountpoint(mountpoint), cmd }));
  }

  umount(mountpoint: string): Promise<void> {
    return this.#serialise(() => this.#lifecycle.send({ type: 'UMOUNT_IMAGE', reason: 'api', mountpoint: normalizeMountpoint(mountpoint) }));
  }

  /** The changeImage actor: one image mount, remount or unmount, journaled before the table changes. */
  async #changeImage(input: DaemonActorInput, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const mp = input.mountpoint!;
    if (input.op === 'umount') return this.#umount(mp);
    if (input.op === 'remount') return this.#remount(mp, input.cmd!);
    return this.#mount(mp, input.cmd!);
  }

  async #mount(mp: string, cmd: MountCmd): Promise<void> {
    this.pseudoFs.checkAttach(mp);
    this.#erofs?.checkPlacement(mp, this.pseudoFs.mounts());
    const m = await openMount(mp, this.pseudoFs.allocateIndex(), cmd, this.#env);
    this.#applyAuth(m, this.#lifecycle.context.config);
    try {
      await this.#sink.append({ type: 'mount', ...this.#spec(m) });
    } catch (err) {
      await m.storage.close();
      throw err;
    }
    await this.pseudoFs.attach(m);
    try {
      await this.#attachKernel([m]);
    } catch (err) {
      await this.#sink.append({ type: 'umount', mountpoint: mp }).catch(() => undefined);
      await this.pseudoFs.detach(mp).invalidated;
      await m.storage.close().catch(() => undefined);
      throw err;
    }
    this.logger.info(`daemon: mounted ${m.source} at ${mp} (index ${m.index})`);
  }

  async #remount(mp: string, cmd: MountCmd): Promise<void> {
    const old = this.pseudoFs.get(mp);
    if (old === undefined) throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to remount ${mp}: nothing is mounted there`);
    const m = await openMount(mp, this.pseudoFs.allocateIndex(), cmd, this.#env, old);
    this.#applyAuth(m, this.#lifecycle.context.config);
    try {
      await this.#sink.append({ type: 'remount', ...this.#spec(m) });
    } catch (err) {
      await m.storage.close();
      throw err;
    }
    if (this.#erofs !== undefined) await this.#erofs.detach(old);
    const { invalidated } = this.pseudoFs.replace(m);
    await invalidated;
    await this.#attachKernel([m]);
    await old.storage.close();
    this.logger.info(`daemon: remounted ${mp} from ${m.source} (index ${m.index})`);
  }

  /** SET_CONFIG, journaled with its values (the journal is 0600; every answer redacts them). */
  putConfig(id: string, values: Record<string, string>): Promise<void> {
    return this.#serialise(async () => {
      for (const [k, v] of Object.entries(values)) {
        if (!CONFIG_KEYS.has(k)) throw new ConfigError('ERR_CONFIG_INVALID', `failed to set config: unknown key ${JSON.stringify(k)} (expected ${[...CONFIG_KEYS].join(', ')})`);
        if (typeof v !== 'string') throw new ConfigError('ERR_CONFIG_INVALID', `failed to set config: ${k} must be a string`);
      }
      const auth = values.registry_auth;
      if (auth !== undefined && auth.trim() !== '') {
        try {
          decodeAuth(auth);
        } catch (err) {
          throw new ConfigError('ERR_CONFIG_INVALID', `failed to set config: registry_auth is not base64 of "user:password"`, { cause: err });
        }
      }
      // Object storage keys (registry_auth of an s3/oss mount) stay off the disk (decision 0012).
      const journalValues = auth !== undefined && auth !== '' && this.#objectStorageIds().has(id) ? { ...values, registry_auth: KEPT_IN_MEMORY } : undefined;
      await this.#lifecycle.send({ type: 'SET_CONFIG', reason: 'api', id, values: { ...values } }, { journalValues });
    });
  }

  /** Config ids of the s3/oss mounts: their registry_auth is an object storage key pair. */
  #objectStorageIds(): Set<string> {
    return new Set(this.pseudoFs.mounts().filter((m) => m.storage.backend.type === 's3' || m.storage.backend.type === 'oss').map((m) => m.metricsId));
  }

  /** A takeover's output as journaled: the object storage keys it restored stay off the disk. */
  #offDisk(out: RestoreOutput): RestoreOutput {
    const ids = this.#objectStorageIds();
    const config = { ...out.config };
    for (const id of ids) if (config[`${id}:registry_auth`]) config[`${id}:registry_auth`] = KEPT_IN_MEMORY;
    return { ...out, config };
  }

  /** The machine's applyConfig action: upstream's registry backend reads "<its id>:registry_auth" on its next request. */
  #applyConfig(ctx: DaemonContext, id: string, values: Record<string, string>): void {
    if (values.registry_auth === undefined) return;
    for (const m of this.pseudoFs.mounts()) if (m.metricsId === id) this.#applyAuth(m, ctx.config);
  }

  async addBlob(_entry: BlobCacheEntry): Promise<void> {
    throw new DaemonError('ERR_DAEMON_UNSUPPORTED', 'failed to add blob: a fusedev daemon has no blob cache manager');
  }

  async deleteBlobs(query: { domain_id?: string; blob_id?: string }): Promise<void> {
    if (query.domain_id === undefined && query.blob_id === undefined) {
      throw new ApiError('ERR_API_BAD_REQUEST', 'failed to delete blobs: domain_id or blob_id is required');
    }
    if (this.#erofs !== undefined) return this.#deleteBlobObjects(query);
    // Upstream fusedev: a blob id alone asks to cull an fscache file, which it has none of.
    if (query.domain_id !== undefined) throw new DaemonError('ERR_DAEMON_UNSUPPORTED', 'failed to delete blobs: a fusedev daemon has no blob cache manager');
  }

  /**
   * erofs: blob objects come and go with their image (POST/DELETE /api/v1/mount). Deleting
   * one that backs a mounted image is refused; one nobody has is upstream's "not found";
   * a blob id alone that no image uses is a no-op, as upstream's cull of an unused file.
   */
  #deleteBlobObjects(query: { domain_id?: string; blob_id?: string }): void {
    const mounts = this.pseudoFs.mounts();
    const uses = (m: DaemonMount) => query.blob_id === undefined || (m.views ?? []).some((v) => v.blob.blobId === query.blob_id);
    const holders = mounts.filter((m) => (query.domain_id === undefined || m.mountpoint === query.domain_id || m.metricsId === query.domain_id) && uses(m));
    if (holders.length > 0) {
      const where = holders.map((m) => this.#erofs!.hostPath(m.mountpoint)).join(', ');
      throw new DaemonError('ERR_DAEMON_UNSUPPORTED', `failed to delete blob objects: they back the erofs mount at ${where}; unmount the image (DELETE /api/v1/mount) instead`);
    }
    if (query.domain_id !== undefined) {
      throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to delete blob objects: no image has domain ${JSON.stringify(query.domain_id)}`, { detail: { upstream: 'blob_cache: cache entry not found' } });
    }
  }

  /** GET /api/v2/blobs: the blob views of the image with `domain_id` (its mountpoint or its config id). */
  async blobObjects(query: { domain_id: string; blob_id?: string }): Promise<BlobObject[]> {
    const erofs = this.#erofs;
    if (erofs === undefined) throw new DaemonError('ERR_DAEMON_UNSUPPORTED', 'failed to list blob objects: a fusedev daemon has no blob views (start nydusd with --fs-driver erofs)');
    const m = this.pseudoFs.mounts().find((x) => x.mountpoint === query.domain_id || x.metricsId === query.domain_id);
    if (m === undefined) throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to list blob objects: no image has domain ${JSON.stringify(query.domain_id)} (a mountpoint or a config id)`);
    const placed = erofs.attachment(m.index);
    const out: BlobObject[] = [];
    for (const [k, v] of (m.views ?? []).entries()) {
      if (query.blob_id !== undefined && v.blob.blobId !== query.blob_id) continue;
      const b = placed?.blobs[k];
      out.push({
        domain_id: query.domain_id,
        blob_id: v.blob.blobId,
        mountpoint: erofs.hostPath(m.mountpoint),
        blob_size: v.size,
        compressed_size: v.blob.compressedSize,
        view_path: b?.viewPath ?? null,
        loop_device: b?.loopDevice ?? null,
        direct_io: b?.directIo ?? false,
        cached_bytes: await m.storage.reader.cachedBytes(v.blob.index),
      });
    }
    if (query.blob_id !== undefined && out.length === 0) throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to list blob objects: the image of domain ${JSON.stringify(query.domain_id)} has no blob ${query.blob_id}`);
    return out;
  }

  // ---- internals ------------------------------------------------------------------

  /**
   * erofs: puts `mounts` (default: every mount) in the kernel once the views are served
   * (RUNNING); before that, START does it. Mounts a predecessor left in the kernel are adopted.
   */
  async #attachKernel(mounts: readonly DaemonMount[] = this.pseudoFs.mounts()): Promise<void> {
    const erofs = this.#erofs;
    if (erofs === undefined || !this.#lifecycle.snapshot.hasTag(DaemonTag.serving)) return;
    for (const m of mounts) {
      if (erofs.attachment(m.index) !== undefined) continue;
      if (await erofs.adopt(m)) this.logger.info(`erofs: adopted the erofs mount of ${m.source} at ${erofs.hostPath(m.mountpoint)}`);
      else await erofs.attach(m);
    }
  }

  #serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(fn, fn);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  async #umount(mp: string): Promise<void> {
    const old = this.pseudoFs.get(mp);
    if (old === undefined) throw new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to umount ${mp}: nothing is mounted there`);
    await this.#erofs?.detach(old);
    await this.#sink.append({ type: 'umount', mountpoint: mp });
    const { invalidated } = this.pseudoFs.detach(mp);
    await invalidated;
    await old.storage.close();
    this.logger.info(`daemon: unmounted ${mp}`);
  }

  /** Hands the mount's backend the credentials stored in `config` (PUT /api/v1/config) for its id, if any. */
  #applyAuth(m: DaemonMount, config: Readonly<Record<string, string>>): void {
    const auth = config[`${m.metricsId}:registry_auth`];
    if (auth === undefined || m.storage.backend.setAuth === undefined) return;
    m.storage.backend.setAuth(auth);
    this.logger.info(`daemon: ${m.storage.backend.type} credentials of ${m.mountpoint} replaced (config id ${JSON.stringify(m.metricsId)})`);
  }

  /** A mount as journaled: object storage keys stay in memory only (upgrade.ts hands them over). */
  #spec(m: DaemonMount) {
    return { mountpoint: m.mountpoint, source: m.source, config: withoutObjectStorageKeys(m.configText), fsType: m.fsType, prefetchFiles: m.prefetchFiles, index: m.index };
  }

  /** Reaches STOPPED without unmounting, whatever state a failed stop left. */
  async #forceStop(reason: EventReason): Promise<void> {
    await this.#lifecycle.trigger('TRIGGER_EXIT', reason).catch((err: Error) => this.logger.error(`daemon: failed to exit: ${err.message}`));
  }

  #onComplete(opcode: number, nodeId: number, errno: number, latencyNs: number, bytes: number): void {
    // The kernel answers file requests itself with erofs: the views' requests are no file's.
    if (this.#erofs !== undefined) return;
    const m = this.pseudoFs.mountOfNode(nodeId);
    if (m !== undefined) m.stats.record(opcode, this.pseudoFs.inoOf(m, nodeId), errno, latencyNs, bytes);
  }

  #onReadError(err: unknown): void {
    this.#errors.push(err);
    this.logger.warn(`fs: read failed: ${(err as Error)?.message ?? String(err)}`);
  }

  #onLost(end: SessionEnd): void {
    this.logger.warn(`fuse: the kernel ended the connection (${end.reason}); shutting down`);
    void this.shutdown('connection-lost');
  }
}
