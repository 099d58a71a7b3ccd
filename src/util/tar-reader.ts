// A streaming tar reader for ustar, GNU (long names/links, base-256 numbers) and PAX
// (local and global records) archives, written by hand because names and xattr values
// must stay raw bytes: general-purpose readers decode PAX values as UTF-8 strings, which
// corrupts binary values such as security.capability and non-UTF-8 names.
// It only parses: what a path means (absolute, `..`) is the caller's business. Every
// size is checked before anything is allocated; a malformed header is an error.
import { BuildError } from '../errors.js';
import { TAR_BLOCK, TarType, type TarKind } from './tar-header.js';

/** One archive member as its headers (ustar + GNU + PAX) describe it. */
export interface TarMember {
  kind: TarKind;
  /** Raw path bytes as stored (after PAX `path` / GNU long-name overrides). */
  path: Buffer;
  /** Symlink target or hard-link target (raw bytes); empty otherwise. */
  linkname: Buffer;
  /** Permission bits with suid/sgid/sticky (no type bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (regular files only; 0 for the others). */
  size: number;
  /** Seconds since the epoch; negative before 1970 (a PAX mtime may say so). */
  mtime: number;
  mtimeNsec: number;
  devmajor: number;
  devminor: number;
  /** Extended attributes from `SCHILY.xattr.*` / `LIBARCHIVE.xattr.*` records, in archive order. */
  xattrs: [Buffer, Buffer][];
}

/** Largest PAX record block or GNU long name accepted (bounds memory on hostile input). */
export const MAX_TAR_META = 8 << 20;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function bad(detail: string): BuildError {
  return new BuildError('ERR_BUILD_SOURCE', `failed to read tar: ${detail}`);
}

/** A pull-based byte queue over an async iterator of chunks. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0;
  private avail = 0;
  private done = false;
  /** Bytes consumed so far (archive offset, for messages). */
  position = 0;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** Ensures `n` bytes are buffered unless the source ends first; returns what is available. */
  private async fill(n: number): Promise<number> {
    while (this.avail < n && !this.done) {
      const r = await this.source.next();
      if (r.done) this.done = true;
      else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.avail += r.value.length;
      }
    }
    return this.avail;
  }

  /** Exactly `n` bytes, or fewer only at the end of the source. */
  async take(n: number): Promise<Buffer> {
    const have = await this.fill(n);
    const len = Math.min(n, have);
    let out: Buffer;
    const first = this.chunks[0];
    if (first && first.length - this.head >= len) {
      out = first.subarray(this.head, this.head + len);
      this.head += len;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
    } else {
      out = Buffer.allocUnsafe(len);
      let off = 0;
      while (off < len) {
        const c = this.chunks[0];
        const k = Math.min(len - off, c.length - this.head);
        c.copy(out, off, this.head, this.head + k);
        off += k;
        this.head += k;
        if (this.head === c.length) {
          this.chunks.shift();
          this.head = 0;
        }
      }
    }
    this.avail -= len;
    this.position += len;
    return out;
  }

  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const got = (await this.take(Math.min(left, 1 << 20))).length;
      if (got === 0) break;
      left -= got;
    }
    return n - left;
  }
}

/** Reads members one by one: `next()` for the header, then `read()` for a file's data. */
export class TarReader {
  private readonly q: ByteQueue;
  private remaining = 0;
  private pad = 0;
  private globals = new Map<string, Buffer>();
  private globalXattrs: [Buffer, Buffer][] = [];

  constructor(source: AsyncIterable<Buffer> | AsyncIterator<Buffer>) {
    const it = Symbol.asyncIterator in source ? (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]() : source;
    this.q = new ByteQueue(it as AsyncIterator<Buffer>);
  }

  /** Archive bytes consumed so far. */
  get position(): number {
    return this.q.position;
  }

  /** Bytes of the current member's data not read yet. */
  get left(): number {
    return this.remaining;
  }

  /**
   * Up to `n` bytes of the current member's data (exactly `n` unless fewer remain).
   * A member whose data ends early is an error, never short data.
   */
  async read(n: number): Promise<Buffer> {
    const want = Math.min(n, this.remaining);
    const buf = await this.q.take(want);
    if (buf.length !== want) throw bad(`archive ends inside a member's data at offset ${this.q.position}`);
    this.remaining -= want;
    return buf;
  }

  private async finishMember(): Promise<void> {
    const n = this.remaining + this.pad;
    if (n > 0 && (await this.q.skip(n)) !== n) throw bad(`archive ends inside a member's data at offset ${this.q.position}`);
    this.remaining = 0;
    this.pad = 0;
  }

