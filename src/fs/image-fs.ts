// One mounted RAFS image seen inode by inode: attributes as upstream Rafs reports them,
// lookups, listings, symlinks, xattrs, statfs, SEEK_DATA/SEEK_HOLE and reads through the
// mount's ChunkReader into pooled reply buffers. It speaks in the image's own inode
// numbers; the pseudo fs (pseudo-fs.ts) turns them into node ids. Wrong bytes are never
// returned: a chunk that cannot be fetched or verified fails that read with EIO.
import { FuseError, RafsFormatError } from '../errors.js';
import type { Attr, DirentSink, StatFs } from '../fuse/filesystem.js';
import { RafsSuperFlags, S_IFDIR, S_IFMT, S_IFREG } from '../rafs/layout/common.js';
import type { RafsSuper } from '../rafs/types.js';
import type { ChunkReader } from '../storage/chunk-reader.js';
import { pooledRead } from './read-buffer.js';

/** How an image is presented. */
export interface ImageFsOptions {
  /** `enable_xattr` of the mount's config; images with xattrs serve them regardless. */
  enableXattr: boolean;
  /** uid/gid reported when the image lacks EXPLICIT_UID_GID (upstream: the daemon's euid/egid). */
  uid: number;
  gid: number;
  /** Seconds since the epoch reported for inodes whose mtime is 0 (upstream: daemon start time). */
  startTime: number;
  /** Told about every read that failed in storage (the daemon's error ring). */
  onReadError?: (err: unknown) => void;
}

/** Where readdir puts the directory's own and parent's node ids, and maps child inodes. */
export interface ListingIds {
  self: number;
  parent: number;
  nodeOf(ino: number): number;
}

const EMPTY = Buffer.alloc(0);
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
const SEEK_DATA = 3;

const xattrOff = new FuseError('ERR_FS_XATTR_UNSUPPORTED', 'failed to access xattrs: disabled for this image (enable_xattr is off)');
const noXattr = new RafsFormatError('ERR_RAFS_NO_XATTR', 'failed to get xattr: no such attribute');

/** The inode-level view of one image. */
export class ImageFs {
  readonly sb: RafsSuper;
  readonly reader: ChunkReader;
  readonly rootIno: number;
  /** Upstream `xattr_supported`: enable_xattr, or the image says it has xattrs. */
  readonly xattrEnabled: boolean;
  readonly #opts: ImageFsOptions;
  readonly #statfs: StatFs;

  constructor(sb: RafsSuper, reader: ChunkReader, opts: ImageFsOptions) {
    this.sb = sb;
    this.reader = reader;
    this.rootIno = sb.rootIno;
    this.#opts = opts;
    this.xattrEnabled = opts.enableXattr || (sb.flags & RafsSuperFlags.HAS_XATTR) !== 0;
    const counted = Number(sb.superblockJson().inodes_count);
    // Upstream Rafs::statfs: zeroes but for these (libfuse's defaults plus the inode count).
    this.#statfs = { blocks: 0, bfree: 0, bavail: 0, files: Number.isSafeInteger(counted) ? counted : sb.inodeCount, ffree: 0, bsize: 512, namelen: 255, frsize: 0 };
  }

  /** The attributes of `ino`, reported under node id `nodeId`. */
  attr(ino: number, nodeId: number): Attr {
    const a = this.sb.getAttr(ino);
    let mode = a.mode;
    const explicit = this.sb.explicitUidGid;
    // For v5, upstream Rafs forces the root's permission bits to 0755 (nydusify gave roots
    // 0750) and fills a zero mtime (old images, the root) with its start time. A v6 image
    // shows what it records, as the kernel's erofs (and upstream's fscache mode) shows it.
    const v5 = this.sb.version === 5;
    if (v5 && ino === this.rootIno) mode = (mode & ~0o777) | 0o755;
    const mtime = a.mtime === 0 && v5 ? this.#opts.startTime : a.mtime;
    return {
      ino: nodeId,
      mode,
      nlink: a.nlink,
      uid: explicit ? a.uid : this.#opts.uid,
      gid: explicit ? a.gid : this.#opts.gid,
      size: a.size,
      blocks: a.blocks,
      rdev: a.rdev,
      mtime,
      mtimeNsec: mtime === a.mtime ? a.mtimeNsec : 0,
    };
  }

