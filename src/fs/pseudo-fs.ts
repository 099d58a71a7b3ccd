// The FileSystem the FUSE session serves: a tree of pseudo directories holding image
// mounts at paths (`/`, `/<snapshot id>`, `/a/b/c`), as fuse-backend-rs' Vfs does for
// nydusd. Node ids are computed (node-id.ts), so a successor process that re-attaches
// the same mounts at the same indexes answers every node id the kernel holds. Mount
// table changes are synchronous; the kernel's cached dentries are invalidated after
// each change through a notifier (the /dev/fuse session), so a remount is visible at once.
//
// There is no open/opendir, as upstream's Vfs (no_open, no_opendir): the kernel then
// opens without asking, keeps page cache and directory listings, and sends no RELEASE.
// So a mount table change also drops the listing of the directory that changed.
//
// As upstream: an image mounted at `/` hides the pseudo tree (mounts at other paths stay
// in the table but are reached only once `/` is unmounted), and a mount inside another
// mount's path hides what lies below it.
import { posix } from 'node:path';
import { ConfigError, DaemonError, FuseError, RafsFormatError } from '../errors.js';
import type { Attr, DirentSink, FileSystem, SeekWhence, StatFs } from '../fuse/filesystem.js';
import { S_IFDIR } from '../fuse/filesystem.js';
import type { ImageFs, ListingIds } from './image-fs.js';
import { MAX_INDEX, PSEUDO_BASE, ROOT_ID, imageNodeId, indexOfNode, inoFits, inoOfNode, pseudoDirId } from './node-id.js';
import { mountpointTooLong } from '../util/path-limits.js';

/** An image attached to the pseudo fs. */
export interface ImageMount {
  /** Normalized pseudo-fs path (`/` or `/a/b`). */
  readonly mountpoint: string;
  /** High bits of the mount's node ids (1 .. MAX_INDEX). */
  readonly index: number;
  readonly fs: ImageFs;
}

/** How the pseudo fs tells the kernel to drop what it cached (the /dev/fuse session's notify calls). */
export interface KernelNotifier {
  invalEntry(parent: number, name: Buffer): Promise<void>;
  /** Drops attributes and cached data (a directory's cached listing included) of a node. */
  invalInode(nodeId: number): Promise<void>;
}

/** What the pseudo fs reports for its own directories. */
export interface PseudoFsOptions {
  uid: number;
  gid: number;
  /** mtime of pseudo directories (seconds). */
  startTime: number;
}

