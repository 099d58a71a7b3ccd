// Builds a tree from a tar or tar.gz layer in one pass, chunking each file's data as its
// member streams by (as upstream's tarball builder). Paths are checked before use: an
// absolute path, a `..` component or a path through a non-directory is refused, and
// nothing is ever written to the host filesystem. Hard links share the target's inode.
// Whiteouts are recorded per the spec: `oci` and `none` keep the `.wh.` members as they
// are, `overlayfs` turns them into 0:0 character devices and opaque-directory xattrs.
import { closeSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BuildError } from '../errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG } from '../rafs/layout/common.js';
import { TarReader, type TarMember } from '../util/tar-reader.js';
import type { ReadData } from './chunker.js';
import { OCI_WHITEOUT_OPAQUE, OCI_WHITEOUT_PREFIX, OVERLAYFS_OPAQUE_XATTR, type WhiteoutSpec } from './overlay.js';
import { checkName, isDir, nameKey, newDir, type BuildInode } from './tree.js';
import { filterXattrs } from './xattr-rules.js';

export interface TarSourceOptions {
  explicitUidGid: boolean;
  whiteoutSpec: WhiteoutSpec;
  warn(message: string): void;
  onEntry?(): void;
}

const TYPE_BITS = { file: S_IFREG, dir: S_IFDIR, symlink: S_IFLNK, char: S_IFCHR, block: S_IFBLK, fifo: S_IFIFO } as const;

function unsafe(detail: string): BuildError {
  return new BuildError('ERR_BUILD_UNSAFE_PATH', `failed to add tar member: ${detail}`);
}

/** The components of a member path; `.` and empty ones dropped, absolute and `..` refused. */
export function splitTarPath(path: Buffer): Buffer[] {
  const shown = JSON.stringify(path.toString('latin1'));
  if (path.length > 0 && path[0] === 0x2f) throw unsafe(`absolute path ${shown} is refused`);
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== 0x2f) continue;
    const part = path.subarray(start, i);
    start = i + 1;
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) throw unsafe(`path ${shown} escapes the root with ".."`);
    checkName(part, `tar member ${shown}`);
    parts.push(Buffer.from(part));
  }
  return parts;
}

/** The directory holding `parts`' last component, created (0755, owner 0) where missing. */
export function parentDir(root: BuildInode, parts: Buffer[], shown: string): BuildInode {
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    const key = nameKey(part);
    let e = dir.children!.get(key);
    if (!e) {
      e = { name: part, inode: newDir() };
      dir.children!.set(key, e);
    }
    if (!isDir(e.inode)) throw unsafe(`path ${shown} goes through non-directory ${JSON.stringify(part.toString('latin1'))}`);
    dir = e.inode;
  }
  return dir;
}

/**
 * Puts `inode` at `name` in `dir`. A directory seen again (or implied earlier) takes the
 * new attributes and keeps its entries: then `inode` is not placed and false is returned.
 */
export function placeInode(dir: BuildInode, name: Buffer, inode: BuildInode): boolean {
  const key = nameKey(name);
  const existing = dir.children!.get(key);
  if (existing && isDir(existing.inode) && isDir(inode)) {
    Object.assign(existing.inode, { ...inode, children: existing.inode.children });
    return false;
  }
  dir.children!.set(key, { name, inode });
  return true;
}

export function lookup(root: BuildInode, parts: Buffer[]): BuildInode | undefined {
  let cur: BuildInode | undefined = root;
  for (const part of parts) {
    if (!cur || !isDir(cur)) return undefined;
    cur = cur.children!.get(nameKey(part))?.inode;
  }
  return cur;
}

/** Largest uid/gid, major and minor device numbers a RAFS inode stores (v5 and v6 alike: u32 ids, Linux new_encode_dev in 32 bits). */
const MAX_ID = 0xffffffff;
const MAX_MAJOR = 0xfff;
const MAX_MINOR = 0xfffff;

/** Refuses a member whose metadata a RAFS inode cannot hold: nothing is stored differently from what the tar says (ids only count when kept: not with --repeatable). */
function checkFits(m: TarMember, shown: string, explicitUidGid: boolean): void {
  const refuse = (what: string): never => {
    throw new BuildError('ERR_BUILD_SOURCE', `failed to add tar member ${shown}: ${what} does not fit a RAFS inode`);
  };
  if (explicitUidGid && m.uid > MAX_ID) refuse(`uid ${m.uid} (at most ${MAX_ID})`);
  if (explicitUidGid && m.gid > MAX_ID) refuse(`gid ${m.gid} (at most ${MAX_ID})`);
  if (m.mtime < 0) refuse(`mtime ${m.mtime} (before 1970)`);
  if ((m.kind === 'char' || m.kind === 'block') && (m.devmajor > MAX_MAJOR || m.devminor > MAX_MINOR)) {
    refuse(`device ${m.devmajor}:${m.devminor} (major at most ${MAX_MAJOR}, minor at most ${MAX_MINOR})`);
  }
}

