// What a nydusd process does, start to end: logger and limits, the mountpoint check, the
// controller, the --bootstrap mount and the startup walk INIT→READY→RUNNING, then the
// admin API (only once RUNNING, or INIT when waiting for a takeover: --upgrade or a crashed
// predecessor detected, as upstream), then waiting for the end: SIGTERM/SIGINT (stop and
// unmount), PUT /daemon/exit (stop, keep the mount) or the kernel ending the connection.
// Startup failures unmount what was mounted and throw.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { localfsDirConfig, redact } from '../config/derive.js';
import { parseConfig } from '../config/parse.js';
import type { FsDriver } from '../config/types.js';
import { ConfigError } from '../errors.js';
import type { MountCmd } from './control.js';
import { DaemonController } from './controller.js';
import { cleanStale, viewsDirOf } from './erofs-driver.js';
import { lockHolder } from './journal-files.js';
import { detectCrash, mountpointPath } from './upgrade-crash.js';
import { checkMountCmd } from './mounts.js';
import { checkMountpoint } from '../fuse/mount-linux.js';
import { parsePrefetchFiles } from '../storage/prefetch-list.js';
import { buildInfo } from '../util/build-info.js';
import { createLogger, type Logger } from '../util/logger.js';
import { logBackendEvents } from '../storage/backend/log-events.js';
import { escapeStatePath, type DaemonArgs } from '../cli/daemon/options.js';
import { raiseNofileLimit } from './rlimit.js';
import { answerSignals } from '../cli/daemon/signals.js';

