// An in-memory read-only FileSystem for transport tests: directories, regular
// files, a sparse file larger than 4 GiB served from a few extents (zeros
// come from one shared buffer, nothing is stored for the holes), symlinks,
// hard links, xattrs, a fifo, a char device, an inode number above 2^32 and a
// 5000-entry directory. Node ids are fixed inode numbers and readdir offsets
// are positions in a sorted listing, so any process serves the same answers.
import { constants } from 'node:os';
import type { Attr, DirentSink, FileSystem, OpenResult, SeekWhence, StatFs } from '../../src/fuse/filesystem.js';
import { S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../../src/fuse/filesystem.js';

/** A stored byte range of a (possibly sparse) file. */
export interface Extent {
  offset: number;
  data: Buffer;
}

/** One inode of the tree. */
export interface MemoryNode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  rdev: number;
  nlink: number;
  size: number;
  /** Regular files: stored ranges, sorted, non-overlapping (holes read as zeros). */
  extents: Extent[];
  /** Symlinks. */
  target?: Buffer;
  /** Directories: children by name, and the parent. */
  children?: Map<string, number>;
  parent?: number;
  xattrs: Map<string, Buffer>;
}

export interface MemoryFsOptions {
  /** Delay (ms) of every read of `slow.txt`, for tests that need requests in flight. */
  slowReadMs?: number;
}

const ZEROS = Buffer.alloc(1 << 20);
const GiB = 2 ** 30;

function errnoError(code: keyof typeof constants.errno): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(code);
  e.code = code;
  return e;
}

