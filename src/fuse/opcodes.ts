// The opcode registry (after go-fuse fuse/opcode.go): for each opcode its
// name, whether the kernel waits for a reply, whether it would modify the
// filesystem (answered EROFS), the smallest body it is valid with, and the
// handler that decodes the body in place and calls the FileSystem. Handlers
// never write replies directly: they hand results to the Dispatcher.
import { constants } from 'node:os';
import { Opcode, SEEK_DATA, SEEK_HOLE, Size } from './abi.js';
import { DirentBuffer } from './dirent.js';
import type { Attr, FileSystem, MaybePromise, OpenResult, StatFs } from './filesystem.js';
import type { BufferPool } from '../util/buffer-pool.js';
import type { Replier } from './reply.js';
import { readName, readU64, type FuseRequest } from './request.js';

const E = constants.errno;
const BODY = Size.IN_HEADER;

/** What handlers need from the protocol server. */
export interface Dispatcher {
  readonly fs: FileSystem;
  readonly reply: Replier;
  readonly pool: BufferPool;
  /** Calls `invoke`, then replies with `ok(value)` (returns bytes written) or the thrown error's errno. */
  call<T>(req: FuseRequest, invoke: () => MaybePromise<T>, ok: (value: T) => number): void;
  /** Replies with an errno and finishes the request. */
  fail(req: FuseRequest, errno: number): void;
  /** Handles INIT/INTERRUPT/DESTROY/FORGET, which touch server state. */
  control(req: FuseRequest, body: Buffer): void;
}

/** Decodes the body of `req` (bytes BODY..len of `buf`) and serves it. */
export type Handler = (d: Dispatcher, req: FuseRequest, buf: Buffer, len: number) => void;

export interface OpcodeInfo {
  readonly name: string;
  /** False for FORGET, BATCH_FORGET, NOTIFY_REPLY and INTERRUPT (it makes its target answer EINTR). */
  readonly replies: boolean;
  /** Modifying opcodes answer EROFS on this read-only filesystem. */
  readonly modifying: boolean;
  /** Smallest valid body (bytes after the in-header). */
  readonly minBody: number;
  readonly handler?: Handler;
}

/** True for a thenable (FileSystem methods may answer synchronously). */
export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | undefined)?.then === 'function';
}

const enosys = (d: Dispatcher, req: FuseRequest): void => d.fail(req, E.ENOSYS);

const lookup: Handler = (d, req, buf, len) => {
  const fs = d.fs;
  if (!fs.lookup) return enosys(d, req);
  const name = readName(buf, BODY, len);
  if (!name) return d.fail(req, E.EINVAL);
  d.call(req, () => fs.lookup!(req.nodeid, name, req), (attr: Attr) => d.reply.entry(req, attr));
};

const getattr: Handler = (d, req) => {
  const fs = d.fs;
  if (!fs.getattr) return enosys(d, req);
  d.call(req, () => fs.getattr!(req.nodeid, req), (attr: Attr) => d.reply.attr(req, attr));
};

const readlink: Handler = (d, req) => {
  const fs = d.fs;
  if (!fs.readlink) return enosys(d, req);
  d.call(req, () => fs.readlink!(req.nodeid, req), (target: Buffer | string) =>
    d.reply.bytes(req, typeof target === 'string' ? Buffer.from(target) : target),
  );
};

const open: Handler = (d, req, buf) => {
  const fs = d.fs;
  if (!fs.open) return enosys(d, req);
  const flags = buf.readUInt32LE(BODY);
  d.call(req, () => fs.open!(req.nodeid, flags, req), (r: OpenResult) => d.reply.open(req, r, false));
};

const opendir: Handler = (d, req, buf) => {
  const fs = d.fs;
  if (!fs.opendir) return enosys(d, req);
  const flags = buf.readUInt32LE(BODY);
  d.call(req, () => fs.opendir!(req.nodeid, flags, req), (r: OpenResult) => d.reply.open(req, r, true));
};

const read: Handler = (d, req, buf) => {
  const fs = d.fs;
  if (!fs.read) return enosys(d, req);
  const fh = readU64(buf, BODY);
  const offset = readU64(buf, BODY + 8);
  const size = buf.readUInt32LE(BODY + 16);
  d.call(req, () => fs.read!(req.nodeid, fh, offset, size, req), (data: Buffer | readonly Buffer[]) => {
    if (Buffer.isBuffer(data)) {
      if (data.length > size) return tooMuch(d, req);
      return d.reply.bytes(req, data);
    }
    let total = 0;
    for (const part of data) total += part.length;
    if (total > size) return tooMuch(d, req);
    return d.reply.data(req, data, total);
  });
};

/** A read that returned more than asked is a FileSystem bug: never send those bytes. */
function tooMuch(d: Dispatcher, req: FuseRequest): number {
  d.fail(req, E.EIO);
  return 0;
}

