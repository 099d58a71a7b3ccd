// One decoded FUSE request: the in-header fields read in place from the
// transport's buffer, plus the per-request state the server keeps (start
// time, interrupt flag, lazily created AbortSignal). The same object is the
// handler's RequestContext and the in-flight table entry, so a request costs
// one small allocation. Bodies are decoded in place by the opcode handlers.
import { InHeader, Size, UNIQUE_RESEND_HIGH_BIT } from './abi.js';
import type { RequestContext } from './filesystem.js';

const TWO_32 = 2 ** 32;

/** Reads a little-endian u64 as a number (exact below 2^53, which covers every value we hand out). */
export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO_32;
}

/** Writes a non-negative number as a little-endian u64. */
export function writeU64(buf: Buffer, off: number, value: number): void {
  const lo = value % TWO_32;
  buf.writeUInt32LE(lo >>> 0, off);
  buf.writeUInt32LE(((value - lo) / TWO_32) >>> 0, off + 4);
}

/** A NUL-terminated name starting at `off`, copied out of the (reused) request buffer. */
export function readName(buf: Buffer, off: number, end: number): Buffer | null {
  const nul = buf.indexOf(0, off);
  if (nul < 0 || nul >= end) return null;
  return Buffer.from(buf.subarray(off, nul));
}

/** A request being served. Unique ids are kept as two words so they echo back exactly. */
export class FuseRequest implements RequestContext {
  readonly opcode: number;
  readonly uniqueLo: number;
  readonly uniqueHi: number;
  readonly nodeid: number;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Wall-clock start (ms since the epoch), for the in-flight report. */
  readonly startTime: number;
  /** Monotonic start (performance.now(), ms), for latency. */
  readonly startHr: number;
  /** Set by FUSE_INTERRUPT; the reply is EINTR from then on. */
  interrupted = false;
  /** Set once a reply (or the decision not to reply) has been made. */
  done = false;
  #controller: AbortController | undefined;

  constructor(buf: Buffer, startTime: number, startHr: number) {
    this.opcode = buf.readUInt32LE(InHeader.OPCODE);
    this.uniqueLo = buf.readUInt32LE(InHeader.UNIQUE);
    this.uniqueHi = buf.readUInt32LE(InHeader.UNIQUE + 4);
    this.nodeid = readU64(buf, InHeader.NODEID);
    this.uid = buf.readUInt32LE(InHeader.UID);
    this.gid = buf.readUInt32LE(InHeader.GID);
    this.pid = buf.readUInt32LE(InHeader.PID);
    this.startTime = startTime;
    this.startHr = startHr;
  }

  /** The unique id as a number (approximate only for resent requests, whose bit 63 is set). */
  get unique(): number {
    return this.uniqueLo + this.uniqueHi * TWO_32;
  }

  /** A map key that is exact for every unique the kernel issues, resent ones included. */
  get key(): number {
    return uniqueKey(this.uniqueLo, this.uniqueHi);
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    if (this.interrupted && !this.#controller.signal.aborted) this.#controller.abort();
    return this.#controller.signal;
  }

  /** Marks the request interrupted and aborts its signal if a handler asked for one. */
  interrupt(): void {
    this.interrupted = true;
    this.#controller?.abort();
  }
}

/** Map key of a unique id: low 52 bits plus a flag for the resend bit (bit 63). */
export function uniqueKey(lo: number, hi: number): number {
  const resend = hi >= UNIQUE_RESEND_HIGH_BIT ? 2 ** 52 : 0;
  return lo + (hi & 0xfffff) * TWO_32 + resend;
}

/** Length the header claims, checked against what was read; -1 when the frame is malformed. */
export function frameLength(buf: Buffer, n: number): number {
  if (n < Size.IN_HEADER) return -1;
  const len = buf.readUInt32LE(InHeader.LEN);
  return len === n ? len : -1;
}
