// Turns a MountCmd (POST/PUT /api/v1/mount, or --bootstrap at startup) into a ready
// image mount: the fs_type is checked, the config parsed, the bootstrap opened and the
// storage stack built. Either every step succeeds or whatever was opened is closed again:
// a refused mount leaves nothing behind. Attaching it to the pseudo fs is the caller's.
import { parseConfig } from '../config/parse.js';
import { redact } from '../config/derive.js';
import type { FsDriver, NydusConfig } from '../config/types.js';
import { ConfigError, DaemonError, NydusError } from '../errors.js';
import { FsIoStats } from '../fs/io-stats.js';
import { ImageFs } from '../fs/image-fs.js';
import type { ImageMount } from '../fs/pseudo-fs.js';
import { openBootstrap } from '../rafs/reader/open.js';
import type { RafsSuper } from '../rafs/types.js';
import { BlobView, viewLayoutProblem } from '../storage/blob-view.js';
import { createStorage, type Storage } from '../storage/factory.js';
import type { MountCmd } from './control.js';
import { nowMountedTime } from './upstream-format.js';

/** An image mount with what the daemon reports about it and must release. */
export interface DaemonMount extends ImageMount {
  readonly source: string;
  readonly fsType: string;
  /** The config as received (secrets included): what the journal keeps. */
  readonly configText: string;
  readonly config: NydusConfig;
  readonly prefetchFiles: string[] | null;
  readonly storage: Storage;
  readonly stats: FsIoStats;
  /** Key of the backend and blobcache metrics: the config's id, or the mountpoint when it has none. */
  readonly metricsId: string;
  /** DaemonInfo `mounted_time` (kept across remounts, as upstream). */
  readonly mountedTime: string;
  /** How the image is served: by this daemon's FUSE answers, or by the kernel's erofs. */
  readonly fsDriver: FsDriver;
  /** erofs: one view per blob, in blob table order (erofs device slot k + 1 is views[k]). */
  readonly views?: readonly BlobView[];
  /** erofs: the bootstrap as parsed (an EROFS image), served beside the views. */
  readonly bootstrapBytes?: Buffer;
}

/** What every mount of one daemon shares. */
export interface MountEnv {
  uid: number;
  gid: number;
  startTime: number;
  /** The daemon's fs driver: every mount is served the same way. */
  fsDriver: FsDriver;
  onReadError(err: unknown): void;
  /** Told about config keys this daemon does not use (logged as warnings). */
  warn?(message: string): void;
}

const PASSTHROUGH = new Set(['passthrough', 'passthroughfs', 'passthrough_fs']);

/** Checks the parts of a MountCmd that need no I/O; returns the parsed config. */
export function checkMountCmd(cmd: MountCmd, warn?: (message: string) => void): NydusConfig {
  if (PASSTHROUGH.has(cmd.fs_type)) {
    throw new DaemonError('ERR_DAEMON_UNSUPPORTED', `failed to mount: fs_type ${cmd.fs_type} is not supported, only rafs images are served`);
  }
  if (cmd.fs_type !== 'rafs') {
    throw new ConfigError('ERR_CONFIG_INVALID', `failed to mount: fs_type ${JSON.stringify(cmd.fs_type)} is not supported, expected "rafs"`, {
      detail: { upstream: `invalid argument \`only 'rafs' and 'passthrough_fs' are supported, but ${cmd.fs_type} was specified\`` },
    });
  }
  if (typeof cmd.source !== 'string' || cmd.source === '') throw new ConfigError('ERR_CONFIG_INVALID', 'failed to mount: source (the bootstrap path) is missing');
  for (const p of cmd.prefetch_files ?? []) {
    if (!p.startsWith('/')) throw new ConfigError('ERR_CONFIG_INVALID', `failed to mount: prefetch file ${JSON.stringify(p)} is not an absolute path (InvalidPrefetchList)`);
  }
  return parseConfig(cmd.config, warn);
}

