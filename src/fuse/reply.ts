// Encodes replies and writes each one as header + payload slices in a single
// writev. Fixed-size replies are built in one scratch buffer: writes are
// synchronous, so the buffer is free again when write returns and a reply
// costs no allocation. Struct sizes follow the negotiated minor version.
import { AttrField, OpenFlag, Size } from './abi.js';
import type { Attr, OpenResult, StatFs } from './filesystem.js';
import { writeU64, type FuseRequest } from './request.js';

/** Where replies go: one writev of the slices; bytes written or -errno. */
export interface ReplyWriter {
  writev(bufs: readonly Uint8Array[]): number;
}

/** Cache lifetimes (seconds, fractions allowed) put into entry and attr replies. */
export interface CacheTimeouts {
  entry: number;
  attr: number;
  negative: number;
}

function splitSeconds(s: number): [sec: number, nsec: number] {
  const sec = Math.floor(s);
  return [sec, Math.round((s - sec) * 1e9)];
}

/** Encodes fuse_attr at `off` (88 bytes). */
export function encodeAttr(buf: Buffer, off: number, a: Attr): void {
  writeU64(buf, off + AttrField.INO, a.ino);
  writeU64(buf, off + AttrField.SIZE, a.size);
  writeU64(buf, off + AttrField.BLOCKS, a.blocks);
  writeU64(buf, off + AttrField.ATIME, a.atime ?? a.mtime);
  writeU64(buf, off + AttrField.MTIME, a.mtime);
  writeU64(buf, off + AttrField.CTIME, a.ctime ?? a.mtime);
  const mnsec = a.mtimeNsec ?? 0;
  buf.writeUInt32LE(a.atime === undefined ? mnsec : (a.atimeNsec ?? 0), off + AttrField.ATIMENSEC);
  buf.writeUInt32LE(mnsec, off + AttrField.MTIMENSEC);
  buf.writeUInt32LE(a.ctime === undefined ? mnsec : (a.ctimeNsec ?? 0), off + AttrField.CTIMENSEC);
  buf.writeUInt32LE(a.mode >>> 0, off + AttrField.MODE);
  buf.writeUInt32LE(a.nlink >>> 0, off + AttrField.NLINK);
  buf.writeUInt32LE(a.uid >>> 0, off + AttrField.UID);
  buf.writeUInt32LE(a.gid >>> 0, off + AttrField.GID);
  buf.writeUInt32LE(a.rdev >>> 0, off + AttrField.RDEV);
  buf.writeUInt32LE((a.blksize ?? 4096) >>> 0, off + AttrField.BLKSIZE);
  buf.writeUInt32LE(0, off + AttrField.FLAGS);
}

/** Encodes fuse_entry_out at `off` (128 bytes); `attr` null makes a negative entry. */
export function encodeEntryOut(buf: Buffer, off: number, attr: Attr | null, t: CacheTimeouts): void {
  const [esec, ensec] = splitSeconds(attr ? t.entry : t.negative);
  const [asec, ansec] = splitSeconds(t.attr);
  writeU64(buf, off, attr ? attr.ino : 0);
  writeU64(buf, off + 8, 0); // generation: inode numbers are never reused within an image
  writeU64(buf, off + 16, esec);
  writeU64(buf, off + 24, attr ? asec : 0);
  buf.writeUInt32LE(ensec, off + 32);
  buf.writeUInt32LE(attr ? ansec : 0, off + 36);
  if (attr) encodeAttr(buf, off + 40, attr);
  else buf.fill(0, off + 40, off + Size.ENTRY_OUT);
}

/** Writes replies for one connection. `minor` selects compat struct sizes. */
export class Replier {
  readonly #writer: ReplyWriter;
  readonly #scratch = Buffer.alloc(256);
  /** Views of the scratch buffer by reply length, made once: a reply allocates nothing. */
  readonly #views: Buffer[] = [];
  readonly #vec: Uint8Array[] = [];
  /** Negotiated minor version (set at INIT or restore). */
  minor = 0;
  timeouts: CacheTimeouts;
  /** Called with -errno when a write fails for another reason than a vanished request. */
  onWriteError: (errno: number, req: FuseRequest | null) => void = () => {};

  constructor(writer: ReplyWriter, timeouts: CacheTimeouts) {
    this.#writer = writer;
    this.timeouts = timeouts;
  }

