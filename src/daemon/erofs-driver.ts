// The kernel side of the erofs fs driver (--fs-driver erofs, decision 0009): for each
// image, the kernel's erofs mounted at the image's host path over the image's bootstrap
// and blob views (served by this daemon's own FUSE connection under the state directory,
// fs/blob-views-fs.ts). Erofs opens those files itself (file-backed erofs) where the
// kernel can; elsewhere each goes on a loop device first. The kernel then answers every
// lookup, readdir and page-cache hit; the daemon only sees large reads of blob views.
//
// Loop devices are attached with autoclear and held by an fd only until erofs has opened
// them, so a failed mount, an unmount or a crash cannot leave one behind. Erofs mounts
// (and loop devices) outlive the process: a successor that takes the views' connection
// over adopts them (found by mount path, and by the views' paths in sysfs); a plain
// start after a crash removes them (cleanStale).
import { mkdir, open, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonError } from '../errors.js';
import { bootstrapPath, viewPath } from '../fs/blob-views-fs.js';
import { findMount, readMounts, unmountFuse } from '../fuse/mount-linux.js';
import { native, systemError } from '../native/index.js';
import { VIEW_BLOCK } from '../storage/blob-view.js';
import type { Logger } from '../util/logger.js';
import { attachLoop, detachLoop, listLoops, loopDevice, type HeldLoop } from './loop-devices.js';
import type { DaemonMount } from './mounts.js';

/** One blob of an attached image, as GET /api/v2/blobs reports it. */
export interface AttachedBlob {
  blobId: string;
  viewPath: string;
  loopDevice: string | null;
  directIo: boolean;
}

/** Where one blob view is attached (AttachedBlob without its id). */
type BlobPlacement = Omit<AttachedBlob, 'blobId'>;

/** What the kernel holds for one image. */
export interface ErofsAttachment {
  hostPath: string;
  blobs: AttachedBlob[];
}

interface Placed extends ErofsAttachment {
  /** The host directory was made for this mount and goes with it. */
  createdDir: boolean;
}

/** Where the images go and where the views are. */
export interface ErofsDriverOptions {
  /** Canonical host mountpoint: the image at `/` goes here, `/x` at `<mountpoint>/x`. */
  mountpoint: string;
  /** Where the views' FUSE connection is mounted. */
  viewsDir: string;
  /** `loop`: erofs on loop devices even where the kernel mounts files (default: files where it can). */
  backing?: 'file' | 'loop';
  logger: Logger;
}

/** Where a daemon with `stateDir` mounts its blob views' FUSE connection. */
export function viewsDirOf(stateDir: string): string {
  return join(stateDir, 'views');
}

const erofsError = (msg: string, cause?: unknown) => new DaemonError('ERR_DAEMON_EROFS', msg, cause === undefined ? undefined : { cause });

/** Mounts and unmounts images with the kernel's erofs over blob views. */
export class ErofsDriver {
  readonly #opts: ErofsDriverOptions;
  readonly #placed = new Map<number, Placed>();
  #viewsReadaheadSet = false;

  constructor(opts: ErofsDriverOptions) {
    this.#opts = opts;
  }

  get viewsDir(): string {
    return this.#opts.viewsDir;
  }

  /** Host path of a pseudo-fs mountpoint: `/` is the mountpoint itself. */
  hostPath(mountpoint: string): string {
    return mountpoint === '/' ? this.#opts.mountpoint : join(this.#opts.mountpoint, mountpoint);
  }

  /** Refuses a mountpoint nested in (or holding) another image's: one erofs mount would hide the other. */
  checkPlacement(mountpoint: string, others: readonly DaemonMount[]): void {
    const under = (a: string, b: string) => a === b || b === '/' || a.startsWith(`${b}/`);
    for (const o of others) {
      if (o.mountpoint !== mountpoint && (under(mountpoint, o.mountpoint) || under(o.mountpoint, mountpoint))) {
        throw new DaemonError('ERR_DAEMON_UNSUPPORTED', `failed to mount at ${mountpoint}: it nests with the image at ${o.mountpoint}, which the erofs fs driver cannot stack`);
      }
    }
  }