/**
 * Opens everything a mount needs. On a remount, `replacing` is the mount being replaced:
 * its mounted time and counters carry over, as upstream updates a Rafs in place.
 * Errors: config codes, ERR_DAEMON_BOOTSTRAP, format and storage codes.
 */
export async function openMount(mountpoint: string, index: number, cmd: MountCmd, env: MountEnv, replacing?: DaemonMount): Promise<DaemonMount> {
  const config = checkMountCmd(cmd, env.warn);
  let sb;
  try {
    sb = await openBootstrap(cmd.source);
  } catch (err) {
    if (err instanceof NydusError) throw err;
    throw new DaemonError('ERR_DAEMON_BOOTSTRAP', `failed to open bootstrap ${cmd.source}: ${(err as Error).message}`, { cause: err });
  }
  if ((sb.getAttr(sb.rootIno).mode & 0o170000) !== 0o040000) {
    throw new DaemonError('ERR_DAEMON_BOOTSTRAP', `failed to mount ${cmd.source}: its root is not a directory`);
  }
  checkDriver(cmd.source, config, sb, env.fsDriver);
  // Prefetch (when the config enables it) starts here and stops in storage.close().
  const storage = await createStorage(config, sb, { prefetch: { image: sb, files: cmd.prefetch_files ?? null } });
  const fs = new ImageFs(sb, storage.reader, {
    enableXattr: config.rafs.enable_xattr,
    uid: env.uid,
    gid: env.gid,
    startTime: env.startTime,
    onReadError: (err) => env.onReadError(err),
  });
  const stats = replacing?.stats ?? new FsIoStats(mountpoint, {
    files: config.rafs.iostats_files,
    accessPattern: config.rafs.access_pattern,
    latestReadFiles: config.rafs.latest_read_files,
  });
  return {
    mountpoint,
    index,
    fs,
    source: cmd.source,
    fsType: cmd.fs_type,
    configText: cmd.config,
    config,
    prefetchFiles: cmd.prefetch_files === null || cmd.prefetch_files === undefined ? null : [...cmd.prefetch_files],
    storage,
    stats,
    metricsId: config.id === '' ? mountpoint : config.id,
    mountedTime: replacing?.mountedTime ?? nowMountedTime(),
    fsDriver: env.fsDriver,
    views: env.fsDriver === 'erofs' ? sb.blobs.map((b) => new BlobView(b, sb.blobChunks(b.index), storage.reader)) : undefined,
    // checkDriver let only v6 through for erofs.
    bootstrapBytes: env.fsDriver === 'erofs' && sb.version === 6 ? sb.bytes : undefined,
  };
}

/**
 * The config may name the daemon's driver, never another one; the erofs driver takes only
 * images the kernel's erofs can read from blob views: RAFS v6 with 4 KiB-aligned chunks.
 */
function checkDriver(source: string, config: NydusConfig, sb: RafsSuper, driver: FsDriver): void {
  if (config.fs_driver !== undefined && config.fs_driver !== driver) {
    throw new DaemonError('ERR_DAEMON_UNSUPPORTED', `failed to mount ${source}: its config asks for fs_driver ${config.fs_driver}, but this daemon serves ${driver} (start a daemon with --fs-driver ${config.fs_driver})`);
  }
  if (driver !== 'erofs') return;
  const why = sb.version !== 6 ? `it is RAFS v${sb.version}, not an EROFS image` : sb.blobs.map((b) => viewLayoutProblem(b, sb.blobChunks(b.index))).find((p) => p !== undefined);
  if (why !== undefined) throw new DaemonError('ERR_DAEMON_UNSUPPORTED', `failed to mount ${source} with --fs-driver erofs: ${why}; serve it with --fs-driver fusedev`);
}

/** The config of a mount as DaemonInfo shows it: no secrets. */
export function publicConfig(m: DaemonMount): Record<string, unknown> {
  return redact(m.config) as unknown as Record<string, unknown>;
}