  #header(req: FuseRequest, len: number, errno: number): Buffer {
    const b = this.#scratch;
    b.writeUInt32LE(len, 0);
    b.writeInt32LE(-errno, 4);
    b.writeUInt32LE(req.uniqueLo, 8);
    b.writeUInt32LE(req.uniqueHi, 12);
    return b;
  }

  #send(req: FuseRequest, bufs: readonly Uint8Array[]): number {
    const r = this.#writer.writev(bufs);
    // ENOENT: the kernel no longer waits for this unique (interrupted or aborted);
    // ENODEV: the connection is gone, which the transport reports on its own.
    if (r < 0 && r !== -2 && r !== -19) this.onWriteError(r, req);
    return r;
  }

  #view(len: number): Buffer {
    return (this.#views[len] ??= this.#scratch.subarray(0, len));
  }

  #sendOne(req: FuseRequest, a: Uint8Array, b?: Uint8Array): number {
    const vec = this.#vec;
    vec.length = 0;
    vec.push(a);
    if (b !== undefined && b.length > 0) vec.push(b);
    return this.#send(req, vec);
  }

  /** Replies with a fixed struct of `size` bytes that the caller filled at scratch offset 16. */
  #fixed(req: FuseRequest, size: number): number {
    this.#header(req, Size.OUT_HEADER + size, 0);
    return this.#sendOne(req, this.#view(Size.OUT_HEADER + size));
  }

  /** The scratch area a fixed reply is built in (offset 0 = first byte after the header). */
  readonly body: Buffer = this.#scratch.subarray(Size.OUT_HEADER);

  error(req: FuseRequest, errno: number): number {
    this.#header(req, Size.OUT_HEADER, errno);
    return this.#sendOne(req, this.#view(Size.OUT_HEADER));
  }

  ok(req: FuseRequest): number {
    return this.error(req, 0);
  }

  /** A fixed reply already written into `body`. */
  fixed(req: FuseRequest, size: number): number {
    return this.#fixed(req, size);
  }

  entry(req: FuseRequest, attr: Attr | null): number {
    encodeEntryOut(this.#scratch, Size.OUT_HEADER, attr, this.timeouts);
    return this.#fixed(req, this.minor < 9 ? Size.ENTRY_OUT_COMPAT : Size.ENTRY_OUT);
  }

  attr(req: FuseRequest, attr: Attr): number {
    const b = this.#scratch;
    const [sec, nsec] = splitSeconds(this.timeouts.attr);
    writeU64(b, 16, sec);
    b.writeUInt32LE(nsec, 24);
    b.writeUInt32LE(0, 28);
    encodeAttr(b, 32, attr);
    return this.#fixed(req, this.minor < 9 ? Size.ATTR_OUT_COMPAT : Size.ATTR_OUT);
  }

  open(req: FuseRequest, r: OpenResult | undefined, isDir: boolean): number {
    let flags = 0;
    if (r?.keepCache ?? true) flags |= OpenFlag.KEEP_CACHE;
    if (r?.directIo) flags |= OpenFlag.DIRECT_IO;
    if (isDir && r?.cacheDir) flags |= OpenFlag.CACHE_DIR;
    const b = this.#scratch;
    writeU64(b, 16, r?.fh ?? 0);
    b.writeUInt32LE(flags, 24);
    b.writeUInt32LE(0, 28);
    return this.#fixed(req, Size.OPEN_OUT);
  }

  statfs(req: FuseRequest, s: StatFs): number {
    const b = this.#scratch;
    writeU64(b, 16, s.blocks);
    writeU64(b, 24, s.bfree);
    writeU64(b, 32, s.bavail);
    writeU64(b, 40, s.files);
    writeU64(b, 48, s.ffree);
    b.writeUInt32LE(s.bsize >>> 0, 56);
    b.writeUInt32LE(s.namelen >>> 0, 60);
    b.writeUInt32LE(s.frsize >>> 0, 64);
    b.fill(0, 68, 96);
    return this.#fixed(req, this.minor < 4 ? Size.STATFS_OUT_COMPAT : Size.STATFS_OUT);
  }

  /** fuse_getxattr_out: the size a getxattr/listxattr with size 0 asks for. */
  xattrSize(req: FuseRequest, size: number): number {
    this.#scratch.writeUInt32LE(size >>> 0, 16);
    this.#scratch.writeUInt32LE(0, 20);
    return this.#fixed(req, Size.GETXATTR_OUT);
  }

  lseek(req: FuseRequest, offset: number): number {
    writeU64(this.#scratch, 16, offset);
    return this.#fixed(req, Size.LSEEK_OUT);
  }

  /** Header plus one payload buffer (readlink, xattr values, dirent pages). */
  bytes(req: FuseRequest, payload: Uint8Array): number {
    this.#header(req, Size.OUT_HEADER + payload.length, 0);
    return this.#sendOne(req, this.#view(Size.OUT_HEADER), payload);
  }

  /** Header plus several payload buffers (file data). */
  data(req: FuseRequest, parts: readonly Buffer[], total: number): number {
    if (parts.length >= 1024) return this.bytes(req, Buffer.concat(parts, total));
    this.#header(req, Size.OUT_HEADER + total, 0);
    const vec = this.#vec;
    vec.length = 0;
    vec.push(this.#view(Size.OUT_HEADER));
    for (const p of parts) if (p.length > 0) vec.push(p);
    return this.#send(req, vec);
  }
}

/** An unsolicited notification: unique 0, the code in the error field, then the payload. */
export function encodeNotification(code: number, payload: readonly Uint8Array[]): Uint8Array[] {
  let len = Size.OUT_HEADER;
  for (const p of payload) len += p.length;
  const h = Buffer.alloc(Size.OUT_HEADER);
  h.writeUInt32LE(len, 0);
  h.writeInt32LE(code, 4);
  return [h, ...payload];
}
