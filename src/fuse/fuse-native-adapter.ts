// `--fuse-impl fuse-native`: serves a FileSystem through the fuse-native
// package (libfuse2's high-level, path-based API). Paths are mapped to inode
// numbers by lookups from the root (node id 1), cached per path. libfuse keeps
// its own node table and the connection inside C, so this transport cannot
// hand its connection to another process: the upgrade calls refuse clearly.
// Limits of the libfuse2 binding: times have millisecond precision, inode
// numbers and statfs counters are truncated to 32 bits, no lseek, no ERANGE.
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { FuseError, toErrno } from '../errors.js';
import type { Attr, DirentSink, FileSystem, RequestContext, StatFs } from './filesystem.js';
import { S_IFMT } from './filesystem.js';
import { connectionId, findMount, checkMountpoint, type MountOptions } from './mount-linux.js';
import type { InflightRequest, ProtocolOptions } from './protocol-server.js';
import type { SessionEnd } from './session.js';

const E = constants.errno;
const PATH_CACHE_LIMIT = 100_000;

type Cb = (code: number, ...values: unknown[]) => void;

/** The slice of fuse-native's Fuse class this adapter uses. */
interface NativeFuse {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  _fuseOptions(): string;
}
type NativeFuseClass = new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>) => NativeFuse;

const never = new AbortController().signal;

/** A request context for calls that come through libfuse (which does not tell who asked). */
function context(nodeid: number): RequestContext {
  return { uid: 0, gid: 0, pid: 0, opcode: 0, nodeid, signal: never };
}

/** fuse-native's stat object (times in ms since the epoch). */
function toStat(a: Attr): Record<string, number> {
  const ms = (s: number | undefined, ns: number | undefined): number => (s ?? a.mtime) * 1000 + Math.floor((ns ?? a.mtimeNsec ?? 0) / 1e6);
  return {
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    dev: 0,
    nlink: a.nlink,
    ino: a.ino,
    rdev: a.rdev,
    blksize: a.blksize ?? 4096,
    blocks: a.blocks,
    atime: ms(a.atime, a.atime === undefined ? a.mtimeNsec : a.atimeNsec),
    mtime: ms(a.mtime, a.mtimeNsec),
    ctime: ms(a.ctime, a.ctime === undefined ? a.mtimeNsec : a.ctimeNsec),
  };
}

/** Collects a whole directory listing (libfuse2 asks for it at once). */
class ListSink implements DirentSink {
  readonly plus = true;
  readonly names: string[] = [];
  readonly stats: Record<string, number>[] = [];
  next = 0;
  add(name: Buffer | string, ino: number, mode: number, nextOffset: number, attr?: Attr): boolean {
    this.names.push(typeof name === 'string' ? name : name.toString());
    this.stats.push(toStat(attr ?? { ino, mode: mode & S_IFMT, nlink: 1, uid: 0, gid: 0, size: 0, blocks: 0, rdev: 0, mtime: 0 }));
    this.next = nextOffset;
    return true;
  }
}

/** A FileSystem mounted through fuse-native. */
export class FuseNativeMount {
  readonly mountpoint: string;
  readonly connId: number | undefined;
  readonly ended: Promise<SessionEnd>;
  readonly #fuse: NativeFuse;
  #resolveEnded!: (e: SessionEnd) => void;
  #done = false;

  private constructor(mountpoint: string, fuse: NativeFuse, connId: number | undefined) {
    this.mountpoint = mountpoint;
    this.#fuse = fuse;
    this.connId = connId;
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
  }

