// POSIX.1-2001 (PAX) tar headers, encoded by hand because names and xattr values in
// images are raw bytes: general-purpose tar libraries take strings, which would mangle
// non-UTF-8 names and binary values such as security.capability. Extended data goes
// into a PAX 'x' record (path, linkpath, mtime with nanoseconds, big ids and sizes,
// SCHILY.xattr.*), which GNU tar and libarchive both read. Non-UTF-8 paths go into
// PAX records as raw bytes, which GNU tar restores unchanged.

export const TAR_BLOCK = 512;

/** Entry kinds and their typeflag bytes. */
export const TarType = {
  file: 0x30, // '0'
  hardlink: 0x31, // '1'
  symlink: 0x32, // '2'
  char: 0x33, // '3'
  block: 0x34, // '4'
  dir: 0x35, // '5'
  fifo: 0x36, // '6'
  pax: 0x78, // 'x'
  paxGlobal: 0x67, // 'g'
  gnuLongName: 0x4c, // 'L'
  gnuLongLink: 0x4b, // 'K'
} as const;

export type TarKind = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  kind: TarKind;
  /** Path inside the archive, relative, as raw bytes (directories need no trailing slash). */
  path: Buffer;
  /** Permission bits including suid/sgid/sticky (no type bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (regular files only). */
  size: number;
  mtime: number;
  mtimeNsec: number;
  /** Symlink target or hard-link target path. */
  linkname?: Buffer;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes as (full name, value) pairs. */
  xattrs?: ReadonlyArray<readonly [Buffer, Buffer]>;
}

const MAX_OCTAL_8 = 0o7777777; // 7 digits + NUL in 8-byte fields
const MAX_OCTAL_12 = 0o77777777777; // 11 digits + NUL in 12-byte fields

/** Encodes the header block(s) of one entry: an optional PAX record, then the ustar header. */
export function encodeTarHeader(e: TarEntry): Buffer {
  const records: Buffer[] = [];
  const path = e.kind === 'dir' && e.path[e.path.length - 1] !== 0x2f ? Buffer.concat([e.path, SLASH]) : e.path;
  const split = splitUstarPath(path);
  if (!split) records.push(paxRecord('path', path));
  if (e.linkname && (e.linkname.length > 100 || !isAscii(e.linkname))) records.push(paxRecord('linkpath', e.linkname));
  if (e.mtimeNsec !== 0 || e.mtime < 0 || e.mtime > MAX_OCTAL_12) {
    records.push(paxRecord('mtime', Buffer.from(formatPaxTime(e.mtime, e.mtimeNsec))));
  }
  if (e.uid > MAX_OCTAL_8) records.push(paxRecord('uid', Buffer.from(String(e.uid))));
  if (e.gid > MAX_OCTAL_8) records.push(paxRecord('gid', Buffer.from(String(e.gid))));
  if (e.size > MAX_OCTAL_12) records.push(paxRecord('size', Buffer.from(String(e.size))));
  for (const [name, value] of e.xattrs ?? []) {
    records.push(paxRecord(Buffer.concat([Buffer.from('SCHILY.xattr.'), name]), value));
  }

  const ustar = Buffer.alloc(TAR_BLOCK);
  const [prefix, name] = split ?? [Buffer.alloc(0), asciiFallback(path, 100)];
  name.copy(ustar, 0);
  writeOctal(ustar, 100, 8, e.mode & 0o7777);
  writeOctal(ustar, 108, 8, Math.min(e.uid, MAX_OCTAL_8));
  writeOctal(ustar, 116, 8, Math.min(e.gid, MAX_OCTAL_8));
  writeOctal(ustar, 124, 12, e.kind === 'file' ? Math.min(e.size, MAX_OCTAL_12) : 0);
  writeOctal(ustar, 136, 12, Math.max(0, Math.min(e.mtime, MAX_OCTAL_12)));
  ustar[156] = TarType[e.kind];
  if (e.linkname) asciiFallback(e.linkname, 100).copy(ustar, 157);
  ustar.write('ustar\u000000', 257, 'latin1');
  writeOctal(ustar, 329, 8, e.devmajor ?? 0);
  writeOctal(ustar, 337, 8, e.devminor ?? 0);
  prefix.copy(ustar, 345);
  writeChecksum(ustar);

  if (records.length === 0) return ustar;
  const pax = Buffer.concat(records);
  const paxHeader = Buffer.alloc(TAR_BLOCK);
  // The PAX header's own name is informational; GNU tar uses "./PaxHeaders/<name>".
  Buffer.from('PaxHeader').copy(paxHeader, 0);
  writeOctal(paxHeader, 100, 8, 0o644);
  writeOctal(paxHeader, 108, 8, 0);
  writeOctal(paxHeader, 116, 8, 0);
  writeOctal(paxHeader, 124, 12, pax.length);
  writeOctal(paxHeader, 136, 12, 0);
  paxHeader[156] = TarType.pax;
  paxHeader.write('ustar\u000000', 257, 'latin1');
  writeChecksum(paxHeader);
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padding(pax.length)), ustar]);
}

/** Zero bytes that round `size` up to a whole tar block. */
export function padding(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
}

/** The two zero blocks that end an archive. */
export function tarTrailer(): Buffer {
  return Buffer.alloc(TAR_BLOCK * 2);
}

const SLASH = Buffer.from('/');

/** Splits a path into ustar prefix (≤155) and name (≤100) at a slash, or null if impossible. */
function splitUstarPath(path: Buffer): [Buffer, Buffer] | null {
  if (!isAscii(path)) return null;
  if (path.length <= 100) return [Buffer.alloc(0), path];
  if (path.length > 256) return null;
  // Search for the slash nearest the end that leaves a name of at most 100 bytes.
  for (let i = Math.max(0, path.length - 101); i < path.length && i <= 155; i++) {
    if (path[i] === 0x2f && path.length - i - 1 <= 100 && path.length - i - 1 > 0) {
      return [path.subarray(0, i), path.subarray(i + 1)];
    }
  }
  return null;
}

/** A header field value for readers that ignore PAX: the bytes truncated to fit. */
function asciiFallback(b: Buffer, max: number): Buffer {
  return b.subarray(0, max);
}

function paxRecord(key: string | Buffer, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(' '), Buffer.from(key), Buffer.from('='), value, Buffer.from('\n')]);
  // The length prefix counts its own digits, so iterate until it is a fixed point.
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function formatPaxTime(sec: number, nsec: number): string {
  if (nsec === 0) return String(sec);
  return `${sec}.${String(nsec).padStart(9, '0').replace(/0+$/, '')}`;
}

function writeOctal(buf: Buffer, off: number, width: number, value: number): void {
  const s = Math.trunc(value).toString(8).padStart(width - 1, '0');
  buf.write(s, off, width - 1, 'latin1');
  buf[off + width - 1] = 0;
}

function writeChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += block[i];
  block.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  block[154] = 0;
  block[155] = 0x20;
}

function isAscii(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] >= 0x80 || b[i] === 0) return false;
  return true;
}
