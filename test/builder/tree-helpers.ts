// Source trees for builder tests and the comparison that decides whether an image holds
// exactly its source: every entry's type, mode (suid/sgid/sticky included), owner,
// mtime with nanoseconds, size, nlink and hard-link grouping, device number, symlink
// target, xattrs (raw bytes) and file bytes. Names are raw bytes throughout.
import { createHash } from 'node:crypto';
import {
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  symlinkSync,
  linkSync,
  writeFileSync,
  chmodSync,
  lchownSync,
  lutimesSync,
  renameSync,
  type BigIntStats,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { isUtf8 } from 'node:buffer';
import { readXattrs } from '../../src/builder/xattr.js';

const B = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s) : s);
const P = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [B(p)] : [Buffer.from('/'), B(p)])));

function sh(cmd: string, args: (string | Buffer)[]): void {
  const r = spawnSync(cmd, args as string[], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
}

/** Sets an mtime with nanoseconds (touch takes a fractional epoch; -h for symlinks). */
export function setMtime(path: Buffer | string, sec: number, nsec: number): void {
  sh('touch', ['-h', '-d', `@${sec}.${String(nsec).padStart(9, '0')}`, path]);
}

export function setXattr(path: Buffer | string, name: string, hexValue: string): void {
  sh('setfattr', ['-h', '-n', name, '-v', `0x${hexValue}`, path]);
}

/** A valid v2 file capability (cap_net_raw, effective): what `setcap cap_net_raw+ep` writes. */
export const CAPABILITY_HEX = '0100000200200000000000000000000000000000';

export interface RichTreeOptions {
  /** Add a directory with this many entries. */
  bigDir?: number;
  /** Add a unix socket (builders skip it with a warning). */
  socket?: boolean;
}

/**
 * Every kind of entry a filesystem can hold. The root's own mtime is left alone (images
 * record it as 0, as upstream does).
 */
export function makeRichTree(root: string, opts: RichTreeOptions = {}): void {
  const r = B(root);
  mkdirSync(root, { recursive: true });
  writeFileSync(P(r, 'empty'), '');
  writeFileSync(P(r, 'small.txt'), 'hello, nydus\n');
  // Multi-chunk file with a repeated region (deduplicated chunks inside one file).
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(P(r, 'big.bin'), Buffer.concat([chunk, chunk, Buffer.from('tail bytes'), chunk.subarray(0, 12345)]));
  writeFileSync(P(r, 'copy-of-small.txt'), 'hello, nydus\n');
  // Sparse: a hole, data, a hole at the end.
  const fd = openSync(P(r, 'sparse'), 'w');
  writeFileSync(fd, 'middle');
  closeSync(fd);
  sh('truncate', ['-s', '3M', P(r, 'sparse')]);
  sh('dd', ['if=/dev/urandom', `of=${P(r, 'sparse').toString()}`, 'bs=4096', 'seek=300', 'count=3', 'conv=notrunc', 'status=none']);
  mkdirSync(P(r, 'dir', 'sub', 'deeper'), { recursive: true });
  writeFileSync(P(r, 'dir', 'sub', 'deeper', 'leaf'), 'leaf');
  linkSync(P(r, 'small.txt'), P(r, 'dir', 'hardlink-to-small'));
  linkSync(P(r, 'small.txt'), P(r, 'dir', 'sub', 'another-hardlink'));
  symlinkSync('../small.txt', P(r, 'dir', 'rel-link'));
  symlinkSync('/nonexistent/absolute/target', P(r, 'dangling'));
  symlinkSync('x'.repeat(300), P(r, 'long-target-link'));
  writeFileSync(P(r, 'n'.repeat(255)), 'longest name');
  writeFileSync(P(r, Buffer.from([0x6e, 0x6f, 0x6e, 0xff, 0xfe, 0x2d, 0x75, 0x74, 0x66, 0x38])), 'not utf-8 name');
  writeFileSync(P(r, 'caf\u00e9-\u6f22\u5b57'), 'utf-8 name');
  sh('mknod', [P(r, 'char-dev'), 'c', '1', '7']);
  sh('mknod', [P(r, 'block-dev'), 'b', '7', '200']);
  sh('mknod', [P(r, 'big-minor-dev'), 'c', '240', '1048575']);
  sh('mkfifo', [P(r, 'fifo')]);
  writeFileSync(P(r, 'suid'), '#!/bin/sh\n');
  chmodSync(P(r, 'suid'), 0o4755);
  mkdirSync(P(r, 'sgid-dir'));
  chmodSync(P(r, 'sgid-dir'), 0o2775);
  mkdirSync(P(r, 'sticky-dir'));
  chmodSync(P(r, 'sticky-dir'), 0o1777);
  writeFileSync(P(r, 'private'), 'secret');
  chmodSync(P(r, 'private'), 0o600);
  lchownSync(P(r, 'private'), 1234, 5678);
  writeFileSync(P(r, 'big-ids'), 'ids over 65535');
  lchownSync(P(r, 'big-ids'), 100000, 200000);
  lchownSync(P(r, 'dangling'), 42, 43);
  writeFileSync(P(r, 'with-xattrs'), 'x');
  setXattr(P(r, 'with-xattrs'), 'user.text', Buffer.from('plain value').toString('hex'));
  setXattr(P(r, 'with-xattrs'), 'user.binary', '00ff10ff00c3');
  setXattr(P(r, 'with-xattrs'), 'trusted.overlay.something', '79');
  setXattr(P(r, 'with-xattrs'), 'security.capability', CAPABILITY_HEX);
  setXattr(P(r, 'dir'), 'user.on-a-dir', '0102');
  setXattr(P(r, 'dir', 'sub'), 'user.empty', '');
  setXattr(P(r, 'dir', 'sub'), 'user.big', 'ab'.repeat(3000));
  if (opts.bigDir) {
    mkdirSync(P(r, 'many'));
    for (let i = 0; i < opts.bigDir; i++) writeFileSync(P(r, 'many', `entry-${String(i).padStart(5, '0')}-${'p'.repeat(i % 40)}`), i % 7 === 0 ? String(i) : '');
  }
  if (opts.socket) {
    const sock = P(r, 'socket').toString();
    sh(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.exit(0))`]);
  }
  // Fixed mtimes with nanoseconds, children before their directory so that it keeps its own.
  let n = 0;
  const stamp = (p: Buffer, parent: Buffer | undefined): void => {
    const st = lstatSync(p);
    const bulk = parent !== undefined && P(r, 'many').equals(parent);
    if (st.isDirectory()) for (const name of readdirSync(p, { encoding: 'buffer' })) stamp(P(p, name), p);
    n++;
    if (p.equals(r)) return;
    if (bulk) {
      // Binary fractions are exact in a double, so lutimes keeps every nanosecond.
      lutimesSync(p, 1_500_000_000 + n, 1_500_000_000 + n + (n % 8) / 8);
      return;
    }
    if (isUtf8(p)) {
      setMtime(p, 1_600_000_000 + n * 17, (n * 123_456_789) % 1_000_000_000);
    } else {
      // Command lines cannot carry non-UTF-8 bytes: touch it under a temporary name.
      const tmp = P(parent as Buffer, 'utf8-alias-for-touch');
      renameSync(p, tmp);
      setMtime(tmp, 1_600_000_000 + n * 17, (n * 123_456_789) % 1_000_000_000);
      renameSync(tmp, p);
    }
  };
  stamp(r, undefined);
}

export interface CompareOptions {
  /** The image records the root's mtime as 0. */
  ignoreRootMtime?: boolean;
  /** Entries of `a` that must be absent from `b` (e.g. sockets the builder skips). */
  skip?: (path: string, st: BigIntStats) => boolean;
  /** Compare owners (false for --repeatable images, which record 0). */
  owners?: boolean;
  /** Compare file bytes (false to look at metadata only). */
  content?: boolean;
  /** The image keeps mtimes rounded to whole seconds (an eStargz TOC's RFC 3339 modtime). */
  mtimeSeconds?: boolean;
}

const shaBuf = Buffer.allocUnsafe(1 << 20);

function sha(path: Buffer): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = shaBuf;
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Differences between trees `a` and `b` (empty when equal), one line each. */
export function compareTrees(a: string, b: string, opts: CompareOptions = {}): string[] {
  const diffs: string[] = [];
  const owners = opts.owners ?? true;
  const groupsA = new Map<bigint, string>();
  const groupsB = new Map<bigint, string>();
  const visit = (rel: Buffer): void => {
    const pa = P(B(a), rel);
    const pb = P(B(b), rel);
    const show = rel.length === 0 ? '/' : rel.toString('latin1');
    const sa = lstatSync(pa, { bigint: true });
    let sb: BigIntStats;
    try {
      sb = lstatSync(pb, { bigint: true });
    } catch {
      diffs.push(`${show}: missing`);
      return;
    }
    const field = (name: string, x: unknown, y: unknown): void => {
      if (x !== y) diffs.push(`${show}: ${name} ${String(x)} != ${String(y)}`);
    };
    field('mode', sa.mode.toString(8), sb.mode.toString(8));
    if (owners) {
      field('uid', sa.uid, sb.uid);
      field('gid', sa.gid, sb.gid);
    }
    const mtime = (st: BigIntStats): bigint => (opts.mtimeSeconds ? (st.mtimeNs + 500_000_000n) / 1_000_000_000n : st.mtimeNs);
    if (!(opts.ignoreRootMtime && rel.length === 0)) field('mtime', mtime(sa), mtime(sb));
    const x1 = readXattrs(pa).map((x) => `${x.name.toString('latin1')}=${x.value.toString('hex')}`).join(',');
    const x2 = readXattrs(pb).map((x) => `${x.name.toString('latin1')}=${x.value.toString('hex')}`).join(',');
    field('xattrs', x1, x2);
    if (sa.isDirectory()) {
      const na = readdirSync(pa, { encoding: 'buffer' }).filter((n) => !opts.skip?.(P(B(a), rel, n).toString(), lstatSync(P(pa, n), { bigint: true })));
      const nb = readdirSync(pb, { encoding: 'buffer' });
      const ka = na.map((n) => n.toString('latin1')).sort();
      const kb = nb.map((n) => n.toString('latin1')).sort();
      field('entries', ka.join('|'), kb.join('|'));
      const inB = new Set(kb);
      for (const n of na) if (inB.has(n.toString('latin1'))) visit(rel.length === 0 ? n : P(rel, n));
      return;
    }
    field('nlink', sa.nlink, sb.nlink);
    if (sa.nlink > 1n) {
      // Names sharing an inode in `a` must share one in `b`, and the other way round.
      const ga = groupsA.get(sa.ino) ?? show;
      const gb = groupsB.get(sb.ino) ?? show;
      groupsA.set(sa.ino, ga);
      groupsB.set(sb.ino, gb);
      field('hard link group', ga, gb);
    }
    if (sa.isSymbolicLink()) field('target', readlinkSync(pa, { encoding: 'buffer' }).toString('hex'), readlinkSync(pb, { encoding: 'buffer' }).toString('hex'));
    else if (sa.isCharacterDevice() || sa.isBlockDevice()) field('rdev', sa.rdev, sb.rdev);
    else if (sa.isFile()) {
      field('size', sa.size, sb.size);
      if (sa.size === sb.size && opts.content !== false) field('sha256', sha(pa), sha(pb));
    }
  };
  visit(Buffer.alloc(0));
  return diffs;
}

export { P as pathOf };