  /** The kernel objects of a mount this process knows of. */
  attachment(index: number): ErofsAttachment | undefined {
    return this.#placed.get(index);
  }

  /**
   * Mounts erofs at the image's host path over its bootstrap and views: file-backed
   * (the kernel opens the files on the views' connection itself) where the kernel can,
   * else on loop devices. The views must be reachable (the views connection is being
   * read). On failure nothing is left: no mount, no loop device (they detach once
   * released), no directory made for it.
   */
  async attach(m: DaemonMount): Promise<void> {
    if (this.#placed.has(m.index)) return;
    const views = m.views ?? [];
    const hostPath = this.hostPath(m.mountpoint);
    const createdDir = await this.#prepareDir(hostPath, m.mountpoint !== '/');
    try {
      const bootstrap = join(this.viewsDir, bootstrapPath(m.index));
      const viewPaths = views.map((v) => join(this.viewsDir, viewPath(m.index, v.blob.blobId)));
      const fileOptions = viewPaths.map((p) => `device=${p}`).join(',');
      // Before the mount: a file takes its readahead window from its device when opened.
      await this.#setViewsReadahead();
      let placed: BlobPlacement[] | undefined;
      if (this.#opts.backing !== 'loop' && fileOptions.length < MAX_MOUNT_OPTIONS) placed = await this.#mountFiles(bootstrap, viewPaths, fileOptions, hostPath);
      placed ??= await this.#mountOnLoops(bootstrap, viewPaths, hostPath);
      this.#placed.set(m.index, { hostPath, createdDir, blobs: views.map((v, k) => ({ ...placed[k], blobId: v.blob.blobId })) });
    } catch (err) {
      if (createdDir) await rmdir(hostPath).catch(() => undefined);
      throw err;
    }
  }

  /**
   * File-backed erofs (Linux 6.12+): the bootstrap and every view are opened by the kernel
   * as files on the views' connection, buffered, so the views' readahead brings a run of
   * small files in with one FUSE read. Undefined when this kernel cannot (no loop needed
   * then: the caller falls back to loop devices).
   */
  async #mountFiles(bootstrap: string, viewPaths: string[], options: string, hostPath: string): Promise<BlobPlacement[] | undefined> {
    await warmPageCache(bootstrap);
    try {
      await native().mountFs(bootstrap, hostPath, 'erofs', true, options);
    } catch (err) {
      const cause = systemError(err);
      // ENOTBLK: this erofs takes block devices only (no CONFIG_EROFS_FS_BACKED_BY_FILE).
      if (cause.code === 'ENOTBLK') {
        this.#opts.logger.info('erofs: this kernel mounts erofs on block devices only; using loop devices');
        return undefined;
      }
      throw erofsError(`failed to mount the bootstrap with erofs at ${hostPath}: ${cause.message} (the kernel log may say more)`, cause);
    }
    this.#opts.logger.info(`erofs: mounted ${bootstrap} at ${hostPath}, file-backed, with ${viewPaths.length} blob views`);
    return viewPaths.map((viewPath) => ({ viewPath, loopDevice: null, directIo: false }));
  }

  /**
   * Erofs on loop devices: one per view (direct I/O: erofs' page cache is the only copy)
   * and one for the bootstrap. Every device is released once erofs holds it (or, after a
   * failure, when nothing does: it detaches).
   */
  async #mountOnLoops(bootstrap: string, viewPaths: string[], hostPath: string): Promise<BlobPlacement[]> {
    const held: HeldLoop[] = [];
    try {
      for (const p of viewPaths) held.push(await attachLoop(p, { blockSize: VIEW_BLOCK, directIo: true }));
      const boot = await attachLoop(bootstrap, { blockSize: 0, directIo: false });
      held.push(boot);
      const devices = held.slice(0, viewPaths.length).map((l) => `device=${loopDevice(l.index)}`);
      try {
        await native().mountFs(loopDevice(boot.index), hostPath, 'erofs', true, devices.join(','));
      } catch (err) {
        const cause = systemError(err);
        throw erofsError(`failed to mount the bootstrap with erofs at ${hostPath}: ${cause.message} (the kernel log may say more)`, cause);
      }
      await setReadahead(await deviceNumber(loopDevice(boot.index)), LOOP_READAHEAD_KB, this.#opts.logger);
      this.#opts.logger.info(`erofs: mounted ${bootstrap} at ${hostPath} on ${loopDevice(boot.index)} with ${viewPaths.length} blob devices (${held.slice(0, -1).map((l) => `${loopDevice(l.index)}${l.directIo ? '' : ' buffered'}`).join(', ')})`);
      return viewPaths.map((viewPath, k) => ({ viewPath, loopDevice: loopDevice(held[k].index), directIo: held[k].directIo }));
    } finally {
      for (const l of held) l.release();
    }
  }

  /** The views' readahead window (their connection's backing device info); set once. */
  async #setViewsReadahead(): Promise<void> {
    if (this.#viewsReadaheadSet) return;
    this.#viewsReadaheadSet = true;
    const { dev } = await stat(this.viewsDir);
    await setReadahead(devNumber(dev), VIEWS_READAHEAD_KB, this.#opts.logger);
  }

  /**
   * Takes over what a predecessor left in the kernel for `m`: true when erofs is mounted
   * at its host path (its loop devices are found by the views' paths); false when the
   * image still has to be attached.
   */
  async adopt(m: DaemonMount): Promise<boolean> {
    const hostPath = this.hostPath(m.mountpoint);
    const mounted = await findMount(hostPath);
    if (mounted?.fstype !== 'erofs') return false;
    const loops = new Map((await listLoops()).map((l) => [l.backingFile, l]));
    const views = m.views ?? [];
    this.#placed.set(m.index, {
      hostPath,
      createdDir: m.mountpoint !== '/',
      blobs: views.map((v) => {
        const path = join(this.viewsDir, viewPath(m.index, v.blob.blobId));
        const loop = loops.get(path);
        return { blobId: v.blob.blobId, viewPath: path, loopDevice: loop === undefined ? null : loopDevice(loop.index), directIo: loop?.directIo ?? false };
      }),
    });
    return true;
  }

