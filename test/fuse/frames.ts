// Builds FUSE request frames and takes replies apart for the kernel-free
// protocol tests. Layouts are written out here from include/uapi/linux/fuse.h
// on purpose, independently of src/fuse/reply.ts, so the tests check the
// encoder against the kernel's struct layout rather than against itself.
import type { ReplyWriter } from '../../src/fuse/reply.js';

export interface FrameOptions {
  uid?: number;
  gid?: number;
  pid?: number;
}

/** fuse_in_header (40 bytes) + body. */
export function frame(opcode: number, unique: bigint, nodeid: bigint | number, body: Buffer = Buffer.alloc(0), o: FrameOptions = {}): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32LE(40 + body.length, 0);
  h.writeUInt32LE(opcode, 4);
  h.writeBigUInt64LE(unique, 8);
  h.writeBigUInt64LE(BigInt(nodeid), 16);
  h.writeUInt32LE(o.uid ?? 0, 24);
  h.writeUInt32LE(o.gid ?? 0, 28);
  h.writeUInt32LE(o.pid ?? 4242, 32);
  return Buffer.concat([h, body]);
}

/** A name argument: bytes + NUL. */
export function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s), Buffer.alloc(1)]);
}

/** fuse_read_in (40 bytes), also used by READDIR/READDIRPLUS. */
export function readIn(fh: bigint, offset: bigint, size: number): Buffer {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(fh, 0);
  b.writeBigUInt64LE(offset, 8);
  b.writeUInt32LE(size, 16);
  return b;
}

/** fuse_init_in: 16 bytes before 7.36, 64 bytes with flags2 from 7.36. */
export function initIn(major: number, minor: number, maxReadahead: number, flags: bigint): Buffer {
  const long = minor >= 36;
  const b = Buffer.alloc(long ? 64 : minor >= 6 ? 16 : 8);
  b.writeUInt32LE(major, 0);
  b.writeUInt32LE(minor, 4);
  if (b.length >= 16) {
    b.writeUInt32LE(maxReadahead, 8);
    b.writeUInt32LE(Number(flags & 0xffffffffn), 12);
  }
  if (long) b.writeUInt32LE(Number(flags >> 32n), 16);
  return b;
}

export interface Reply {
  len: number;
  error: number;
  unique: bigint;
  body: Buffer;
}

/** Collects every writev as one joined frame. */
export class CaptureWriter implements ReplyWriter {
  readonly frames: Buffer[] = [];
  writev(bufs: readonly Uint8Array[]): number {
    const b = Buffer.concat(bufs.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength)));
    this.frames.push(b);
    return b.length;
  }
  /** Replies so far, parsed, and forgets them. */
  take(): Reply[] {
    return this.frames.splice(0).map(parseReply);
  }
}

export function parseReply(b: Buffer): Reply {
  return { len: b.readUInt32LE(0), error: b.readInt32LE(4), unique: b.readBigUInt64LE(8), body: b.subarray(16) };
}

export interface ParsedAttr {
  ino: bigint;
  size: bigint;
  blocks: bigint;
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
  atimensec: number;
  mtimensec: number;
  ctimensec: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

/** struct fuse_attr at `off`. */
export function parseAttr(b: Buffer, off: number): ParsedAttr {
  return {
    ino: b.readBigUInt64LE(off),
    size: b.readBigUInt64LE(off + 8),
    blocks: b.readBigUInt64LE(off + 16),
    atime: b.readBigUInt64LE(off + 24),
    mtime: b.readBigUInt64LE(off + 32),
    ctime: b.readBigUInt64LE(off + 40),
    atimensec: b.readUInt32LE(off + 48),
    mtimensec: b.readUInt32LE(off + 52),
    ctimensec: b.readUInt32LE(off + 56),
    mode: b.readUInt32LE(off + 60),
    nlink: b.readUInt32LE(off + 64),
    uid: b.readUInt32LE(off + 68),
    gid: b.readUInt32LE(off + 72),
    rdev: b.readUInt32LE(off + 76),
    blksize: b.readUInt32LE(off + 80),
  };
}

export interface ParsedEntry {
  nodeid: bigint;
  generation: bigint;
  entryValid: bigint;
  attrValid: bigint;
  entryValidNsec: number;
  attrValidNsec: number;
  attr: ParsedAttr;
}

/** struct fuse_entry_out at `off`. */
export function parseEntry(b: Buffer, off = 0): ParsedEntry {
  return {
    nodeid: b.readBigUInt64LE(off),
    generation: b.readBigUInt64LE(off + 8),
    entryValid: b.readBigUInt64LE(off + 16),
    attrValid: b.readBigUInt64LE(off + 24),
    entryValidNsec: b.readUInt32LE(off + 32),
    attrValidNsec: b.readUInt32LE(off + 36),
    attr: parseAttr(b, off + 40),
  };
}

export interface ParsedDirent {
  ino: bigint;
  off: bigint;
  type: number;
  name: string;
  entry?: ParsedEntry;
}

/** A READDIR (plus = false) or READDIRPLUS page. */
export function parseDirents(body: Buffer, plus: boolean): ParsedDirent[] {
  const out: ParsedDirent[] = [];
  let p = 0;
  while (p < body.length) {
    const entry = plus ? parseEntry(body, p) : undefined;
    const d = plus ? p + 128 : p;
    const namelen = body.readUInt32LE(d + 16);
    out.push({
      ino: body.readBigUInt64LE(d),
      off: body.readBigUInt64LE(d + 8),
      type: body.readUInt32LE(d + 20),
      name: body.subarray(d + 24, d + 24 + namelen).toString(),
      entry,
    });
    p = d + ((24 + namelen + 7) & ~7);
  }
  return out;
}
