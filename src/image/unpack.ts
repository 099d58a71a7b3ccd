// `nydus-image unpack`: writes an image's whole tree as a POSIX (PAX) tar. Modes, owners,
// mtimes with nanoseconds, symlinks, hard links (as links to the first name), device
// nodes, fifos and xattrs are kept, so GNU tar recreates the tree exactly. The archive is
// written beside the target and renamed into place only when complete.
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StorageError } from '../errors.js';
import { corrupt, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../rafs/layout/common.js';
import type { RafsSuper } from '../rafs/types.js';
import { walk, type WalkEntry } from '../rafs/walk.js';
import type { ChunkReader } from '../storage/chunk-reader.js';
import { encodeTarHeader, padding, tarTrailer, type TarEntry, type TarKind } from '../util/tar-header.js';

const DOT = Buffer.from('.');

/** Bytes of file data read and written per step. */
const PIECE = 4 << 20;

export interface UnpackResult {
  entries: number;
  bytes: number;
  /** Paths that tar cannot hold (sockets), skipped as upstream does. */
  skipped: string[];
}

/** Writes the image as a tar at `output`. `reader` is needed when any file has data. */
export async function unpackToTar(sb: RafsSuper, reader: ChunkReader | undefined, output: string): Promise<UnpackResult> {
  const partial = join(dirname(output), `.${basename(output)}.partial-${process.pid}`);
  const fh = await open(partial, 'wx', 0o644);
  try {
    const result = await writeTar(sb, reader, (bufs) => fh.writev(bufs).then(() => undefined));
    await fh.sync();
    await fh.close();
    await rename(partial, output);
    return result;
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(partial).catch(() => undefined);
    throw err;
  }
}

type Sink = (bufs: Buffer[]) => Promise<void>;

async function writeTar(sb: RafsSuper, reader: ChunkReader | undefined, sink: Sink): Promise<UnpackResult> {
  const result: UnpackResult = { entries: 0, bytes: 0, skipped: [] };
  const firstPath = new Map<number, Buffer>();
  let piece: Buffer | undefined;
  for (const e of walk(sb)) {
    const type = e.attr.mode & S_IFMT;
    // The root is "./" so that extracting restores its mode, owner, mtime and xattrs too.
    const path = e.depth === 0 ? DOT : e.path.subarray(1);
    if (type === S_IFSOCK) {
      result.skipped.push(e.path.toString());
      continue;
    }
    const linkTo = type !== S_IFDIR && e.attr.nlink > 1 ? firstPath.get(e.ino) : undefined;
    if (type !== S_IFDIR && e.attr.nlink > 1 && !linkTo) firstPath.set(e.ino, path);
    const entry = tarEntry(sb, e, path, linkTo);
    await sink([encodeTarHeader(entry)]);
    result.entries++;
    if (entry.kind !== 'file' || entry.size === 0) continue;
    if (!reader) {
      throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to unpack ${e.path}: no blob given (use --blob or --blob-dir)`);
    }
    piece ??= Buffer.allocUnsafe(Math.min(PIECE, Math.max(sb.chunkSize, 4096)));
    for (let off = 0; off < entry.size; off += piece.length) {
      const out = piece.subarray(0, Math.min(piece.length, entry.size - off));
      await reader.readRange(sb.fileChunks(e.ino, off, out.length), off, out);
      await sink([out]);
    }
    const pad = padding(entry.size);
    if (pad) await sink([Buffer.alloc(pad)]);
    result.bytes += entry.size;
  }
  await sink([tarTrailer()]);
  return result;
}

function tarEntry(sb: RafsSuper, e: WalkEntry, path: Buffer, linkTo: Buffer | undefined): TarEntry {
  const { attr } = e;
  const type = attr.mode & S_IFMT;
  const base = {
    path,
    mode: attr.mode & 0o7777,
    uid: attr.uid,
    gid: attr.gid,
    size: 0,
    mtime: attr.mtime,
    mtimeNsec: attr.mtimeNsec,
    xattrs: sb.listXattrs(e.ino).map((name) => [name, sb.getXattr(e.ino, name) ?? Buffer.alloc(0)] as const),
  };
  if (linkTo) return { ...base, kind: 'hardlink', linkname: linkTo };
  const kind = KINDS.get(type);
  if (!kind) throw corrupt(`failed to unpack ${e.path}: unknown file type 0o${type.toString(8)}`);
  switch (kind) {
    case 'file':
      return { ...base, kind, size: attr.size };
    case 'symlink':
      return { ...base, kind, linkname: sb.readlink(e.ino) };
    case 'char':
    case 'block':
      return { ...base, kind, devmajor: devMajor(attr.rdev), devminor: devMinor(attr.rdev) };
    default:
      return { ...base, kind };
  }
}

const KINDS = new Map<number, TarKind>([
  [S_IFREG, 'file'],
  [S_IFDIR, 'dir'],
  [S_IFLNK, 'symlink'],
  [S_IFCHR, 'char'],
  [S_IFBLK, 'block'],
  [S_IFIFO, 'fifo'],
]);

/** Major number of a Linux dev_t in the 32-bit "new" encoding images store. */
export function devMajor(rdev: number): number {
  return (rdev >>> 8) & 0xfff;
}

/** Minor number of a Linux dev_t in the 32-bit "new" encoding images store. */
export function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
}