  /** Unmounts erofs at the mount's host path (lazily when busy); its loop devices detach themselves. */
  async detach(m: DaemonMount): Promise<void> {
    const placed = this.#placed.get(m.index);
    if (placed === undefined) return;
    let how;
    try {
      how = await unmountFuse(placed.hostPath);
    } catch (err) {
      throw erofsError(`failed to unmount erofs at ${placed.hostPath}: ${(err as Error).message}`, err);
    }
    this.#placed.delete(m.index);
    if (how === 'detached') this.#opts.logger.warn(`erofs: ${placed.hostPath} was busy: detached lazily; its files fail once their image's views are gone`);
    if (placed.createdDir) await rmdir(placed.hostPath).catch(() => undefined);
  }

  /** Makes the host directory of a sub-path mount when missing; true when it did. */
  async #prepareDir(hostPath: string, mayCreate: boolean): Promise<boolean> {
    const st = await stat(hostPath).catch(() => null);
    if (st !== null) {
      if (!st.isDirectory()) throw erofsError(`failed to mount at ${hostPath}: not a directory`);
      const existing = await findMount(hostPath);
      if (existing?.mountpoint === hostPath) throw erofsError(`failed to mount at ${hostPath}: already a mount point (${existing.fstype} from ${existing.source})`);
      return false;
    }
    if (!mayCreate) throw erofsError(`failed to mount at ${hostPath}: no such directory`);
    try {
      await mkdir(hostPath, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw erofsError(`failed to create ${hostPath}: ${(err as Error).message}`, err);
    }
    return true;
  }
}