  /** The next member, or undefined at the end of the archive. Skips unread data. */
  async next(): Promise<TarMember | undefined> {
    await this.finishMember();
    let local = new Map<string, Buffer>();
    let xattrs: [Buffer, Buffer][] = [];
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    for (;;) {
      const at = this.q.position;
      const block = await this.q.take(TAR_BLOCK);
      if (block.length === 0) {
        if (local.size > 0 || longName || longLink) throw bad('archive ends after an extended header');
        return undefined;
      }
      if (block.length < TAR_BLOCK) throw bad(`truncated header at offset ${at}`);
      // Zero blocks end an archive; like upstream, keep reading (concatenated archives).
      if (isZero(block)) continue;
      checkChecksum(block, at);
      const type = block[156];
      const size = parseNumber(block, 124, 12, 'size', at);
      if (type === TarType.pax || type === TarType.paxGlobal || type === TarType.gnuLongName || type === TarType.gnuLongLink) {
        if (size > MAX_TAR_META) throw bad(`extended header of ${size} bytes at offset ${at} is too large`);
        const data = await this.q.take(size);
        if (data.length !== size) throw bad(`archive ends inside an extended header at offset ${at}`);
        await this.q.skip(padding(size));
        if (type === TarType.gnuLongName) longName = cstr(data);
        else if (type === TarType.gnuLongLink) longLink = cstr(data);
        else if (type === TarType.pax) parsePax(data, local, xattrs, at);
        else parsePax(data, this.globals, this.globalXattrs, at);
        continue;
      }
      if (type === 0x56 /* V: volume label */) {
        await this.q.skip(size + padding(size));
        continue;
      }
      const m = this.member(block, type, size, at, local, xattrs, longName, longLink);
      this.remaining = m.size;
      this.pad = padding(m.size);
      // Data of non-files (GNU tar never writes any) is skipped with the member.
      if (m.kind !== 'file' && size > 0) {
        this.remaining = 0;
        this.pad = size + padding(size);
      }
      local = new Map();
      xattrs = [];
      return m;
    }
  }

  private member(
    block: Buffer,
    type: number,
    headerSize: number,
    at: number,
    local: Map<string, Buffer>,
    xattrs: [Buffer, Buffer][],
    longName: Buffer | undefined,
    longLink: Buffer | undefined,
  ): TarMember {
    const pax = (key: string): Buffer | undefined => local.get(key) ?? this.globals.get(key);
    for (const key of ['GNU.sparse.major', 'GNU.sparse.name', 'GNU.sparse.map', 'GNU.sparse.size']) {
      if (pax(key) !== undefined) throw bad(`GNU sparse member at offset ${at} is not supported`);
    }
    const ustar = block.toString('latin1', 257, 263) === 'ustar\u0000';
    let path = cstr(block.subarray(0, 100));
    if (ustar && block[345] !== 0) path = Buffer.concat([cstr(block.subarray(345, 500)), Buffer.from('/'), path]);
    path = pax('path') ?? longName ?? path;
    const linkname = pax('linkpath') ?? longLink ?? cstr(block.subarray(157, 257));
    let kind: TarKind;
    switch (type) {
      case 0:
      case TarType.file:
      case 0x37 /* '7' contiguous: a regular file everywhere */:
        kind = path.length > 0 && path[path.length - 1] === 0x2f ? 'dir' : 'file';
        break;
      case TarType.hardlink:
        kind = 'hardlink';
        break;
      case TarType.symlink:
        kind = 'symlink';
        break;
      case TarType.char:
        kind = 'char';
        break;
      case TarType.block:
        kind = 'block';
        break;
      case TarType.dir:
        kind = 'dir';
        break;
      case TarType.fifo:
        kind = 'fifo';
        break;
      case 0x53 /* S */:
        throw bad(`GNU sparse member at offset ${at} is not supported`);
      default:
        throw bad(`member at offset ${at} has unsupported type ${JSON.stringify(String.fromCharCode(type))}`);
    }
    const size = paxNumber(pax('size'), 'size', at) ?? headerSize;
    const mtimeRaw = pax('mtime');
    const [mtime, mtimeNsec] = mtimeRaw ? parsePaxTime(mtimeRaw, at) : [parseNumber(block, 136, 12, 'mtime', at), 0];
    const hasDev = kind === 'char' || kind === 'block';
    const mode = parseNumber(block, 100, 8, 'mode', at);
    // Type bits may ride along (some writers set them); anything above them is no file mode.
    if (mode > 0o177777) throw bad(`member ${JSON.stringify(path.toString('latin1'))} at offset ${at} has mode ${mode.toString(8)}, which is no file mode`);
    return {
      kind,
      path,
      linkname: kind === 'symlink' || kind === 'hardlink' ? linkname : Buffer.alloc(0),
      mode: mode & 0o7777,
      uid: paxNumber(pax('uid'), 'uid', at) ?? parseNumber(block, 108, 8, 'uid', at),
      gid: paxNumber(pax('gid'), 'gid', at) ?? parseNumber(block, 116, 8, 'gid', at),
      size: kind === 'file' ? size : 0,
      mtime,
      mtimeNsec,
      devmajor: hasDev ? parseNumber(block, 329, 8, 'devmajor', at) : 0,
      devminor: hasDev ? parseNumber(block, 337, 8, 'devminor', at) : 0,
      xattrs: mergeXattrs(this.globalXattrs, xattrs),
    };
  }
}