  /** Mounts `fs` at `mountpoint` through libfuse2 (read-only, same options as the /dev/fuse transport where libfuse2 has them). */
  static async mount(fs: FileSystem, mountpoint: string, opts: MountOptions & ProtocolOptions = {}): Promise<FuseNativeMount> {
    const path = await checkMountpoint(mountpoint);
    const Fuse = createRequire(import.meta.url)('fuse-native') as NativeFuseClass;
    const timeouts = { entry: 1, attr: 1, negative: 0, ...opts.timeouts };
    const fuse = new Fuse(path, new PathOps(fs).handlers(), {
      allowOther: opts.allowOther ?? true,
      defaultPermissions: opts.defaultPermissions ?? true,
      fsname: opts.fsName ?? 'rafs',
      subtype: opts.subtype ?? 'nydus',
      timeout: false,
    });
    // fuse-native passes only the options it knows (and drops zero timeouts);
    // add read-only mounting, the image's own inode numbers (use_ino,
    // readdir_ino) and the cache timeouts to its -o string.
    const base = fuse._fuseOptions.bind(fuse);
    const extra = [
      'ro', 'noatime', 'use_ino', 'readdir_ino',
      `entry_timeout=${timeouts.entry}`, `attr_timeout=${timeouts.attr}`, `negative_timeout=${timeouts.negative}`,
      ...(opts.extraOptions ?? []),
    ].join(',');
    fuse._fuseOptions = () => {
      const o = base();
      return o ? `${o},${extra}` : `-o${extra}`;
    };
    await new Promise<void>((resolve, reject) =>
      fuse.mount((err) => (err ? reject(new FuseError('ERR_FUSE_MOUNT', `failed to mount fuse-native at ${path}: ${err.message}`, { cause: err })) : resolve())),
    );
    const info = await findMount(path);
    return new FuseNativeMount(path, fuse, info ? connectionId(info.major, info.minor) : undefined);
  }

  /** libfuse answers inside C: nothing to report. */
  inflight(): InflightRequest[] {
    return [];
  }

  /** Unmounts (fusermount -u -z) and stops libfuse's loop. */
  async unmount(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await new Promise<void>((resolve, reject) =>
      this.#fuse.unmount((err) => (err ? reject(new FuseError('ERR_FUSE_MOUNT', `failed to unmount ${this.mountpoint}: ${err.message}`, { cause: err })) : resolve())),
    );
    this.#resolveEnded({ reason: 'unmounted' });
  }
}

/** The path-based handlers fuse-native calls, mapped onto the inode-based FileSystem. */
class PathOps {
  readonly #fs: FileSystem;
  readonly #inos = new Map<string, number>([['/', 1]]);
  readonly #handles = new Map<number, number>();
  #nextHandle = 1;

  constructor(fs: FileSystem) {
    this.#fs = fs;
  }

  /** Inode of `path`, by lookups from the deepest cached ancestor. */
  async #resolve(path: string): Promise<number> {
    const hit = this.#inos.get(path);
    if (hit !== undefined) return hit;
    const lookup = this.#fs.lookup;
    if (!lookup) throw Object.assign(new Error('ENOSYS'), { code: 'ENOSYS' });
    const cut = path.lastIndexOf('/');
    const parent = await this.#resolve(cut <= 0 ? '/' : path.slice(0, cut));
    const attr = await lookup.call(this.#fs, parent, Buffer.from(path.slice(cut + 1)), context(parent));
    if (this.#inos.size >= PATH_CACHE_LIMIT) {
      this.#inos.clear();
      this.#inos.set('/', 1);
    }
    this.#inos.set(path, attr.ino);
    return attr.ino;
  }

  #call<K extends keyof FileSystem>(name: K): NonNullable<FileSystem[K]> {
    const fn = this.#fs[name];
    if (typeof fn !== 'function') throw Object.assign(new Error('ENOSYS'), { code: 'ENOSYS' });
    return fn.bind(this.#fs) as NonNullable<FileSystem[K]>;
  }