  /** The child `name` of directory `parent`, or undefined. */
  lookup(parent: number, name: Buffer): number | undefined {
    return this.sb.lookup(parent, name);
  }

  /** The S_IFMT bits of `ino`. */
  typeOf(ino: number): number {
    return this.sb.getAttr(ino).mode & S_IFMT;
  }

  readlink(ino: number): Buffer {
    return this.sb.readlink(ino);
  }

  /**
   * Lists directory `dir` after cursor `offset`: `.` (cursor 1), `..` (2), then the
   * image's entries in image order (entry k has cursor k + 3), as upstream Rafs does.
   */
  readdir(dir: number, offset: number, out: DirentSink, ids: ListingIds): void {
    if (this.typeOf(dir) !== S_IFDIR) throw new RafsFormatError('ERR_RAFS_NOT_DIR', `failed to list inode ${dir}: not a directory`);
    if (offset < 1 && !out.add(DOT, ids.self, S_IFDIR, 1)) return;
    if (offset < 2 && !out.add(DOTDOT, ids.parent, S_IFDIR, 2)) return;
    let cursor = Math.max(offset, 2);
    for (const e of this.sb.readdir(dir, cursor - 2)) {
      const node = ids.nodeOf(e.ino);
      cursor++;
      if (!out.add(e.name, node, e.type, cursor, out.plus ? this.attr(e.ino, node) : undefined)) return;
    }
  }

  /** Bytes `[offset, offset + size)` of regular file `ino`, short at EOF, in a pooled buffer (read-buffer.ts). */
  async read(ino: number, offset: number, size: number): Promise<Buffer> {
    const a = this.sb.getAttr(ino);
    const type = a.mode & S_IFMT;
    if (type !== S_IFREG) {
      if (type === S_IFDIR) throw new FuseError('ERR_FS_IS_DIR', `failed to read inode ${ino}: a directory`);
      throw new RafsFormatError('ERR_RAFS_NOT_FILE', `failed to read inode ${ino}: not a regular file`);
    }
    if (size <= 0 || offset >= a.size) return EMPTY;
    const n = Math.min(size, a.size - offset);
    const chunks = this.sb.fileChunks(ino, offset, n);
    return pooledRead(n, (out) => this.reader.readRange(chunks, offset, out), this.#opts.onReadError);
  }

  /** SEEK_DATA / SEEK_HOLE from `offset` (holes are the ranges no chunk covers). */
  lseek(ino: number, offset: number, whence: number): number {
    const a = this.sb.getAttr(ino);
    if ((a.mode & S_IFMT) !== S_IFREG) throw new RafsFormatError('ERR_RAFS_NOT_FILE', `failed to seek in inode ${ino}: not a regular file`);
    if (offset < 0 || offset >= a.size) throw new FuseError('ERR_FS_NO_DATA', `failed to seek in inode ${ino}: offset ${offset} is past the end`);
    const chunks = this.sb.fileChunks(ino, offset, a.size - offset);
    if (whence === SEEK_DATA) {
      for (const c of chunks) if (c.fileOffset + c.uncompressedSize > offset) return Math.max(offset, c.fileOffset);
      throw new FuseError('ERR_FS_NO_DATA', `failed to seek in inode ${ino}: no data after ${offset}`);
    }
    let pos = offset;
    for (const c of chunks) {
      if (c.fileOffset > pos) break;
      pos = Math.max(pos, c.fileOffset + c.uncompressedSize);
    }
    return Math.min(pos, a.size);
  }

  getxattr(ino: number, name: Buffer): Buffer {
    if (!this.xattrEnabled) throw xattrOff;
    const v = this.sb.getXattr(ino, name);
    if (v === undefined) throw noXattr;
    return v;
  }

  listxattr(ino: number): Buffer[] {
    if (!this.xattrEnabled) throw xattrOff;
    return this.sb.listXattrs(ino);
  }

  statfs(): StatFs {
    return this.#statfs;
  }
}
