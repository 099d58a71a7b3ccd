// The FUSE kernel ABI (include/uapi/linux/fuse.h, protocol 7.x up to 7.45):
// opcodes, INIT flags, open flags, notification codes and the byte layout of
// every struct the session reads or writes. Little-endian, as the kernel on
// every platform nydus targets. Facts only; encoding lives in request/reply.

/** Protocol major version; minor versions are negotiated at INIT. */
export const FUSE_KERNEL_VERSION = 7;
/** Highest minor this implementation speaks (Linux 6.16+ headers). */
export const FUSE_KERNEL_MINOR_VERSION = 45;
export const FUSE_ROOT_ID = 1;
/** The kernel refuses reads of /dev/fuse into buffers smaller than this. */
export const FUSE_MIN_READ_BUFFER = 8192;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
  COPY_FILE_RANGE_64: 53,
} as const;
export type OpcodeName = keyof typeof Opcode;

/**
 * INIT flags. Bits 0..31 travel in `flags`, bits 32..63 in `flags2` (only when
 * FUSE_INIT_EXT is set). Values above 2^31 are plain numbers, so combine them
 * with `+`/`splitFlags`, never with 32-bit bitwise operators.
 */
export const InitFlag = {
  ASYNC_READ: 2 ** 0,
  POSIX_LOCKS: 2 ** 1,
  FILE_OPS: 2 ** 2,
  ATOMIC_O_TRUNC: 2 ** 3,
  EXPORT_SUPPORT: 2 ** 4,
  BIG_WRITES: 2 ** 5,
  DONT_MASK: 2 ** 6,
  SPLICE_WRITE: 2 ** 7,
  SPLICE_MOVE: 2 ** 8,
  SPLICE_READ: 2 ** 9,
  FLOCK_LOCKS: 2 ** 10,
  HAS_IOCTL_DIR: 2 ** 11,
  AUTO_INVAL_DATA: 2 ** 12,
  DO_READDIRPLUS: 2 ** 13,
  READDIRPLUS_AUTO: 2 ** 14,
  ASYNC_DIO: 2 ** 15,
  WRITEBACK_CACHE: 2 ** 16,
  NO_OPEN_SUPPORT: 2 ** 17,
  PARALLEL_DIROPS: 2 ** 18,
  HANDLE_KILLPRIV: 2 ** 19,
  POSIX_ACL: 2 ** 20,
  ABORT_ERROR: 2 ** 21,
  MAX_PAGES: 2 ** 22,
  CACHE_SYMLINKS: 2 ** 23,
  NO_OPENDIR_SUPPORT: 2 ** 24,
  EXPLICIT_INVAL_DATA: 2 ** 25,
  MAP_ALIGNMENT: 2 ** 26,
  SUBMOUNTS: 2 ** 27,
  HANDLE_KILLPRIV_V2: 2 ** 28,
  SETXATTR_EXT: 2 ** 29,
  INIT_EXT: 2 ** 30,
  INIT_RESERVED: 2 ** 31,
  SECURITY_CTX: 2 ** 32,
  HAS_INODE_DAX: 2 ** 33,
  CREATE_SUPP_GROUP: 2 ** 34,
  HAS_EXPIRE_ONLY: 2 ** 35,
  DIRECT_IO_ALLOW_MMAP: 2 ** 36,
  PASSTHROUGH: 2 ** 37,
  NO_EXPORT_SUPPORT: 2 ** 38,
  HAS_RESEND: 2 ** 39,
  ALLOW_IDMAP: 2 ** 40,
  OVER_IO_URING: 2 ** 41,
  REQUEST_TIMEOUT: 2 ** 42,
} as const;

/** True when `flags` (a 64-bit flag set held in a number) has `bit`. */
export function hasFlag(flags: number, bit: number): boolean {
  return Math.floor(flags / bit) % 2 === 1;
}

/** Splits a 64-bit flag set into the `flags` and `flags2` words. */
export function splitFlags(flags: number): [low: number, high: number] {
  const low = flags % 2 ** 32;
  return [low >>> 0, ((flags - low) / 2 ** 32) >>> 0];
}