/** Deterministic pseudo-random bytes (a xorshift stream) so tests can recompute them. */
export function patternBytes(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** The test tree. Paths are relative to the mount root, without a leading slash. */
export class MemoryFs implements FileSystem {
  readonly nodes = new Map<number, MemoryNode>();
  readonly #opts: MemoryFsOptions;
  readonly #sorted = new Map<number, [string, number][]>();
  readonly #named = new Set<number>();

  constructor(opts: MemoryFsOptions = {}) {
    this.#opts = opts;
    const t = 1_700_000_000;
    this.#add({ ino: 1, mode: S_IFDIR | 0o755, mtime: t, mtimeNsec: 123_456_789 }, 1, '');
    this.#file(2, 'hello.txt', Buffer.from('hello, nydus\n'), { uid: 1000, gid: 100, mtimeNsec: 987_654_321 });
    const hello = this.nodes.get(2)!;
    hello.xattrs.set('user.greeting', Buffer.from('hi there'));
    hello.xattrs.set('user.empty', Buffer.alloc(0));
    hello.xattrs.set('trusted.binary', Buffer.from([0, 1, 2, 255]));
    this.#file(3, 'data.bin', patternBytes(3, GiB / 1024 + 4097), { mtimeNsec: 1 });
    this.#add({ ino: 4, mode: S_IFREG | 0o640, size: 5 * GiB + 5, mtime: t + 4, mtimeNsec: 500_000_000 }, 1, 'sparse.img');
    this.nodes.get(4)!.extents = [
      { offset: 0, data: patternBytes(40, 4096) },
      { offset: 4 * GiB - 2048, data: patternBytes(41, 4096) },
      { offset: 5 * GiB - 11, data: patternBytes(42, 16) },
    ];
    this.#add({ ino: 5, mode: S_IFLNK | 0o777, target: Buffer.from('hello.txt') }, 1, 'link');
    this.#add({ ino: 6, mode: S_IFLNK | 0o777, target: Buffer.from('does/not/exist') }, 1, 'dangling');
    this.#file(7, 'hard-a', Buffer.from('one inode, two names\n'), { uid: 7, gid: 7 });
    this.#add({ ino: 8, mode: S_IFIFO | 0o644 }, 1, 'fifo');
    this.#add({ ino: 9, mode: S_IFCHR | 0o666, rdev: (1 << 8) | 3 }, 1, 'null');
    this.#add({ ino: 10, mode: S_IFDIR | 0o750, uid: 1000, gid: 1000, mtime: t + 10 }, 1, 'dir');
    this.#link(7, 10, 'hard-b');
    this.#add({ ino: 11, mode: S_IFDIR | 0o755 }, 10, 'sub');
    this.#file(12, 'deep.txt', Buffer.from('deep\n'), {}, 11);
    this.#file(2 ** 40 + 13, 'big-ino.txt', Buffer.from('inode above 2^32\n'), {});
    this.#file(14, 'slow.txt', patternBytes(14, 64 * 1024), {});
    this.#add({ ino: 20, mode: S_IFDIR | 0o755 }, 1, 'big-dir');
    for (let i = 0; i < 5000; i++) {
      this.#file(100_000 + i, `entry-${String(i).padStart(5, '0')}${'x'.repeat(i % 7)}`, Buffer.from(String(i)), {}, 20);
    }
  }

  #add(n: Partial<MemoryNode> & { ino: number; mode: number }, parent: number, name: string): MemoryNode {
    const node: MemoryNode = {
      uid: 0,
      gid: 0,
      mtime: 1_700_000_000,
      mtimeNsec: 0,
      rdev: 0,
      nlink: 1,
      size: 0,
      extents: [],
      xattrs: new Map(),
      ...n,
    };
    if ((node.mode & S_IFMT) === S_IFDIR) {
      node.children = new Map();
      node.parent = parent;
      node.nlink = 2;
      node.size = 4096;
    }
    if (node.target) node.size = node.target.length;
    this.nodes.set(node.ino, node);
    if (name) this.#link(node.ino, parent, name);
    return node;
  }

  #file(ino: number, name: string, data: Buffer, extra: Partial<MemoryNode>, parent = 1): void {
    this.#add({ ino, mode: S_IFREG | 0o644, size: data.length, extents: [{ offset: 0, data }], ...extra }, parent, name);
  }

  #link(ino: number, parent: number, name: string): void {
    const dir = this.nodes.get(parent)!;
    const node = this.nodes.get(ino)!;
    if (dir.children!.has(name)) throw new Error(`duplicate name ${name}`);
    dir.children!.set(name, ino);
    this.#sorted.delete(parent);
    if ((node.mode & S_IFMT) === S_IFDIR) dir.nlink++; // the child's ".."
    else if (this.#named.has(ino)) node.nlink++;
    this.#named.add(ino);
  }

  /** The inode at `path` (relative to the root, "" for the root). */
  resolve(path: string): MemoryNode {
    let node = this.nodes.get(1)!;
    for (const part of path.split('/').filter(Boolean)) {
      const ino = node.children?.get(part);
      if (ino === undefined) throw new Error(`no such path in the test tree: ${path}`);
      node = this.nodes.get(ino)!;
    }
    return node;
  }

  /** The whole content of a regular file (holes as zeros); for small files only. */
  contentOf(path: string): Buffer {
    return this.contentRange(path, 0, this.resolve(path).size);
  }

  /** Bytes [offset, offset + length) of a file, clipped at its size, holes as zeros. */
  contentRange(path: string, offset: number, length: number): Buffer {
    const n = this.resolve(path);
    const out = Buffer.alloc(Math.max(0, Math.min(length, n.size - offset)));
    for (const e of n.extents) {
      const from = Math.max(offset, e.offset);
      const to = Math.min(offset + out.length, e.offset + e.data.length);
      if (from < to) e.data.copy(out, from - offset, from - e.offset, to - e.offset);
    }
    return out;
  }

  /** Every path of the tree, directories included ("." for the root). */
  allPaths(): string[] {
    const out: string[] = [];
    const walk = (ino: number, prefix: string): void => {
      for (const [name, child] of this.#entries(ino)) {
        if (name === '.' || name === '..') continue;
        const p = prefix ? `${prefix}/${name}` : name;
        out.push(p);
        if (this.nodes.get(child)!.children) walk(child, p);
      }
    };
    walk(1, '');
    return out;
  }

  attrOf(n: MemoryNode): Attr {
    let stored = 0;
    for (const e of n.extents) stored += e.data.length;
    return {
      ino: n.ino,
      mode: n.mode,
      nlink: n.nlink,
      uid: n.uid,
      gid: n.gid,
      size: n.size,
      blocks: Math.ceil(stored / 512),
      rdev: n.rdev,
      mtime: n.mtime,
      mtimeNsec: n.mtimeNsec,
      blksize: 4096,
    };
  }

  #node(ino: number): MemoryNode {
    const n = this.nodes.get(ino);
    if (!n) throw errnoError('ENOENT');
    return n;
  }

  #entries(ino: number): [string, number][] {
    let list = this.#sorted.get(ino);
    if (!list) {
      const dir = this.#node(ino);
      if (!dir.children) throw errnoError('ENOTDIR');
      list = [['.', ino], ['..', dir.parent!], ...[...dir.children].sort((a, b) => (a[0] < b[0] ? -1 : 1))];
      this.#sorted.set(ino, list);
    }
    return list;
  }

  lookup(parent: number, name: Buffer): Attr {
    const dir = this.#node(parent);
    if (!dir.children) throw errnoError('ENOTDIR');
    const s = name.toString();
    const ino = s === '.' ? parent : s === '..' ? dir.parent! : dir.children.get(s);
    if (ino === undefined) throw errnoError('ENOENT');
    return this.attrOf(this.#node(ino));
  }

  getattr(ino: number): Attr {
    return this.attrOf(this.#node(ino));
  }

  readlink(ino: number): Buffer {
    const n = this.#node(ino);
    if (!n.target) throw errnoError('EINVAL');
    return n.target;
  }

  open(ino: number): OpenResult {
    const n = this.#node(ino);
    if ((n.mode & S_IFMT) === S_IFDIR) throw errnoError('EISDIR');
    return { fh: ino, keepCache: true };
  }

  read(ino: number, _fh: number, offset: number, size: number): Buffer[] | Promise<Buffer[]> {
    const n = this.#node(ino);
    if ((n.mode & S_IFMT) !== S_IFREG) throw errnoError('EINVAL');
    const end = Math.min(n.size, offset + size);
    const parts: Buffer[] = [];
    let pos = offset;
    for (const e of n.extents) {
      const eEnd = e.offset + e.data.length;
      if (eEnd <= pos || e.offset >= end) continue;
      if (e.offset > pos) pushZeros(parts, e.offset - pos);
      const from = Math.max(pos, e.offset);
      const to = Math.min(end, eEnd);
      parts.push(e.data.subarray(from - e.offset, to - e.offset));
      pos = to;
    }
    if (pos < end) pushZeros(parts, end - pos);
    const delay = ino === 14 ? (this.#opts.slowReadMs ?? 0) : 0;
    if (delay > 0) return new Promise((resolve) => setTimeout(resolve, delay, parts));
    return parts;
  }

  release(): void {}

  statfs(): StatFs {
    let blocks = 0;
    for (const n of this.nodes.values()) blocks += this.attrOf(n).blocks;
    return { blocks: Math.ceil(blocks / 8), bfree: 0, bavail: 0, files: this.nodes.size, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  getxattr(ino: number, name: Buffer): Buffer {
    const v = this.#node(ino).xattrs.get(name.toString());
    if (!v) throw errnoError('ENODATA');
    return v;
  }

  listxattr(ino: number): string[] {
    return [...this.#node(ino).xattrs.keys()];
  }

  opendir(ino: number): OpenResult {
    if (!this.#node(ino).children) throw errnoError('ENOTDIR');
    return { fh: 0 };
  }

  readdir(ino: number, _fh: number, offset: number, out: DirentSink): void {
    const list = this.#entries(ino);
    for (let i = offset; i < list.length; i++) {
      const [name, child] = list[i];
      const node = this.#node(child);
      if (!out.add(name, child, node.mode, i + 1, out.plus ? this.attrOf(node) : undefined)) return;
    }
  }

  readdirplus(ino: number, fh: number, offset: number, out: DirentSink): void {
    this.readdir(ino, fh, offset, out);
  }

  releasedir(): void {}

  lseek(ino: number, _fh: number, offset: number, whence: SeekWhence): number {
    const n = this.#node(ino);
    if (offset >= n.size) throw errnoError('ENXIO');
    if (whence === 3) {
      for (const e of n.extents) if (e.offset + e.data.length > offset) return Math.max(offset, e.offset);
      throw errnoError('ENXIO');
    }
    let pos = offset;
    for (const e of n.extents) {
      if (e.offset > pos) break;
      if (e.offset + e.data.length > pos) pos = e.offset + e.data.length;
    }
    return Math.min(pos, n.size);
  }
}

function pushZeros(parts: Buffer[], n: number): void {
  while (n > 0) {
    const k = Math.min(n, ZEROS.length);
    parts.push(ZEROS.subarray(0, k));
    n -= k;
  }
}