/** The config text a --bootstrap mount uses: --config's or --localfs-dir's (IMAGE_PULL_AUTH is applied by the storage factory). */
async function bootstrapConfig(args: DaemonArgs): Promise<string> {
  if (args.localfsDir !== undefined) return JSON.stringify(localfsDirConfig(resolve(args.localfsDir)));
  if (args.config === undefined) throw new ConfigError('ERR_CONFIG_INVALID', 'failed to mount --bootstrap: both --config and --localfs-dir are missing');
  try {
    return await readFile(args.config, 'utf8');
  } catch (err) {
    throw new ConfigError('ERR_CONFIG_INVALID', `failed to read config ${args.config}: ${(err as Error).message}`, { cause: err });
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
async function chooseFsDriver(args: DaemonArgs): Promise<FsDriver> {
  if (args.fsDriver !== undefined) return args.fsDriver;
  if (args.config === undefined) return 'fusedev';
  return parseConfig(await bootstrapConfig(args)).fs_driver ?? 'fusedev';
}

/**
 * Whether this start waits in INIT for a takeover: `upgrade` with --upgrade, `failover` when
 * upstream's crash check finds a predecessor's leftovers on `fusePath` (the FUSE mount: the
 * mountpoint, or the erofs driver's views) (§3.4), null for a normal start. Either way the
 * --bootstrap/--image mount is skipped: the mounts come from the takeover.
 */
async function takeoverMode(args: DaemonArgs, fusePath: string, logger: Logger): Promise<'upgrade' | 'failover' | null> {
  if (args.upgrade) {
    logger.info('daemon: --upgrade: waiting in INIT for a takeover');
    return 'upgrade';
  }
  const check = await detectCrash(fusePath, args.apisock);
  if (!check.crashed) return null;
  logger.warn(`daemon: ${check.reason}; waiting in INIT for a takeover${args.supervisor === undefined ? ' (there is no --supervisor: a takeover will fail; umount -l the mountpoint to start afresh)' : ''}`);
  return 'failover';
}

/** Runs the daemon until it stops; resolves with the process exit code. */
export async function runDaemon(args: DaemonArgs): Promise<number> {
  // Blob and cache I/O runs on libuv's threadpool: --fuse-threads sizes it (read at first use).
  process.env.UV_THREADPOOL_SIZE = String(args.threads);
  const logger = createLogger({ level: args.logLevel, file: args.logFile, rotationSizeMiB: args.logRotationSizeMiB });
  const stopEventLog = logBackendEvents(logger);
  const stopSignalAnswers = answerSignals(logger);
  try {
    return await serve(args, logger);
  } finally {
    stopSignalAnswers();
    stopEventLog();
    await logger.close();
  }
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

async function serve(args: DaemonArgs, logger: Logger): Promise<number> {
  // The API (Koa) loads while the crash check and the controller wait on I/O: after a
  // failover, the supervisor can do nothing until the socket answers.
  const apiModule = args.apisock !== undefined ? import('../api/server.js') : undefined;
  apiModule?.catch(() => undefined);
  await raiseNofileLimit(args.rlimitNofile, logger);
  const fsDriver = await chooseFsDriver(args);
  const erofs = fsDriver === 'erofs';
  const givenMountpoint = await mountpointPath(args.mountpoint);
  const earlyStateDir = args.stateDir ?? `/run/nydusd/${args.id ?? escapeStatePath(givenMountpoint)}`;
  if (erofs && args.supervisor === undefined && !args.upgrade) await cleanErofsLeftovers(givenMountpoint, earlyStateDir, logger);
  const takeover = await takeoverMode(args, erofs ? viewsDirOf(earlyStateDir) : givenMountpoint, logger);
  // Waiting for a takeover, the mountpoint belongs to the predecessor (or to nobody, after a
  // crash, when a stat would wait for ever): it is neither checked nor touched.
  const mountpoint = takeover !== null ? givenMountpoint : await checkMountpoint(args.mountpoint);
  let cmd: MountCmd | undefined;
  if (args.bootstrap !== undefined && takeover === null) {
    cmd = { source: resolve(args.bootstrap), fs_type: 'rafs', config: await bootstrapConfig(args), prefetch_files: await prefetchList(args.prefetchFiles) };
  } else if (args.image !== undefined && takeover === null) {
    // Mount by reference: fetch the bootstrap, then mount it like --bootstrap (registry/mount-image.ts).
    const configText = args.config === undefined ? undefined : await bootstrapConfig(args);
    // Loaded only here: the registry client (undici) would slow every other start.
    const { prepareImageMount } = await import('../registry/mount-image.js');
    const image = await prepareImageMount({ reference: args.image, configText });
    logger.info(`daemon: image ${image.reference}: bootstrap ${image.bootstrap}${image.downloaded ? ' (fetched)' : ' (cached)'}`);
    cmd = { source: image.bootstrap, fs_type: 'rafs', config: image.configText, prefetch_files: await prefetchList(args.prefetchFiles) };
  }
  if (cmd !== undefined) {
    const config = checkMountCmd(cmd);
    logger.debug(`daemon: config ${JSON.stringify(redact(config))}`);
  }
  // erofs: the directory whose leftovers were checked above.
  const stateDir = erofs ? earlyStateDir : (args.stateDir ?? `/run/nydusd/${args.id ?? escapeStatePath(mountpoint)}`);
  const b = buildInfo();
  logger.info(`nydusd ${b.package_ver} (${b.git_commit}) on ${mountpoint}, state in ${stateDir}, ${args.fuseImpl}, fs driver ${fsDriver}, ${args.threads} I/O threads`);
  const controller = await DaemonController.create({
    mountpoint,
    fuseImpl: args.fuseImpl,
    fsDriver,
    erofsBacking: process.env.NYDUSD_EROFS_BACKING === 'loop' ? 'loop' : 'file',
    stateDir,
    id: args.id ?? null,
    supervisor: args.supervisor ?? null,
    failoverPolicy: args.failoverPolicy,
    upgrade: takeover !== null,
    logger,
  });
  let signalled = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled++ > 0) return logger.warn(`daemon: ${sig} received again; already stopping`);
    logger.info(`daemon: ${sig} received, stopping`);
    void controller.shutdown('signal');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    try {
      if (cmd !== undefined) await controller.mount(args.virtualMountpoint, cmd);
      if (takeover === null) await controller.startup();
    } catch (err) {
      await controller.abortStartup().catch(() => undefined);
      await controller.close().catch(() => undefined);
      throw err;
    }
    let api: { close(): Promise<void> } | undefined;
    if (args.apisock !== undefined) {
      const { startApiServer } = await apiModule!;
      try {
        api = await startApiServer(controller, args.apisock, logger);
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
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
