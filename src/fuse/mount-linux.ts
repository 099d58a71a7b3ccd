// Linux mount plumbing for the /dev/fuse transport: checks a mountpoint,
// mounts a FUSE connection through mount(8) with the fd as the child's fd 3
// (as nydusd does: fsname "rafs", ro, nosuid, nodev, noatime, allow_other,
// default_permissions), finds a mount's connection id in mountinfo (the
// /sys/fs/fuse/connections/<id> name), unmounts (lazily when busy) and writes
// the connection control files the failover policies use.
import { spawn } from 'node:child_process';
import { open } from 'node:fs';
import { readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { FuseError } from '../errors.js';
import { native, systemError } from '../native/index.js';

/** How the FUSE filesystem is mounted. */
export interface MountOptions {
  /** Mount source shown in /proc/mounts (nydusd: "rafs"). */
  fsName?: string;
  /** Type suffix: the mount type is `fuse.<subtype>` (default "nydus"). */
  subtype?: string;
  /** Let users other than the mounter in (default true, as nydusd). */
  allowOther?: boolean;
  /** Let the kernel check permissions from the modes (default true, as nydusd). */
  defaultPermissions?: boolean;
  /** More `-o` options, verbatim. */
  extraOptions?: readonly string[];
}

/** A line of /proc/self/mountinfo. */
export interface MountInfo {
  mountpoint: string;
  major: number;
  minor: number;
  fstype: string;
  source: string;
}

/** Kernel FUSE connection id of a device: `major<<20 | minor`, as in /sys/fs/fuse/connections. */
export function connectionId(major: number, minor: number): number {
  return major * 2 ** 20 + minor;
}

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Every mount of this process's namespace, in mount order, from /proc/self/mountinfo. */
export async function readMounts(): Promise<MountInfo[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 10) continue;
    const sep = f.indexOf('-', 6);
    if (sep < 0) continue;
    const [major, minor] = f[2].split(':').map(Number);
    out.push({ mountpoint: unescapeMountField(f[4]), major, minor, fstype: f[sep + 1], source: unescapeMountField(f[sep + 2]) });
  }
  return out;
}

/** The topmost mount at `path` (already canonical), from /proc/self/mountinfo. */
export async function findMount(path: string): Promise<MountInfo | undefined> {
  return (await readMounts()).findLast((m) => m.mountpoint === path);
}

/**
 * Canonical path of a mountpoint that exists, is a directory and does not
 * already carry a FUSE mount (live or left over by a crash). Never touches a
 * FUSE mount: the check reads mountinfo before it stats anything.
 */
export async function checkMountpoint(mountpoint: string): Promise<string> {
  let path: string;
  try {
    path = await realpath(mountpoint);
  } catch (err) {
    throw new FuseError('ERR_FUSE_MOUNT', `failed to mount at ${mountpoint}: ${(err as Error).message}`, { cause: err });
  }
  const existing = await findMount(path);
  if (existing?.fstype.startsWith('fuse')) {
    throw new FuseError('ERR_FUSE_MOUNT', `failed to mount at ${path}: already a FUSE mount (${existing.fstype} from ${existing.source}); unmount it first (umount -l)`);
  }
  const st = await stat(path);
  if (!st.isDirectory()) throw new FuseError('ERR_FUSE_MOUNT', `failed to mount at ${path}: not a directory`);
  return path;
}

/** Opens /dev/fuse read-write, close-on-exec. */
export async function openFuseDevice(): Promise<number> {
  try {
    // A plain fd, not a FileHandle (which closes itself on GC): the session owns it.
    // 'r+' is O_RDWR; libuv always adds O_CLOEXEC.
    return await promisify(open)('/dev/fuse', 'r+');
  } catch (err) {
    throw new FuseError('ERR_FUSE_MOUNT', `failed to open /dev/fuse: ${(err as Error).message}`, { cause: err });
  }
}

/** The `-o` list mount(8) gets. */
export function mountOptionList(opts: MountOptions): string[] {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const list = ['fd=3', 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`, 'ro', 'nosuid', 'nodev', 'noatime'];
  if (opts.allowOther ?? true) list.push('allow_other');
  if (opts.defaultPermissions ?? true) list.push('default_permissions');
  list.push(...(opts.extraOptions ?? []));
  return list;
}

/** Mounts the connection of `fd` at `path` through mount(8) (root only). */
export async function mountFuse(fd: number, path: string, opts: MountOptions = {}): Promise<void> {
  const type = `fuse.${opts.subtype ?? 'nydus'}`;
  const args = ['-i', '-t', type, '-o', mountOptionList(opts).join(','), opts.fsName ?? 'rafs', path];
  const child = spawn('mount', args, { stdio: ['ignore', 'ignore', 'pipe', fd] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  }).catch((err: Error) => {
    throw new FuseError('ERR_FUSE_MOUNT', `failed to run mount: ${err.message}`, { cause: err });
  });
  if (code !== 0) {
    const why = stderr.trim().split('\n').pop() || `exit code ${code}`;
    throw new FuseError('ERR_FUSE_MOUNT', `failed to mount ${type} at ${path}: ${why}`);
  }
}

/** What unmountFuse did. */
export type UnmountResult = 'unmounted' | 'detached' | 'not-mounted';

/** umount2(path); when busy, a lazy (MNT_DETACH) unmount. */
export async function unmountFuse(path: string): Promise<UnmountResult> {
  const addon = native();
  try {
    await addon.unmount(path, 0);
    return 'unmounted';
  } catch (err) {
    const cause = systemError(err);
    if (cause.code === 'EINVAL' || cause.code === 'ENOENT') return 'not-mounted';
    if (cause.code !== 'EBUSY') throw new FuseError('ERR_FUSE_MOUNT', `failed to unmount ${path}: ${cause.message}`, { cause });
  }
  try {
    await addon.unmount(path, addon.MNT_DETACH);
    return 'detached';
  } catch (err) {
    const cause = systemError(err);
    throw new FuseError('ERR_FUSE_MOUNT', `failed to unmount ${path} lazily: ${cause.message}`, { cause });
  }
}

/**
 * Writes "1" to a connection control file (`abort`, and on kernels that have
 * them `flush`/`resend`), trying /proc/sys/fs/fuse/connections then
 * /sys/fs/fuse/connections as nydusd does (docs/contract.md §5.3).
 */
export async function writeConnectionControl(connId: number, file: 'abort' | 'flush' | 'resend'): Promise<void> {
  const bases = ['/proc/sys/fs/fuse/connections', '/sys/fs/fuse/connections'];
  let last: unknown;
  for (const base of bases) {
    try {
      await writeFile(`${base}/${connId}/${file}`, '1');
      return;
    } catch (err) {
      last = err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') break;
    }
  }
  throw new FuseError('ERR_FUSE_SESSION', `failed to write ${file} of FUSE connection ${connId}: ${(last as Error).message}`, { cause: last });
}