/** Open reply flags (fuse_open_out.open_flags). */
export const OpenFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
} as const;

/** fuse_getattr_in.getattr_flags: the fh field is valid. */
export const FUSE_GETATTR_FH = 1;

/** Notification codes (written with unique 0 and the code in the error field). */
export const NotifyCode = {
  POLL: 1,
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  STORE: 4,
  RETRIEVE: 5,
  DELETE: 6,
  RESEND: 7,
  INC_EPOCH: 8,
} as const;

/** fuse_notify_inval_entry_out.flags: only expire the dentry (7.38). */
export const FUSE_EXPIRE_ONLY = 1;

/** Bit 63 of `unique` marks a request the kernel re-queued after NOTIFY_RESEND (7.40). */
export const UNIQUE_RESEND_HIGH_BIT = 0x80000000;
/** Bit 0 of `unique` marks an INTERRUPT request (its own unique, not the target's). */
export const UNIQUE_INT_BIT = 1;

export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** Struct sizes in bytes. `*_COMPAT*` are the sizes older minors use. */
export const Size = {
  IN_HEADER: 40,
  OUT_HEADER: 16,
  INIT_IN: 64,
  INIT_IN_COMPAT: 16,
  INIT_OUT: 64,
  INIT_OUT_COMPAT: 8,
  INIT_OUT_COMPAT_22: 24,
  ATTR: 88,
  ENTRY_OUT: 128,
  ENTRY_OUT_COMPAT: 120,
  ATTR_OUT: 104,
  ATTR_OUT_COMPAT: 96,
  GETATTR_IN: 16,
  OPEN_IN: 8,
  OPEN_OUT: 16,
  READ_IN: 40,
  READ_IN_COMPAT: 24,
  RELEASE_IN: 24,
  FLUSH_IN: 24,
  GETXATTR_IN: 8,
  GETXATTR_OUT: 8,
  ACCESS_IN: 8,
  STATFS_OUT: 80,
  STATFS_OUT_COMPAT: 48,
  LSEEK_IN: 24,
  LSEEK_OUT: 8,
  INTERRUPT_IN: 8,
  FORGET_IN: 8,
  BATCH_FORGET_IN: 8,
  FORGET_ONE: 16,
  DIRENT_NAME_OFFSET: 24,
  DIRENTPLUS_NAME_OFFSET: 152,
  NOTIFY_INVAL_INODE_OUT: 24,
  NOTIFY_INVAL_ENTRY_OUT: 16,
} as const;

/** Field offsets of fuse_in_header. */
export const InHeader = { LEN: 0, OPCODE: 4, UNIQUE: 8, NODEID: 16, UID: 24, GID: 28, PID: 32, TOTAL_EXTLEN: 36 } as const;

/** Field offsets of fuse_attr (88 bytes). */
export const AttrField = {
  INO: 0,
  SIZE: 8,
  BLOCKS: 16,
  ATIME: 24,
  MTIME: 32,
  CTIME: 40,
  ATIMENSEC: 48,
  MTIMENSEC: 52,
  CTIMENSEC: 56,
  MODE: 60,
  NLINK: 64,
  UID: 68,
  GID: 72,
  RDEV: 76,
  BLKSIZE: 80,
  FLAGS: 84,
} as const;

/** Field offsets of fuse_init_out (64 bytes). */
export const InitOut = {
  MAJOR: 0,
  MINOR: 4,
  MAX_READAHEAD: 8,
  FLAGS: 12,
  MAX_BACKGROUND: 16,
  CONGESTION_THRESHOLD: 18,
  MAX_WRITE: 20,
  TIME_GRAN: 24,
  MAX_PAGES: 28,
  MAP_ALIGNMENT: 30,
  FLAGS2: 32,
  MAX_STACK_DEPTH: 36,
} as const;

/** Rounds a dirent record up to its 8-byte alignment. */
export function direntAlign(n: number): number {
  return (n + 7) & ~7;
}
