// The builder's in-memory filesystem tree: what every source (directory, tar, bootstrap)
// produces and every writer (v5, v6) consumes. Names are raw bytes; a directory keeps
// its children in a map keyed by the latin1 form of the name (a lossless 1:1 mapping
// whose string order equals byte order). Hard links are several entries sharing one
// BuildInode object. No I/O here.
import { BuildError } from '../errors.js';
import { RAFS_MAX_NAME, S_IFDIR, S_IFMT, S_IFREG } from '../rafs/layout/common.js';
import type { Xattr } from '../rafs/layout/v5.js';
import type { ChunkInfo } from '../storage/types.js';

/** Where a regular file's bytes come from before they are chunked. */
export type FileData = { kind: 'path'; path: Buffer };

/** One inode of the tree. */
export interface BuildInode {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  /** Device number in the 32-bit Linux "new" encoding (char/block devices), else 0. */
  rdev: number;
  /** Regular file: its size. Symlink: target length. Directory: computed by the writers. */
  size: number;
  /** Sorted by name (repeatable builds). */
  xattrs: Xattr[];
  /** Symlink target. */
  symlink?: Buffer;
  /** Directory entries, keyed by the latin1 form of the name. */
  children?: Map<string, BuildEntry>;
  /** Regular file: its chunks, in file order, once chunked or loaded from a bootstrap. */
  chunks?: ChunkInfo[];
  /** Regular file: where to read its data when it is not chunked yet. */
  data?: FileData;
}

/** A name in a directory. */
export interface BuildEntry {
  name: Buffer;
  inode: BuildInode;
}

export function isDir(i: BuildInode): boolean {
  return (i.mode & S_IFMT) === S_IFDIR;
}

export function isReg(i: BuildInode): boolean {
  return (i.mode & S_IFMT) === S_IFREG;
}

/** A new empty directory inode (the attributes tar builders give implied parents). */
export function newDir(attrs: Partial<BuildInode> = {}): BuildInode {
  return { mode: S_IFDIR | 0o755, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: 0, xattrs: [], ...attrs, children: new Map() };
}

export function nameKey(name: Buffer): string {
  return name.toString('latin1');
}

/** The children of a directory sorted by name (byte order). */
export function sortedChildren(dir: BuildInode): BuildEntry[] {
  const c = dir.children;
  if (!c) return [];
  const keys = [...c.keys()].sort();
  return keys.map((k) => c.get(k) as BuildEntry);
}

/** Throws unless `name` is a valid single path component of at most 255 bytes. */
export function checkName(name: Buffer, where: string): void {
  const dotOrDotDot = (name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e);
  if (name.length === 0 || dotOrDotDot || name.includes(0x2f) || name.includes(0)) {
    throw new BuildError('ERR_BUILD_UNSAFE_PATH', `failed to add ${where}: invalid name ${JSON.stringify(name.toString('latin1'))}`);
  }
  if (name.length > RAFS_MAX_NAME) {
    throw new BuildError('ERR_BUILD_LIMIT', `failed to add ${where}: name of ${name.length} bytes exceeds ${RAFS_MAX_NAME}`);
  }
}

/** Depth-first walk in image order: a directory, then its entries sorted, descending as they come. */
export function* walkTree(root: BuildInode): Generator<{ path: Buffer; entry: BuildEntry | undefined; inode: BuildInode; parent: BuildInode | undefined }> {
  yield { path: Buffer.from('/'), entry: undefined, inode: root, parent: undefined };
  const stack: { dir: BuildInode; path: Buffer; list: BuildEntry[]; i: number }[] = [
    { dir: root, path: Buffer.alloc(0), list: sortedChildren(root), i: 0 },
  ];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.i >= top.list.length) {
      stack.pop();
      continue;
    }
    const entry = top.list[top.i++];
    const path = Buffer.concat([top.path, Buffer.from('/'), entry.name]);
    yield { path, entry, inode: entry.inode, parent: top.dir };
    if (isDir(entry.inode)) stack.push({ dir: entry.inode, path, list: sortedChildren(entry.inode), i: 0 });
  }
}

/** One entry in index order; `parentIndex` is the 1-based index of its directory (root: 0). */
export interface IndexedEntry {
  entry: BuildEntry | undefined;
  inode: BuildInode;
  parentIndex: number;
}

/** The numbering of a tree (docs/format.md §3.8). */
export interface Numbering {
  /** Entries by index - 1 (the root first, with `entry` undefined). */
  entries: IndexedEntry[];
  /** Directories in the order they were numbered (upstream's build order). */
  dirOrder: BuildInode[];
  /** Index of each directory's first child; for an empty one, the index that was next. */
  childStart: Map<BuildInode, number>;
}

/** What both writers derive from a numbering about links. */
export interface Links {
  /** The 1-based index of each inode's first name (its `i_ino`). */
  firstIndex: Map<BuildInode, number>;
  /** The directory holding each directory (the root has none). */
  parentDir: Map<BuildInode, BuildInode>;
  /** `st_nlink`: a directory's subdirectories + 2, else the inode's names. */
  nlink(inode: BuildInode): number;
}

/** First index, parent directory and link count of every inode of `entries` (index order). */
export function countLinks(entries: readonly IndexedEntry[]): Links {
  const firstIndex = new Map<BuildInode, number>();
  const names = new Map<BuildInode, number>();
  const subdirs = new Map<BuildInode, number>();
  const parentDir = new Map<BuildInode, BuildInode>();
  entries.forEach((o, i) => {
    if (!firstIndex.has(o.inode)) firstIndex.set(o.inode, i + 1);
    names.set(o.inode, (names.get(o.inode) ?? 0) + 1);
    if (i === 0 || !isDir(o.inode)) return;
    const parent = entries[o.parentIndex - 1].inode;
    subdirs.set(parent, (subdirs.get(parent) ?? 0) + 1);
    parentDir.set(o.inode, parent);
  });
  return {
    firstIndex,
    parentDir,
    nlink: (inode) => (isDir(inode) ? 2 + (subdirs.get(inode) ?? 0) : (names.get(inode) as number)),
  };
}

/**
 * The order upstream numbers inodes in: a directory's children get consecutive indexes,
 * then each child directory is numbered in turn, depth first.
 */
export function indexOrder(root: BuildInode): Numbering {
  const entries: IndexedEntry[] = [{ entry: undefined, inode: root, parentIndex: 0 }];
  const dirOrder: BuildInode[] = [];
  const childStart = new Map<BuildInode, number>();
  const number = (dir: BuildInode, index: number): { dir: BuildInode; index: number }[] => {
    dirOrder.push(dir);
    childStart.set(dir, entries.length + 1);
    const subdirs: { dir: BuildInode; index: number }[] = [];
    for (const e of sortedChildren(dir)) {
      entries.push({ entry: e, inode: e.inode, parentIndex: index });
      if (isDir(e.inode)) subdirs.push({ dir: e.inode, index: entries.length });
    }
    return subdirs.reverse();
  };
  // number(dir) recurses into each child directory after numbering all its children;
  // an explicit stack of pending child-directory lists keeps deep trees off the call stack.
  const pending = [number(root, 1)];
  while (pending.length > 0) {
    const next = pending[pending.length - 1].pop();
    if (next) pending.push(number(next.dir, next.index));
    else pending.pop();
  }
  return { entries, dirOrder, childStart };
}
