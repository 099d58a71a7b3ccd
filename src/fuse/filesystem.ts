// The FileSystem the FUSE transports serve: optional methods named after the
// syscalls, keyed by node ids that are the image's own inode numbers (1 is the
// root). A missing method answers ENOSYS; a thrown error answers toErrno(err).
// Nothing here may depend on per-process state the kernel could hold on to:
// node ids, file handles and readdir offsets must mean the same thing to a new
// process that takes over the connection (docs/decisions/0006-hot-upgrade.md).

/** Returned synchronously when the answer is at hand, as a promise otherwise. */
export type MaybePromise<T> = T | Promise<T>;

/** Attributes of an inode, as stat(2) reports them. */
export interface Attr {
  /** Inode number; it is also the FUSE node id, so it must be a safe integer and stable. */
  ino: number;
  /** File type and permission bits (S_IFMT | 0o7777). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte blocks. */
  blocks: number;
  /** Device number of a char/block device, in the kernel's new_encode_dev form (glibc makedev for 12/20-bit values). */
  rdev: number;
  mtime: number;
  mtimeNsec?: number;
  /** Defaults to mtime. */
  atime?: number;
  atimeNsec?: number;
  /** Defaults to mtime. */
  ctime?: number;
  ctimeNsec?: number;
  /** Preferred I/O size; 4096 when absent. */
  blksize?: number;
}

/** Answer to open/opendir. Defaults: fh 0, page cache kept (an image never changes). */
export interface OpenResult {
  /** Must carry no per-process state: another process may receive it after a takeover. */
  fh?: number;
  /** FOPEN_KEEP_CACHE (default true). */
  keepCache?: boolean;
  /** FOPEN_DIRECT_IO. */
  directIo?: boolean;
  /** FOPEN_CACHE_DIR for opendir: let the kernel cache the listing. */
  cacheDir?: boolean;
}

/** statfs(2) numbers. */
export interface StatFs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** Who asked, and a signal that aborts when the kernel interrupts the request. */
export interface RequestContext {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly opcode: number;
  readonly nodeid: number;
  /** Created on first access; aborted by FUSE_INTERRUPT (the reply is EINTR then). */
  readonly signal: AbortSignal;
}

/**
 * Where readdir/readdirplus put entries. Offsets are cursors the kernel hands
 * back on the next call: `nextOffset` of an entry must resume the listing right
 * after it, from the directory's content alone (for example its index + 1 in a
 * stable order), never from per-process state.
 */
export interface DirentSink {
  /** True for READDIRPLUS: entries should carry attributes. */
  readonly plus: boolean;
  /**
   * Appends one entry; false when the reply buffer is full (the entry was not
   * added: stop and let the kernel ask again from the last accepted offset).
   * `mode` needs only the S_IFMT bits. In plus mode, `attr` fills the entry
   * (node id = attr.ino); without it the kernel just does not prime its cache.
   */
  add(name: Buffer | string, ino: number, mode: number, nextOffset: number, attr?: Attr): boolean;
}

/** Whence of lseek requests the kernel forwards. */
export type SeekWhence = 3 | 4; // SEEK_DATA, SEEK_HOLE

/**
 * A read-only filesystem as the FUSE layer sees it. Every method is optional;
 * inode numbers are numbers (< 2^53). Names and values are raw bytes.
 */
export interface FileSystem {
  /** Child `name` of `parent` (`.`/`..` only when exportSupport is negotiated). Throw ENOENT when absent. */
  lookup?(parent: number, name: Buffer, ctx: RequestContext): MaybePromise<Attr>;
  /** The kernel dropped `nlookup` references to `ino`. No reply. */
  forget?(ino: number, nlookup: number): void;
  getattr?(ino: number, ctx: RequestContext): MaybePromise<Attr>;
  readlink?(ino: number, ctx: RequestContext): MaybePromise<Buffer | string>;
  /** `flags` are the open(2) flags. */
  open?(ino: number, flags: number, ctx: RequestContext): MaybePromise<OpenResult>;
  /**
   * Exactly min(size, fileSize - offset) bytes (a short read means EOF to the
   * kernel, which then shrinks its idea of the file size), as one buffer or a list.
   */
  read?(ino: number, fh: number, offset: number, size: number, ctx: RequestContext): MaybePromise<Buffer | readonly Buffer[]>;
  flush?(ino: number, fh: number, ctx: RequestContext): MaybePromise<void>;
  release?(ino: number, fh: number, ctx: RequestContext): MaybePromise<void>;
  statfs?(ino: number, ctx: RequestContext): MaybePromise<StatFs>;
  /** The whole value; the transport answers size queries and ERANGE. Throw ENODATA when absent. */
  getxattr?(ino: number, name: Buffer, ctx: RequestContext): MaybePromise<Buffer>;
  /** Attribute names (without NUL terminators). */
  listxattr?(ino: number, ctx: RequestContext): MaybePromise<readonly (Buffer | string)[]>;
  opendir?(ino: number, flags: number, ctx: RequestContext): MaybePromise<OpenResult>;
  /** Entries after cursor `offset` (0: from the start, `.` and `..` included if the fs lists them). */
  readdir?(ino: number, fh: number, offset: number, out: DirentSink, ctx: RequestContext): MaybePromise<void>;
  /** As readdir, with attributes (the sink's `plus` is true). Negotiated only when present. */
  readdirplus?(ino: number, fh: number, offset: number, out: DirentSink, ctx: RequestContext): MaybePromise<void>;
  releasedir?(ino: number, fh: number, ctx: RequestContext): MaybePromise<void>;
  /** Only asked without default_permissions. `mask` is R_OK|W_OK|X_OK or F_OK. */
  access?(ino: number, mask: number, ctx: RequestContext): MaybePromise<void>;
  /** SEEK_DATA/SEEK_HOLE: the resulting offset; throw ENXIO past the end or when no data follows. */
  lseek?(ino: number, fh: number, offset: number, whence: SeekWhence, ctx: RequestContext): MaybePromise<number>;
  /** The kernel is tearing the connection down (DESTROY). */
  destroy?(): void;
}

/** S_IFMT bits, for the implementations of FileSystem. */
export { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../util/file-mode.js';