/**
 * On loop devices, file readahead of an erofs mount is its primary device's (the
 * bootstrap's loop device). One chunk (1 MiB by default) per window instead of the
 * 128 KiB default: a sequential reader then costs a quarter of the round trips, and a
 * chunk is what a cold read fetches from the backend anyway.
 */
const LOOP_READAHEAD_KB = 1024;

/**
 * Readahead of the buffered views (file-backed erofs): small files sit next to each other
 * in a blob, so a 4 MiB window serves a run of them with a few concurrent 1 MiB FUSE
 * reads instead of one round trip per file.
 */
const VIEWS_READAHEAD_KB = 4096;

/**
 * Reads a file on the views once, so that its page cache holds it: erofs reads its
 * metadata a page at a time with no readahead, and a cold `find` would otherwise cost a
 * FUSE round trip per metadata page. The views' readahead makes this a few 1 MiB reads.
 */
async function warmPageCache(path: string): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'r');
    const buf = Buffer.allocUnsafe(1 << 20);
    while ((await fh.read(buf, 0, buf.length, null)).bytesRead > 0);
  } catch (err) {
    throw erofsError(`failed to read ${path}: ${(err as Error).message}`, err);
  } finally {
    await fh?.close();
  }
}

/** mount(2) takes its options in one page. */
const MAX_MOUNT_OPTIONS = 4096;

/** `major:minor` of a device number (how /sys/class/bdi names it). */
function devNumber(dev: number): string {
  return `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00)}`;
}

/** `major:minor` of a device node. */
async function deviceNumber(path: string): Promise<string> {
  return devNumber((await stat(path)).rdev);
}

/** Sets read_ahead_kb of the backing device info `bdi` (`major:minor`); a failure costs speed only. */
async function setReadahead(bdi: string, kb: number, logger: Logger): Promise<void> {
  await writeFile(`/sys/class/bdi/${bdi}/read_ahead_kb`, String(kb)).catch((err: Error) =>
    logger.warn(`erofs: cannot set the readahead of device ${bdi} (${err.message}); reads keep the kernel's default window`),
  );
}

/** What a plain start removed of a crashed predecessor's erofs mounts, views mount and loop devices. */
export interface StaleCleanup {
  erofsMounts: string[];
  loops: string[];
  viewsMount: boolean;
}

/**
 * Removes what a dead daemon of the same mountpoint and state directory left: erofs
 * mounts at or under `mountpoint` (deepest first, lazily when busy), loop devices whose
 * backing file is a view under `viewsDir`, and the views' FUSE mount. Only for a start
 * that will not take the connection over (no supervisor to hand it back).
 */
export async function cleanStale(mountpoint: string, viewsDir: string): Promise<StaleCleanup> {
  const out: StaleCleanup = { erofsMounts: [], loops: [], viewsMount: false };
  // Only where a predecessor of ours was: its views are mounted, or loop devices still read them.
  const views = await findMount(viewsDir);
  const ours = (await listLoops()).filter((l) => l.backingFile.startsWith(`${viewsDir}/`));
  if (!views?.fstype.startsWith('fuse') && ours.length === 0) return out;
  const targets = new Set<string>();
  for (const m of await readMounts()) {
    if (m.fstype === 'erofs' && (m.mountpoint === mountpoint || m.mountpoint.startsWith(`${mountpoint}/`))) targets.add(m.mountpoint);
  }
  for (const mp of [...targets].sort((a, b) => b.length - a.length)) {
    await unmountFuse(mp);
    out.erofsMounts.push(mp);
  }
  // Unmounting erofs detached its (autoclear) loop devices; any left did not belong to a mount.
  for (const l of await listLoops()) {
    if (!l.backingFile.startsWith(`${viewsDir}/`)) continue;
    await detachLoop(l.index);
    out.loops.push(loopDevice(l.index));
  }
  if (views?.fstype.startsWith('fuse')) {
    await unmountFuse(viewsDir);
    out.viewsMount = true;
  }
  return out;
}
