// What a nydusd does, start to end, as one library call: the CLI turns argv into these
// options, and an embedder calls it the same way. Raises the open-file limit, chooses the
// fs driver, removes what a crashed erofs daemon left, detects a crashed predecessor, pulls
// an --image's bootstrap, derives the mount's config and reads its prefetch list, creates
// the controller, mounts and walks INIT→READY→RUNNING, starts the admin API (only once
// RUNNING, or INIT when waiting for a takeover: --upgrade or a crashed predecessor, as
// upstream), then waits for the end: `stop` (SIGTERM/SIGINT: stop and unmount), PUT
// /daemon/exit (stop, keep the mount) or the kernel ending the connection. Startup
// failures unmount what was mounted and throw. Process-wide settings (logger, libuv's
// threadpool size, signal handlers) stay with the caller.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { localfsDirConfig, redact } from '../config/derive.js';
import { parseConfig } from '../config/parse.js';
import type { FsDriver } from '../config/types.js';
import { ConfigError } from '../errors.js';
import type { FuseImpl } from '../fuse/transport.js';
import type { DaemonControl, MountCmd } from './control.js';
import { DaemonController, type EndReason, type FailoverPolicy } from './controller.js';
import { cleanStale, viewsDirOf } from './erofs-driver.js';
import { lockHolder } from './journal-files.js';
import { detectCrash, mountpointPath } from './upgrade-crash.js';
import { checkMountCmd } from './mounts.js';
import { checkMountpoint } from '../fuse/mount-linux.js';
import { parsePrefetchFiles } from '../storage/prefetch-list.js';
import { buildInfo } from '../util/build-info.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { raiseNofileLimit } from './rlimit.js';
import { defaultStateDir } from './state-dir.js';

/** A running admin API server, closed after the daemon ends. */
export interface ApiServerHandle {
  close(): Promise<void>;
}

/** What to serve and how: nydusd's flags as values (nydusd-contract.md §1). */
export interface RunDaemonOptions {
  /** Host FUSE mountpoint (--mountpoint). */
  mountpoint: string;
  /** Where the --bootstrap/--image mount appears in the pseudo fs (--virtual-mountpoint; default "/"). */
  virtualMountpoint?: string;
  /** Daemon config file (--config): the mount's backend and cache, and its `fs_driver`. */
  config?: string;
  /** RAFS bootstrap to mount (--bootstrap). */
  bootstrap?: string;
  /** Image reference to mount (--image): its bootstrap is fetched first, blobs read lazily. */
  image?: string;
  /** Blobs directory; the mount gets a localfs + blobcache config (--localfs-dir). */
  localfsDir?: string;
  /** File listing absolute paths to prefetch (--prefetch-files). */
  prefetchFiles?: string;
  /** Service id (--id) and supervisor socket (--supervisor), given together. */
  id?: string;
  supervisor?: string;
  /** Mount nothing and wait in INIT for a takeover (--upgrade). */
  upgrade?: boolean;
  /** What a takeover does with in-flight requests (--failover-policy; default resend). */
  failoverPolicy?: FailoverPolicy;
  /** RLIMIT_NOFILE to raise towards (--rlimit-nofile; 0 or unset: leave it). */
  rlimitNofile?: number;
  /** FUSE transport (--fuse-impl; default fusedev). */
  fuseImpl?: FuseImpl;
  /** --fs-driver; unset: the config file's `fs_driver`, else fusedev. */
  fsDriver?: FsDriver;
  /** How the erofs driver backs its mounts (default file; the CLI: NYDUSD_EROFS_BACKING=loop). */
  erofsBacking?: 'file' | 'loop';
  /** Journal directory (--state-dir; default state-dir.ts). */
  stateDir?: string;
  /** Admin API socket (--apisock): passed to crash detection, which asks a predecessor there. */
  apisock?: string;
  /** Where the daemon logs (default: nowhere). */
  logger?: Logger;
  /** Aborting it stops the daemon as SIGTERM does (stop and unmount). */
  stop?: AbortSignal;
  /**
   * Starts the admin API once the daemon may answer. The API sits above the daemon
   * layer, so the caller provides it (the CLI: api/server.ts on --apisock).
   */
  serveApi?(control: DaemonControl): Promise<ApiServerHandle>;
}