interface PseudoNode {
  id: number;
  /** The name as bytes held in a latin1 string (exact byte compare). */
  key: string;
  path: string;
  parent: PseudoNode | null;
  children: Map<string, PseudoNode>;
  sorted: PseudoNode[] | null;
  mount: ImageMount | null;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
const stale = new FuseError('ERR_FS_STALE', 'failed to resolve node: it belongs to an unmounted image');
const noEntry = new RafsFormatError('ERR_RAFS_NO_ENTRY', 'failed to look up: no such entry');
const noXattr = new RafsFormatError('ERR_RAFS_NO_XATTR', 'failed to get xattr: no such attribute');
const isDir = new FuseError('ERR_FS_IS_DIR', 'failed to read: a directory');
const PSEUDO_STATFS: StatFs = { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 512, namelen: 255, frsize: 0 };

/**
 * Normalizes a pseudo-fs mountpoint as upstream's path walk does (`.` skipped, `..` up,
 * clamped at the root, duplicate and trailing slashes dropped). Throws unless absolute and
 * within the kernel's name and path limits.
 */
export function normalizeMountpoint(mountpoint: string): string {
  const shown = mountpoint.length > 80 ? `${JSON.stringify(mountpoint.slice(0, 80))}...` : JSON.stringify(mountpoint);
  if (!mountpoint.startsWith('/') || mountpoint.includes('\0')) {
    throw new ConfigError('ERR_CONFIG_INVALID', `failed to use mountpoint ${shown}: not an absolute path`);
  }
  const tooLong = mountpointTooLong(mountpoint);
  if (tooLong !== undefined) throw new ConfigError('ERR_CONFIG_INVALID', `failed to use mountpoint ${shown}: ${tooLong}`);
  const p = posix.normalize(mountpoint);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

function components(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

/** The pseudo filesystem and its mount table. */
export class PseudoFs<M extends ImageMount = ImageMount> implements FileSystem {
  readonly #opts: PseudoFsOptions;
  readonly #root: PseudoNode;
  readonly #byId = new Map<number, PseudoNode>();
  readonly #byIndex = new Map<number, M>();
  readonly #byPath = new Map<string, M>();
  #nextIndex = 1;
  #notifier: KernelNotifier | undefined;

  constructor(opts: PseudoFsOptions) {
    this.#opts = opts;
    this.#root = { id: ROOT_ID, key: '', path: '/', parent: null, children: new Map(), sorted: null, mount: null };
    this.#byId.set(ROOT_ID, this.#root);
  }

  // ---- mount table ---------------------------------------------------------

  /** Where invalidations go; unset (no FUSE session yet, or fuse-native) means none are sent. */
  setNotifier(notifier: KernelNotifier | undefined): void {
    this.#notifier = notifier;
  }

  /** Mounts in mountpoint order. */
  mounts(): M[] {
    return [...this.#byPath.values()].sort((a, b) => (a.mountpoint < b.mountpoint ? -1 : a.mountpoint > b.mountpoint ? 1 : 0));
  }

  get(mountpoint: string): M | undefined {
    return this.#byPath.get(mountpoint);
  }

  /** The next index a mount gets; a successor sets it from the saved state so indexes never repeat. */
  get nextIndex(): number {
    return this.#nextIndex;
  }

  set nextIndex(n: number) {
    if (!(Number.isSafeInteger(n) && n >= 1 && n <= MAX_INDEX + 1)) throw new RangeError(`bad next mount index ${n}`);
    this.#nextIndex = n > MAX_INDEX ? 1 : n;
  }

  /** Allocates from `n` on unless that is below where allocation stands (indexes another daemon used stay unused). */
  reserveIndexesBelow(n: number): void {
    if (n > this.#nextIndex) this.nextIndex = n;
  }

  /**
   * A fresh index: the next one not in use, counting up and wrapping after MAX_INDEX
   * (a million mounts later), so an index comes back only long after its mount is gone.
   */
  allocateIndex(): number {
    for (let tries = 0; tries < MAX_INDEX; tries++) {
      const idx = this.#nextIndex;
      this.#nextIndex = idx >= MAX_INDEX ? 1 : idx + 1;
      if (!this.#byIndex.has(idx)) return idx;
    }
    throw new DaemonError('ERR_DAEMON_UNSUPPORTED', `failed to allocate a mount index: all ${MAX_INDEX} are in use`);
  }

  /** Throws what attach() would throw for a mount at `mountpoint`, changing nothing. */
  checkAttach(mountpoint: string): void {
    if (this.#byPath.has(mountpoint)) throw new DaemonError('ERR_DAEMON_MOUNT_EXISTS', `failed to mount at ${mountpoint}: a filesystem is already mounted there`);
    this.#planPath(mountpoint);
  }

  /**
   * Attaches `mount` at its mountpoint. Throws ERR_DAEMON_MOUNT_EXISTS when one is there;
   * nothing changes on failure. Resolves the returned promise once the kernel was told.
   */
  attach(mount: M): Promise<void> {
    const path = mount.mountpoint;
    this.checkAttach(path);
    if (this.#byIndex.has(mount.index)) throw new DaemonError('ERR_DAEMON_UPGRADE', `failed to mount at ${path}: index ${mount.index} is in use`);
    if (!inoFits(mount.fs.rootIno)) throw new DaemonError('ERR_DAEMON_UNSUPPORTED', `failed to mount at ${path}: root inode ${mount.fs.rootIno} is too large`);
    const node = this.#makePath(path);
    node.mount = mount;
    this.#byPath.set(path, mount);
    this.#byIndex.set(mount.index, mount);
    return this.#invalidateAt(node, null);
  }

  /** Swaps the image at `mountpoint` for `mount` (same path, new index); returns the old one. */
  replace(mount: M): { old: M; invalidated: Promise<void> } {
    const old = this.#byPath.get(mount.mountpoint);
    if (!old) throw notMounted(mount.mountpoint);
    if (this.#byIndex.has(mount.index)) throw new DaemonError('ERR_DAEMON_UPGRADE', `failed to remount ${mount.mountpoint}: index ${mount.index} is in use`);
    const node = this.#walk(mount.mountpoint)!;
    node.mount = mount;
    this.#byPath.set(mount.mountpoint, mount);
    this.#byIndex.delete(old.index);
    this.#byIndex.set(mount.index, mount);
    return { old, invalidated: this.#invalidateAt(node, old) };
  }

  /** Detaches the mount at `mountpoint` (ERR_DAEMON_MOUNT_NOT_FOUND when none); returns it. */
  detach(mountpoint: string): { old: M; invalidated: Promise<void> } {
    const old = this.#byPath.get(mountpoint);
    if (!old) throw notMounted(mountpoint);
    let node = this.#walk(mountpoint)!;
    node.mount = null;
    this.#byPath.delete(mountpoint);
    this.#byIndex.delete(old.index);
    // Drop pseudo directories that lead to no mount any more; the kernel forgets the topmost.
    let top = node;
    while (node.parent !== null && node.mount === null && node.children.size === 0) {
      const parent: PseudoNode = node.parent;
      parent.children.delete(node.key);
      parent.sorted = null;
      this.#byId.delete(node.id);
      top = node;
      node = parent;
    }
    return { old, invalidated: this.#invalidateAt(top, old) };
  }

  /** The mount with `index`, if any. */
  mountAtIndex(index: number): M | undefined {
    return this.#byIndex.get(index);
  }

  /** The image mount a node id belongs to (undefined for pseudo directories and stale ids). */
  mountOfNode(nodeId: number): M | undefined {
    if (nodeId === ROOT_ID) return (this.#root.mount as M | null) ?? undefined;
    if (nodeId >= PSEUDO_BASE) return undefined;
    return this.#byIndex.get(indexOfNode(nodeId));
  }

  /** The image inode number a node id of `mount` stands for. */
  inoOf(mount: ImageMount, nodeId: number): number {
    return nodeId === ROOT_ID ? mount.fs.rootIno : inoOfNode(nodeId);
  }

  // ---- FileSystem ----------------------------------------------------------

  lookup(parent: number, name: Buffer): Attr {
    const m = this.#mountFor(parent);
    if (m !== undefined) {
      const ino = m.fs.lookup(this.inoOf(m, parent), name);
      if (ino === undefined) throw noEntry;
      return m.fs.attr(ino, this.#nodeOf(m, ino));
    }
    const dir = this.#dirFor(parent);
    const child = dir.children.get(name.toString('latin1'));
    if (child === undefined) throw noEntry;
    return this.#childAttr(child);
  }

  getattr(nodeId: number): Attr {
    const m = this.#mountFor(nodeId);
    if (m !== undefined) return m.fs.attr(this.inoOf(m, nodeId), nodeId);
    return this.#pseudoAttr(this.#dirFor(nodeId));
  }

  readlink(nodeId: number): Buffer {
    const m = this.#mountFor(nodeId);
    if (m === undefined) throw new RafsFormatError('ERR_RAFS_NOT_SYMLINK', 'failed to read link: a pseudo directory');
    return m.fs.readlink(this.inoOf(m, nodeId));
  }

  read(nodeId: number, _fh: number, offset: number, size: number): Promise<Buffer> | Buffer {
    const m = this.#mountFor(nodeId);
    if (m === undefined) throw isDir;
    return m.fs.read(this.inoOf(m, nodeId), offset, size);
  }

  statfs(nodeId: number): StatFs {
    const m = this.#mountFor(nodeId);
    return m === undefined ? PSEUDO_STATFS : m.fs.statfs();
  }

  getxattr(nodeId: number, name: Buffer): Buffer {
    const m = this.#mountFor(nodeId);
    if (m === undefined) throw noXattr;
    return m.fs.getxattr(this.inoOf(m, nodeId), name);
  }

  listxattr(nodeId: number): Buffer[] {
    const m = this.#mountFor(nodeId);
    return m === undefined ? [] : m.fs.listxattr(this.inoOf(m, nodeId));
  }

  readdir(nodeId: number, _fh: number, offset: number, out: DirentSink): void {
    const m = this.#mountFor(nodeId);
    if (m !== undefined) return m.fs.readdir(this.inoOf(m, nodeId), offset, out, this.#listingIds(m, nodeId));
    const dir = this.#dirFor(nodeId);
    if (offset < 1 && !out.add(DOT, dir.id, S_IFDIR, 1)) return;
    if (offset < 2 && !out.add(DOTDOT, dir.parent?.id ?? ROOT_ID, S_IFDIR, 2)) return;
    const list = (dir.sorted ??= [...dir.children.values()].sort((a, b) => (a.key < b.key ? -1 : 1)));
    for (let k = Math.max(offset, 2) - 2; k < list.length; k++) {
      const child = list[k];
      const attr = this.#childAttr(child);
      if (!out.add(Buffer.from(child.key, 'latin1'), attr.ino, S_IFDIR, k + 3, out.plus ? attr : undefined)) return;
    }
  }

  readdirplus(nodeId: number, fh: number, offset: number, out: DirentSink): void {
    this.readdir(nodeId, fh, offset, out);
  }

  lseek(nodeId: number, _fh: number, offset: number, whence: SeekWhence): number {
    const m = this.#mountFor(nodeId);
    if (m === undefined) throw isDir;
    return m.fs.lseek(this.inoOf(m, nodeId), offset, whence);
  }

  // ---- internals -----------------------------------------------------------

  /** The image a node id belongs to; undefined for a pseudo directory; stale ids throw ESTALE. */
  #mountFor(nodeId: number): M | undefined {
    if (nodeId === ROOT_ID) return (this.#root.mount as M | null) ?? undefined;
    if (nodeId >= PSEUDO_BASE) return undefined;
    const m = this.#byIndex.get(indexOfNode(nodeId));
    if (m === undefined) throw stale;
    return m;
  }

  #dirFor(nodeId: number): PseudoNode {
    const node = this.#byId.get(nodeId);
    if (node === undefined) throw stale;
    return node;
  }

  #nodeOf(m: ImageMount, ino: number): number {
    if (ino === m.fs.rootIno && m.mountpoint === '/') return ROOT_ID;
    if (!inoFits(ino)) throw new RafsFormatError('ERR_RAFS_CORRUPT', `failed to map inode ${ino}: beyond 2^32`);
    return imageNodeId(m.index, ino);
  }

  #listingIds(m: ImageMount, nodeId: number): ListingIds {
    const ino = this.inoOf(m, nodeId);
    let parent: number;
    if (ino === m.fs.rootIno) parent = m.mountpoint === '/' ? ROOT_ID : (this.#walk(m.mountpoint)?.parent?.id ?? ROOT_ID);
    else parent = this.#nodeOf(m, m.fs.sb.parentOf(ino));
    return { self: nodeId, parent, nodeOf: (i) => this.#nodeOf(m, i) };
  }

  #childAttr(child: PseudoNode): Attr {
    const m = child.mount;
    if (m === null) return this.#pseudoAttr(child);
    return m.fs.attr(m.fs.rootIno, this.#nodeOf(m, m.fs.rootIno));
  }

  #pseudoAttr(node: PseudoNode): Attr {
    const o = this.#opts;
    return { ino: node.id, mode: S_IFDIR | 0o755, nlink: 2, uid: o.uid, gid: o.gid, size: 0, blocks: 0, rdev: 0, mtime: o.startTime, mtimeNsec: 0 };
  }

  #walk(path: string): PseudoNode | undefined {
    let node: PseudoNode | undefined = this.#root;
    for (const c of components(path)) {
      node = node.children.get(Buffer.from(c).toString('latin1'));
      if (node === undefined) return undefined;
    }
    return node;
  }

  /** The deepest existing node on `path` and the directories still to create (throws on an id collision). */
  #planPath(path: string): { node: PseudoNode; plan: { key: string; path: string; id: number }[] } {
    const parts = components(path);
    let node = this.#root;
    let i = 0;
    for (; i < parts.length; i++) {
      const next = node.children.get(Buffer.from(parts[i]).toString('latin1'));
      if (next === undefined) break;
      node = next;
    }
    const plan: { key: string; path: string; id: number }[] = [];
    let prefix = node.path === '/' ? '' : node.path;
    for (; i < parts.length; i++) {
      prefix += '/' + parts[i];
      const id = pseudoDirId(prefix);
      const clash = this.#byId.get(id)?.path ?? plan.find((p) => p.id === id)?.path;
      if (clash !== undefined) {
        throw new DaemonError('ERR_DAEMON_UNSUPPORTED', `failed to mount at ${path}: the node id of ${prefix} collides with that of ${clash}; use another path`);
      }
      plan.push({ key: Buffer.from(parts[i]).toString('latin1'), path: prefix, id });
    }
    return { node, plan };
  }

  /** The node at `path`, creating pseudo directories on the way; nothing is created if an id collides. */
  #makePath(path: string): PseudoNode {
    let { node, plan } = this.#planPath(path);
    for (const p of plan) {
      const created: PseudoNode = { id: p.id, key: p.key, path: p.path, parent: node, children: new Map(), sorted: null, mount: null };
      node.children.set(p.key, created);
      node.sorted = null;
      this.#byId.set(p.id, created);
      node = created;
    }
    return node;
  }

  /**
   * Tells the kernel that the entry of `node` (or, for the root, every name the root
   * showed through `old` and the pseudo tree) changed. Failures only mean it was not cached.
   */
  #invalidateAt(node: PseudoNode, old: ImageMount | null): Promise<void> {
    const n = this.#notifier;
    if (n === undefined) return Promise.resolve();
    const jobs: Promise<void>[] = [];
    const entry = (parent: number, name: Buffer): void => void jobs.push(n.invalEntry(parent, name).catch(() => undefined));
    if (node === this.#root) {
      for (const child of this.#root.children.values()) entry(ROOT_ID, Buffer.from(child.key, 'latin1'));
      if (old !== null) for (const e of old.fs.sb.readdir(old.fs.rootIno)) entry(ROOT_ID, e.name);
      jobs.push(n.invalInode(ROOT_ID).catch(() => undefined));
    } else {
      const parent = node.parent?.id ?? ROOT_ID;
      entry(parent, Buffer.from(node.key, 'latin1'));
      jobs.push(n.invalInode(parent).catch(() => undefined));
    }
    return Promise.all(jobs).then(() => undefined);
  }
}

function notMounted(mountpoint: string): DaemonError {
  return new DaemonError('ERR_DAEMON_MOUNT_NOT_FOUND', `failed to find a filesystem mounted at ${mountpoint}`);
}