const handleOp =
  (method: 'release' | 'releasedir' | 'flush'): Handler =>
  (d, req, buf) => {
    const fs = d.fs;
    const fn = fs[method];
    if (!fn) return enosys(d, req);
    const fh = readU64(buf, BODY);
    d.call(req, () => fn.call(fs, req.nodeid, fh, req), () => d.reply.ok(req));
  };

const statfs: Handler = (d, req) => {
  const fs = d.fs;
  if (!fs.statfs) return enosys(d, req);
  d.call(req, () => fs.statfs!(req.nodeid, req), (s: StatFs) => d.reply.statfs(req, s));
};

const getxattr: Handler = (d, req, buf, len) => {
  const fs = d.fs;
  if (!fs.getxattr) return enosys(d, req);
  const size = buf.readUInt32LE(BODY);
  const name = readName(buf, BODY + Size.GETXATTR_IN, len);
  if (!name) return d.fail(req, E.EINVAL);
  d.call(req, () => fs.getxattr!(req.nodeid, name, req), (value: Buffer) => {
    if (size === 0) return d.reply.xattrSize(req, value.length);
    if (value.length > size) return rangeError(d, req);
    return d.reply.bytes(req, value);
  });
};

const listxattr: Handler = (d, req, buf) => {
  const fs = d.fs;
  if (!fs.listxattr) return enosys(d, req);
  const size = buf.readUInt32LE(BODY);
  d.call(req, () => fs.listxattr!(req.nodeid, req), (names: readonly (Buffer | string)[]) => {
    const parts: Buffer[] = [];
    for (const n of names) parts.push(typeof n === 'string' ? Buffer.from(n) : n, ZERO);
    const list = Buffer.concat(parts);
    if (size === 0) return d.reply.xattrSize(req, list.length);
    if (list.length > size) return rangeError(d, req);
    return d.reply.bytes(req, list);
  });
};
const ZERO = Buffer.alloc(1);

function rangeError(d: Dispatcher, req: FuseRequest): number {
  d.fail(req, E.ERANGE);
  return 0;
}

const access: Handler = (d, req, buf) => {
  const fs = d.fs;
  if (!fs.access) return enosys(d, req);
  const mask = buf.readUInt32LE(BODY);
  d.call(req, () => fs.access!(req.nodeid, mask, req), () => d.reply.ok(req));
};

const readdir =
  (plus: boolean): Handler =>
  (d, req, buf) => {
    const fs = d.fs;
    // A taken-over connection may have READDIRPLUS negotiated by the previous
    // process: serve it from readdir (entries without attributes) if need be.
    const fn = plus ? (fs.readdirplus ?? fs.readdir) : fs.readdir;
    if (!fn) return enosys(d, req);
    const fh = readU64(buf, BODY);
    const offset = readU64(buf, BODY + 8);
    const size = Math.min(buf.readUInt32LE(BODY + 16), 4 << 20);
    const page = d.pool.get(size);
    const sink = new DirentBuffer(page, size, plus, d.reply.timeouts);
    d.call(
      req,
      () => fn.call(fs, req.nodeid, fh, offset, sink, req),
      () => {
        const n = d.reply.bytes(req, page.subarray(0, sink.used));
        d.pool.put(page);
        return n;
      },
    );
  };

const lseek: Handler = (d, req, buf) => {
  const fs = d.fs;
  if (!fs.lseek) return enosys(d, req);
  const fh = readU64(buf, BODY);
  const offset = readU64(buf, BODY + 8);
  const whence = buf.readUInt32LE(BODY + 16);
  if (whence !== SEEK_DATA && whence !== SEEK_HOLE) return d.fail(req, E.EINVAL);
  d.call(req, () => fs.lseek!(req.nodeid, fh, offset, whence, req), (off: number) => d.reply.lseek(req, off));
};

const control: Handler = (d, req, buf, len) => d.control(req, buf.subarray(BODY, len));

type Entry = [name: string, replies: boolean, modifying: boolean, minBody: number, handler?: Handler];