/** The options with a logger. */
type Resolved = RunDaemonOptions & { logger: Logger };

/** The config text a --bootstrap mount uses: --config's or --localfs-dir's (IMAGE_PULL_AUTH is applied by the storage factory). */
async function bootstrapConfig(o: RunDaemonOptions): Promise<string> {
  if (o.localfsDir !== undefined) return JSON.stringify(localfsDirConfig(resolve(o.localfsDir)));
  if (o.config === undefined) throw new ConfigError('ERR_CONFIG_INVALID', 'failed to mount --bootstrap: both --config and --localfs-dir are missing');
  try {
    return await readFile(o.config, 'utf8');
  } catch (err) {
    throw new ConfigError('ERR_CONFIG_INVALID', `failed to read config ${o.config}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads --prefetch-files: one absolute path per line (upstream: InvalidPrefetchList otherwise). */
async function prefetchList(path: string | undefined): Promise<string[] | null> {
  if (path === undefined) return null;
  const text = await readFile(path, 'utf8').catch((err: Error) => {
    throw new ConfigError('ERR_CONFIG_INVALID', `failed to read prefetch list ${path}: ${err.message}`, { cause: err });
  });
  return parsePrefetchFiles(text);
}

/** --fs-driver, else the --config file's `fs_driver`, else fusedev. */
async function chooseFsDriver(o: RunDaemonOptions): Promise<FsDriver> {
  if (o.fsDriver !== undefined) return o.fsDriver;
  if (o.config === undefined) return 'fusedev';
  return parseConfig(await bootstrapConfig(o)).fs_driver ?? 'fusedev';
}

/**
 * Whether this start waits in INIT for a takeover: `upgrade` with --upgrade, `failover` when
 * upstream's crash check finds a predecessor's leftovers on `fusePath` (the FUSE mount: the
 * mountpoint, or the erofs driver's views) (§3.4), null for a normal start. Either way the
 * --bootstrap/--image mount is skipped: the mounts come from the takeover.
 */
async function takeoverMode(o: Resolved, fusePath: string): Promise<'upgrade' | 'failover' | null> {
  if (o.upgrade === true) {
    o.logger.info('daemon: --upgrade: waiting in INIT for a takeover');
    return 'upgrade';
  }
  const check = await detectCrash(fusePath, o.apisock);
  if (!check.crashed) return null;
  o.logger.warn(`daemon: ${check.reason}; waiting in INIT for a takeover${o.supervisor === undefined ? ' (there is no --supervisor: a takeover will fail; umount -l the mountpoint to start afresh)' : ''}`);
  return 'failover';
}

/**
 * erofs without a supervisor to hand the views' connection back: what a crashed
 * predecessor with this state directory left (erofs mounts, loop devices, the views'
 * mount) is removed, unless a live daemon still holds that directory's journal.
 */
async function cleanErofsLeftovers(mountpoint: string, stateDir: string, logger: Logger): Promise<void> {
  const holder = await lockHolder(stateDir);
  if (holder !== null) return; // a live daemon: the journal lock refuses this start below
  const done = await cleanStale(mountpoint, viewsDirOf(stateDir));
  if (done.erofsMounts.length + done.loops.length > 0 || done.viewsMount) {
    logger.warn(
      `daemon: removed what a crashed daemon left: erofs mounts ${JSON.stringify(done.erofsMounts)}, loop devices ${JSON.stringify(done.loops)}` +
        `${done.viewsMount ? `, the blob views' mount ${viewsDirOf(stateDir)}` : ''}`,
    );
  }
}

/** The --bootstrap or --image mount of a normal start, its config checked; undefined when there is none. */
async function initialMount(o: Resolved): Promise<MountCmd | undefined> {
  let cmd: MountCmd | undefined;
  if (o.bootstrap !== undefined) {
    cmd = { source: resolve(o.bootstrap), fs_type: 'rafs', config: await bootstrapConfig(o), prefetch_files: await prefetchList(o.prefetchFiles) };
  } else if (o.image !== undefined) {
    // Mount by reference: fetch the bootstrap, then mount it like --bootstrap (registry/mount-image.ts).
    const configText = o.config === undefined ? undefined : await bootstrapConfig(o);
    // Loaded only here: the registry client (undici) would slow every other start.
    const { prepareImageMount } = await import('../registry/mount-image.js');
    const image = await prepareImageMount({ reference: o.image, configText });
    o.logger.info(`daemon: image ${image.reference}: bootstrap ${image.bootstrap}${image.downloaded ? ' (fetched)' : ' (cached)'}`);
    cmd = { source: image.bootstrap, fs_type: 'rafs', config: image.configText, prefetch_files: await prefetchList(o.prefetchFiles) };
  }
  if (cmd !== undefined) o.logger.debug(`daemon: config ${JSON.stringify(redact(checkMountCmd(cmd)))}`);
  return cmd;
}

/** Runs a daemon until it stops; resolves with why it stopped. */
export async function runDaemon(options: RunDaemonOptions): Promise<EndReason> {
  const o = { ...options, logger: options.logger ?? silentLogger };
  const { logger } = o;
  await raiseNofileLimit(o.rlimitNofile ?? 0, logger);
  const fsDriver = await chooseFsDriver(o);
  const erofs = fsDriver === 'erofs';
  const givenMountpoint = await mountpointPath(o.mountpoint);
  const earlyStateDir = o.stateDir ?? defaultStateDir(o.id, givenMountpoint);
  if (erofs && o.supervisor === undefined && o.upgrade !== true) await cleanErofsLeftovers(givenMountpoint, earlyStateDir, logger);
  const takeover = await takeoverMode(o, erofs ? viewsDirOf(earlyStateDir) : givenMountpoint);
  // Waiting for a takeover, the mountpoint belongs to the predecessor (or to nobody, after a
  // crash, when a stat would wait for ever): it is neither checked nor touched.
  const mountpoint = takeover !== null ? givenMountpoint : await checkMountpoint(o.mountpoint);
  const cmd = takeover === null ? await initialMount(o) : undefined;
  // erofs: the directory whose leftovers were checked above.
  const stateDir = erofs ? earlyStateDir : (o.stateDir ?? defaultStateDir(o.id, mountpoint));
  const fuseImpl = o.fuseImpl ?? 'fusedev';
  const b = buildInfo();
  logger.info(`nydusd ${b.package_ver} (${b.git_commit}) on ${mountpoint}, state in ${stateDir}, ${fuseImpl}, fs driver ${fsDriver}, ${process.env.UV_THREADPOOL_SIZE ?? 4} I/O threads`);
  const controller = await DaemonController.create({
    mountpoint,
    fuseImpl,
    fsDriver,
    erofsBacking: o.erofsBacking ?? 'file',
    stateDir,
    id: o.id ?? null,
    supervisor: o.supervisor ?? null,
    failoverPolicy: o.failoverPolicy ?? 'resend',
    upgrade: takeover !== null,
    logger,
  });
  const onStop = (): void => void controller.shutdown('signal');
  if (o.stop?.aborted === true) onStop();
  o.stop?.addEventListener('abort', onStop, { once: true });
  try {
    try {
      if (cmd !== undefined) await controller.mount(o.virtualMountpoint ?? '/', cmd);
      if (takeover === null) await controller.startup();
    } catch (err) {
      await controller.abortStartup().catch(() => undefined);
      await controller.close().catch(() => undefined);
      throw err;
    }
    let api: ApiServerHandle | undefined;
    if (o.serveApi !== undefined) {
      try {
        api = await o.serveApi(controller);
      } catch (err) {
        await controller.shutdown('startup');
        await controller.close().catch(() => undefined);
        throw err;
      }
    }
    logger.info(`daemon: ${controller.state}`);
    const reason = await controller.ended;
    logger.info(`daemon: stopped (${reason})`);
    // Let the answer to PUT /daemon/exit leave before the socket closes.
    await new Promise((r) => setImmediate(r));
    await api?.close().catch((err: Error) => logger.warn(`api: failed to close: ${err.message}`));
    await controller.close();
    return reason;
  } finally {
    o.stop?.removeEventListener('abort', onStop);
  }
}