  /** Runs `op` and answers fuse-native: cb(0, ...values) or cb(-errno). */
  #run(cb: Cb, op: () => Promise<unknown[]>): void {
    op().then(
      (values) => cb(0, ...values),
      (err: unknown) => cb(-toErrno(err)),
    );
  }

  handlers(): Record<string, unknown> {
    const erofs = (...args: unknown[]): void => (args[args.length - 1] as Cb)(-E.EROFS);
    const handlers: Record<string, unknown> = {
      init: (cb: Cb) => cb(0),
      getattr: (path: string, cb: Cb) => this.#run(cb, async () => {
        const ino = await this.#resolve(path);
        return [toStat(await this.#call('getattr')(ino, context(ino)))];
      }),
      fgetattr: (path: string, _fd: number, cb: Cb) => (handlers.getattr as (p: string, c: Cb) => void)(path, cb),
      readlink: (path: string, cb: Cb) => this.#run(cb, async () => {
        const ino = await this.#resolve(path);
        return [String(await this.#call('readlink')(ino, context(ino)))];
      }),
      open: (path: string, flags: number, cb: Cb) => this.#run(cb, async () => {
        const ino = await this.#resolve(path);
        const r = this.#fs.open ? await this.#fs.open(ino, flags, context(ino)) : {};
        return [this.#handle(r.fh ?? 0)];
      }),
      opendir: (path: string, flags: number, cb: Cb) => this.#run(cb, async () => {
        const ino = await this.#resolve(path);
        const r = this.#fs.opendir ? await this.#fs.opendir(ino, flags, context(ino)) : {};
        return [this.#handle(r.fh ?? 0)];
      }),
      read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
        this.#resolve(path)
          .then(async (ino) => {
            const data = await this.#call('read')(ino, this.#handles.get(fd) ?? 0, pos, len, context(ino));
            const parts = Buffer.isBuffer(data) ? [data] : data;
            let n = 0;
            for (const p of parts) {
              if (n + p.length > len) throw new FuseError('ERR_FUSE_PROTOCOL', 'failed to read: the filesystem returned more than asked');
              n += p.copy(buf, n);
            }
            cb(n);
          })
          .catch((err: unknown) => cb(-toErrno(err)));
      },
      release: (_path: string, fd: number, cb: Cb) => this.#closeHandle(fd, cb, 'release', _path),
      releasedir: (_path: string, fd: number, cb: Cb) => this.#closeHandle(fd, cb, 'releasedir', _path),
      flush: (_path: string, _fd: number, cb: Cb) => cb(0),
      readdir: (path: string, cb: Cb) => this.#run(cb, async () => {
        const ino = await this.#resolve(path);
        const readdir = this.#fs.readdirplus ?? this.#call('readdir');
        const sink = new ListSink();
        for (let offset = 0, guard = 0; guard < 1_000_000; guard++) {
          const before = sink.names.length;
          await readdir.call(this.#fs, ino, 0, offset, sink, context(ino));
          if (sink.names.length === before) break;
          offset = sink.next;
        }
        return [sink.names, sink.stats];
      }),
      statfs: (path: string, cb: Cb) => this.#run(cb, async () => {
        const s: StatFs = await this.#call('statfs')(1, context(1));
        return [{ ...s, favail: s.ffree, fsid: 0, flag: 1, namemax: s.namelen }];
      }),
      getxattr: (path: string, name: string, _pos: number, cb: Cb) => this.#run(cb, async () => {
        const ino = await this.#resolve(path);
        return [await this.#call('getxattr')(ino, Buffer.from(name), context(ino))];
      }),
      listxattr: (path: string, cb: Cb) => this.#run(cb, async () => {
        const ino = await this.#resolve(path);
        const names = await this.#call('listxattr')(ino, context(ino));
        return [names.map((n) => String(n))];
      }),
      access: (path: string, mode: number, cb: Cb) => this.#run(cb, async () => {
        const ino = await this.#resolve(path);
        if (this.#fs.access) await this.#fs.access(ino, mode, context(ino));
        return [];
      }),
    };
    for (const op of ['truncate', 'ftruncate', 'chown', 'chmod', 'mknod', 'setxattr', 'removexattr', 'write', 'create', 'unlink', 'rename', 'link', 'symlink', 'mkdir', 'rmdir', 'utimens']) {
      handlers[op] = erofs;
    }
    return handlers;
  }

  #handle(fh: number): number {
    const h = this.#nextHandle++;
    if (this.#nextHandle > 0x7fffffff) this.#nextHandle = 1;
    this.#handles.set(h, fh);
    return h;
  }

  #closeHandle(fd: number, cb: Cb, method: 'release' | 'releasedir', path: string): void {
    const fh = this.#handles.get(fd) ?? 0;
    this.#handles.delete(fd);
    this.#run(cb, async () => {
      const ino = this.#inos.get(path);
      const fn = this.#fs[method];
      if (fn && ino !== undefined) await fn.call(this.#fs, ino, fh, context(ino));
      return [];
    });
  }
}