function mergeXattrs(globals: [Buffer, Buffer][], local: [Buffer, Buffer][]): [Buffer, Buffer][] {
  if (globals.length === 0) return local;
  const out = globals.filter(([g]) => !local.some(([l]) => l.equals(g)));
  return [...out, ...local];
}

function padding(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

/** Bytes up to the first NUL. */
function cstr(b: Buffer): Buffer {
  const nul = b.indexOf(0);
  return Buffer.from(nul < 0 ? b : b.subarray(0, nul));
}

function checkChecksum(block: Buffer, at: number): void {
  const stored = parseOctal(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) throw bad(`header checksum mismatch at offset ${at} (not a tar archive?)`);
}

function parseOctal(b: Buffer, off: number, len: number): number {
  let v = 0;
  let i = off;
  const end = off + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return -1;
    v = v * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? 0 : v;
}

/** An octal field, or GNU base-256 (high bit set); negative or > 2^53 values are errors. */
function parseNumber(b: Buffer, off: number, len: number, what: string, at: number): number {
  if (b[off] & 0x80) {
    if (b[off] === 0xff) throw bad(`negative ${what} at offset ${at}`);
    let v = b[off] & 0x7f;
    for (let i = off + 1; i < off + len; i++) {
      v = v * 256 + b[i];
      if (v > MAX_SAFE) throw bad(`${what} at offset ${at} is too large`);
    }
    return v;
  }
  const v = parseOctal(b, off, len);
  if (v < 0) throw bad(`invalid ${what} field at offset ${at}`);
  return v;
}

function paxNumber(v: Buffer | undefined, what: string, at: number): number | undefined {
  if (v === undefined) return undefined;
  const s = v.toString('latin1');
  if (!/^\d{1,16}$/.test(s) || Number(s) > MAX_SAFE) throw bad(`invalid PAX ${what} ${JSON.stringify(s)} at offset ${at}`);
  return Number(s);
}

function parsePaxTime(v: Buffer, at: number): [number, number] {
  const m = /^(-?\d{1,16})(?:\.(\d{1,18}))?$/.exec(v.toString('latin1'));
  if (!m) throw bad(`invalid PAX mtime ${JSON.stringify(v.toString('latin1'))} at offset ${at}`);
  const sec = Number(m[1]);
  const frac = (m[2] ?? '').padEnd(9, '0').slice(0, 9);
  // Before 1970: negative seconds, a non-negative fraction after them (floor, as POSIX time).
  if (sec < 0 || m[1] === '-0') return frac === '000000000' ? [sec, 0] : [sec - 1, 1_000_000_000 - Number(frac)];
  return [sec, Number(frac)];
}

const SCHILY = Buffer.from('SCHILY.xattr.');
const LIBARCHIVE = Buffer.from('LIBARCHIVE.xattr.');

/** Parses `len key=value\n` records; values stay bytes. */
function parsePax(data: Buffer, into: Map<string, Buffer>, xattrs: [Buffer, Buffer][], at: number): void {
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad the record block with NULs
    const sp = data.indexOf(0x20, pos);
    if (sp < 0 || sp - pos > 20) throw bad(`malformed PAX record at offset ${at}`);
    const len = Number(data.toString('latin1', pos, sp));
    if (!Number.isSafeInteger(len) || len <= sp - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw bad(`malformed PAX record length at offset ${at}`);
    }
    const eq = data.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= pos + len - 1) throw bad(`malformed PAX record at offset ${at}`);
    const key = data.subarray(sp + 1, eq);
    const value = Buffer.from(data.subarray(eq + 1, pos + len - 1));
    if (key.subarray(0, SCHILY.length).equals(SCHILY)) {
      xattrs.push([Buffer.from(key.subarray(SCHILY.length)), value]);
    } else if (key.subarray(0, LIBARCHIVE.length).equals(LIBARCHIVE)) {
      const name = percentDecode(key.subarray(LIBARCHIVE.length));
      xattrs.push([name, Buffer.from(value.toString('latin1'), 'base64')]);
    } else {
      into.set(key.toString('latin1'), value);
    }
    pos += len;
  }
}

/** libarchive writes xattr names percent-encoded; decode to raw bytes. */
function percentDecode(b: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const hex = b[i] === 0x25 && i + 2 < b.length ? b.toString('latin1', i + 1, i + 3) : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else out.push(b[i]);
  }
  return Buffer.from(out);
}