export function inodeOf(m: TarMember, opts: TarSourceOptions, shown: string): BuildInode {
  checkFits(m, shown, opts.explicitUidGid);
  const kind = m.kind === 'hardlink' ? 'file' : m.kind;
  const inode: BuildInode = {
    mode: TYPE_BITS[kind] | (m.mode & 0o7777),
    uid: opts.explicitUidGid ? m.uid : 0,
    gid: opts.explicitUidGid ? m.gid : 0,
    mtime: m.mtime,
    mtimeNsec: m.mtimeNsec,
    // Linux new_encode_dev, the 32-bit form images store.
    rdev: kind === 'char' || kind === 'block' ? ((m.devminor & 0xff) | (m.devmajor << 8) | ((m.devminor & 0xfff00) << 12)) >>> 0 : 0,
    size: kind === 'file' ? m.size : 0,
    xattrs: filterXattrs(m.xattrs.map(([name, value]) => ({ name, value })), shown, opts.warn),
  };
  if (kind === 'symlink') {
    if (m.linkname.length === 0) throw new BuildError('ERR_BUILD_SOURCE', `failed to add symlink ${shown}: empty target`);
    inode.symlink = m.linkname;
    inode.size = m.linkname.length;
  }
  if (kind === 'dir') inode.children = new Map();
  return inode;
}

/**
 * Opens a tar or gzip-compressed tar as a byte stream (gzip detected by its magic). The
 * source is read once, front to back, so it may be a FIFO (the converter writes the
 * layer into one).
 */
export async function openTarStream(path: string): Promise<AsyncIterable<Buffer>> {
  const pieces = readSequentially(path);
  const first = await pieces.next();
  const head = first.done ? Buffer.alloc(0) : first.value;
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    yield* pieces;
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    return Readable.from(all(), { objectMode: false }).pipe(createGunzip({ chunkSize: 1 << 20 }));
  }
  return all();
}

const PIECE = 8 << 20;

/**
 * A file read in large synchronous pieces: a CLI build has nothing else to do meanwhile,
 * and waiting on the thread pool for every piece left the chunk workers idle. Each piece
 * is filled up (a FIFO returns a little at a time) so that memory stays one piece.
 */
async function* readSequentially(path: string): AsyncGenerator<Buffer> {
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const buf = Buffer.allocUnsafeSlow(PIECE);
      let n = 0;
      while (n < PIECE) {
        const r = readSync(fd, buf, n, PIECE - n, null);
        if (r === 0) break;
        n += r;
      }
      if (n === 0) return;
      yield buf.subarray(0, n);
      if (n < PIECE) return;
    }
  } finally {
    closeSync(fd);
  }
}

/** What chunks the regular files of an archive (Chunker; ZranChunker for targz-ref). */
export interface FileChunker {
  /** `at` is the archive offset of the data `read` returns next. */
  addFile(inode: BuildInode, size: number, read: ReadData, at: () => number): Promise<void>;
}

/** Reads the whole archive into a tree, chunking regular files with `chunker`. */
export async function buildTreeFromTar(source: AsyncIterable<Buffer>, chunker: FileChunker, opts: TarSourceOptions): Promise<BuildInode> {
  const root = newDir();
  const reader = new TarReader(source);
  for (;;) {
    const m = await reader.next();
    if (!m) break;
    const shown = JSON.stringify(m.path.toString('latin1'));
    const parts = splitTarPath(m.path);
    opts.onEntry?.();
    if (parts.length === 0) {
      // "./" describes the root directory itself.
      if (m.kind !== 'dir') throw unsafe(`member ${shown} names the root but is not a directory`);
      Object.assign(root, { ...inodeOf(m, opts, shown), children: root.children });
      continue;
    }
    const dir = parentDir(root, parts, shown);
    const name = parts[parts.length - 1];
    const key = nameKey(name);
    if (opts.whiteoutSpec === 'overlayfs' && name.length >= OCI_WHITEOUT_PREFIX.length && name.subarray(0, 4).equals(OCI_WHITEOUT_PREFIX)) {
      recordOverlayfsWhiteout(dir, name, m, opts, shown);
      continue;
    }
    if (m.kind === 'hardlink') {
      const target = lookup(root, splitTarPath(m.linkname));
      if (!target) throw new BuildError('ERR_BUILD_SOURCE', `failed to add hard link ${shown}: target ${JSON.stringify(m.linkname.toString('latin1'))} not found`);
      if (isDir(target)) throw unsafe(`hard link ${shown} points to a directory`);
      dir.children!.set(key, { name, inode: target });
      continue;
    }
    const inode = inodeOf(m, opts, shown);
    if (!placeInode(dir, name, inode)) continue;
    if (m.kind === 'file' && m.size > 0) {
      await chunker.addFile(inode, m.size, async (n) => {
        const data = await reader.read(n);
        // The chunk pool transfers buffers to workers: give each chunk its own memory.
        const own = Buffer.allocUnsafeSlow(data.length);
        data.copy(own);
        return own;
      }, () => reader.position);
    } else if (m.kind === 'file') {
      inode.chunks = [];
    }
  }
  return root;
}

/** `.wh..wh..opq` marks `dir` opaque; `.wh.NAME` becomes a 0:0 character device NAME. */
function recordOverlayfsWhiteout(dir: BuildInode, name: Buffer, m: TarMember, opts: TarSourceOptions, shown: string): void {
  if (name.equals(OCI_WHITEOUT_OPAQUE)) {
    dir.xattrs = [...dir.xattrs.filter((x) => !x.name.equals(OVERLAYFS_OPAQUE_XATTR)), { name: OVERLAYFS_OPAQUE_XATTR, value: Buffer.from('y') }].sort((a, b) =>
      Buffer.compare(a.name, b.name),
    );
    return;
  }
  const target = Buffer.from(name.subarray(OCI_WHITEOUT_PREFIX.length));
  checkName(target, `whiteout ${shown}`);
  const inode: BuildInode = { ...inodeOf({ ...m, kind: 'char', devmajor: 0, devminor: 0, xattrs: [] }, opts, shown), mode: S_IFCHR };
  dir.children!.set(nameKey(target), { name: target, inode });
}