const table: Record<number, Entry> = {
  [Opcode.LOOKUP]: ['LOOKUP', true, false, 1, lookup],
  [Opcode.FORGET]: ['FORGET', false, false, Size.FORGET_IN, control],
  [Opcode.GETATTR]: ['GETATTR', true, false, 0, getattr],
  [Opcode.SETATTR]: ['SETATTR', true, true, 0],
  [Opcode.READLINK]: ['READLINK', true, false, 0, readlink],
  [Opcode.SYMLINK]: ['SYMLINK', true, true, 0],
  [Opcode.MKNOD]: ['MKNOD', true, true, 0],
  [Opcode.MKDIR]: ['MKDIR', true, true, 0],
  [Opcode.UNLINK]: ['UNLINK', true, true, 0],
  [Opcode.RMDIR]: ['RMDIR', true, true, 0],
  [Opcode.RENAME]: ['RENAME', true, true, 0],
  [Opcode.LINK]: ['LINK', true, true, 0],
  [Opcode.OPEN]: ['OPEN', true, false, Size.OPEN_IN, open],
  [Opcode.READ]: ['READ', true, false, Size.READ_IN_COMPAT, read],
  [Opcode.WRITE]: ['WRITE', true, true, 0],
  [Opcode.STATFS]: ['STATFS', true, false, 0, statfs],
  [Opcode.RELEASE]: ['RELEASE', true, false, Size.RELEASE_IN - 8, handleOp('release')],
  [Opcode.FSYNC]: ['FSYNC', true, false, 0],
  [Opcode.SETXATTR]: ['SETXATTR', true, true, 0],
  [Opcode.GETXATTR]: ['GETXATTR', true, false, Size.GETXATTR_IN + 1, getxattr],
  [Opcode.LISTXATTR]: ['LISTXATTR', true, false, Size.GETXATTR_IN, listxattr],
  [Opcode.REMOVEXATTR]: ['REMOVEXATTR', true, true, 0],
  [Opcode.FLUSH]: ['FLUSH', true, false, Size.FLUSH_IN, handleOp('flush')],
  [Opcode.INIT]: ['INIT', true, false, 8, control],
  [Opcode.OPENDIR]: ['OPENDIR', true, false, Size.OPEN_IN, opendir],
  [Opcode.READDIR]: ['READDIR', true, false, Size.READ_IN_COMPAT, readdir(false)],
  [Opcode.RELEASEDIR]: ['RELEASEDIR', true, false, Size.RELEASE_IN - 8, handleOp('releasedir')],
  [Opcode.FSYNCDIR]: ['FSYNCDIR', true, false, 0],
  [Opcode.GETLK]: ['GETLK', true, false, 0],
  [Opcode.SETLK]: ['SETLK', true, false, 0],
  [Opcode.SETLKW]: ['SETLKW', true, false, 0],
  [Opcode.ACCESS]: ['ACCESS', true, false, Size.ACCESS_IN, access],
  [Opcode.CREATE]: ['CREATE', true, true, 0],
  [Opcode.INTERRUPT]: ['INTERRUPT', false, false, Size.INTERRUPT_IN, control],
  [Opcode.BMAP]: ['BMAP', true, false, 0],
  [Opcode.DESTROY]: ['DESTROY', true, false, 0, control],
  [Opcode.IOCTL]: ['IOCTL', true, false, 0],
  [Opcode.POLL]: ['POLL', true, false, 0],
  [Opcode.NOTIFY_REPLY]: ['NOTIFY_REPLY', false, false, 0, () => {}],
  [Opcode.BATCH_FORGET]: ['BATCH_FORGET', false, false, Size.BATCH_FORGET_IN, control],
  [Opcode.FALLOCATE]: ['FALLOCATE', true, true, 0],
  [Opcode.READDIRPLUS]: ['READDIRPLUS', true, false, Size.READ_IN_COMPAT, readdir(true)],
  [Opcode.RENAME2]: ['RENAME2', true, true, 0],
  [Opcode.LSEEK]: ['LSEEK', true, false, Size.LSEEK_IN, lseek],
  [Opcode.COPY_FILE_RANGE]: ['COPY_FILE_RANGE', true, true, 0],
  [Opcode.SETUPMAPPING]: ['SETUPMAPPING', true, false, 0],
  [Opcode.REMOVEMAPPING]: ['REMOVEMAPPING', true, false, 0],
  [Opcode.SYNCFS]: ['SYNCFS', true, false, 0],
  [Opcode.TMPFILE]: ['TMPFILE', true, true, 0],
  [Opcode.STATX]: ['STATX', true, false, 0],
  [Opcode.COPY_FILE_RANGE_64]: ['COPY_FILE_RANGE_64', true, true, 0],
};

/** Registry indexed by opcode; unknown opcodes are absent (answered ENOSYS). */
export const OPCODES: ReadonlyMap<number, OpcodeInfo> = new Map(
  Object.entries(table).map(([op, [name, replies, modifying, minBody, handler]]) => [
    Number(op),
    Object.freeze({ name, replies, modifying, minBody, handler }),
  ]),
);

/** Name of an opcode for logs and metrics (`OP_<n>` when unknown). */
export function opcodeName(opcode: number): string {
  return OPCODES.get(opcode)?.name ?? `OP_${opcode}`;
}

// Sanity check of the table at load time (go-fuse checks its table in init()).
for (const [op, info] of OPCODES) {
  if (info.modifying && info.handler) throw new Error(`opcode ${info.name} (${op}) is modifying and has a handler`);
  if (!info.replies && !info.handler) throw new Error(`opcode ${info.name} (${op}) has no reply and no handler`);
}
