// Full-image metadata check for `nydus-image check`: walks everything reachable from the
// root through the format-neutral RafsSuper, checks the tree, names, lookups, symlinks,
// xattrs and each file's chunk coverage against its size and blobs, then runs the
// version's own checks (v5 records and i_digest, v6 "."/".." and device slots).
import { BlobFeatures, corrupt, RAFS_MAX_XATTR_NAME, RAFS_MAX_XATTR_VALUE, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './layout/common.js';
import { RafsV5Super } from './reader/v5-super.js';
import { RafsV6Super } from './reader/v6-super.js';
import type { RafsSuper } from './types.js';
import type { BlobInfo, ChunkInfo } from '../storage/types.js';
import { validateV5Records } from './validate-v5.js';
import { validateV6Extras } from './validate-v6.js';
import { walk, type WalkEntry } from './walk.js';

/** What `validateMetadata` found; every count is of reachable metadata. */
export interface MetadataCounts {
  /** Distinct inodes, the root included. */
  inodes: number;
  /** Directory entries, the root excluded (a hard link counts once per name). */
  entries: number;
  dirs: number;
  /** Distinct regular files. */
  files: number;
  symlinks: number;
  /** Distinct device nodes, fifos and sockets. */
  specials: number;
  /** Entries naming an inode already named elsewhere (extra hard links). */
  hardlinks: number;
  /** Extended attributes over distinct inodes. */
  xattrs: number;
  /** Chunk references of distinct regular files. */
  chunks: number;
  /** Distinct chunks (by blob and compressed offset) those references use. */
  distinctChunks: number;
  /** Sum of the sizes of distinct regular files. */
  fileBytes: number;
  blobs: number;
}

/**
 * Checks everything reachable in the image and returns counts, or throws the first
 * RafsFormatError. Async because v5 inode digests may need blake3 (WebAssembly).
 */
export async function validateMetadata(sb: RafsSuper): Promise<MetadataCounts> {
  const counts: MetadataCounts = {
    inodes: 0,
    entries: 0,
    dirs: 0,
    files: 0,
    symlinks: 0,
    specials: 0,
    hardlinks: 0,
    xattrs: 0,
    chunks: 0,
    distinctChunks: 0,
    fileBytes: 0,
    blobs: sb.blobs.length,
  };
  const seen = new Set<number>();
  const chunkKeys = new Map<string, ChunkInfo>();
  const dirState = new Map<number, { count: number; last: Buffer | undefined }>();

  for (const e of walk(sb)) {
    const type = e.attr.mode & S_IFMT;
    if (e.depth > 0) {
      counts.entries++;
      checkInDir(sb, e, dirState);
    }
    if (type === S_IFDIR) {
      dirState.set(e.ino, { count: 0, last: undefined });
      const parent = sb.parentOf(e.ino);
      if (parent !== e.parent) throw corrupt(`failed to check ${show(e)}: parent is ${parent}, expected ${e.parent}`);
    }
    if (seen.has(e.ino)) {
      counts.hardlinks++;
      continue;
    }
    seen.add(e.ino);
    counts.inodes++;
    counts.xattrs += checkXattrs(sb, e);
    if (type === S_IFDIR) counts.dirs++;
    else if (type === S_IFLNK) {
      counts.symlinks++;
      const target = sb.readlink(e.ino);
      if (target.length === 0 || target.length !== e.attr.size) {
        throw corrupt(`failed to check ${show(e)}: symlink target of ${target.length} bytes, size ${e.attr.size}`);
      }
    } else if (type === S_IFREG) {
      counts.files++;
      counts.fileBytes += e.attr.size;
      const chunks = sb.fileChunks(e.ino, 0, e.attr.size);
      checkCoverage(e, chunks, sb.blobs);
      counts.chunks += chunks.length;
      for (const c of chunks) noteChunk(chunkKeys, c, e, sb.blobs);
    } else counts.specials++;
  }
  for (const [ino, st] of dirState) {
    const n = sb.childCount(ino);
    if (n !== st.count) throw corrupt(`failed to check directory ${ino}: child count ${n}, listed ${st.count}`);
  }
  for (const ino of sb.prefetchList()) sb.getAttr(ino);
  counts.distinctChunks = chunkKeys.size;
  if (sb instanceof RafsV5Super) await validateV5Records(sb);
  if (sb instanceof RafsV6Super) validateV6Extras(sb, dirState.keys());
  return counts;
}

function show(e: WalkEntry): string {
  return `${e.path.toString('latin1')} (inode ${e.ino})`;
}

/** Entries of one directory must be strictly sorted (lookups binary-search) and found by lookup. */
function checkInDir(sb: RafsSuper, e: WalkEntry, dirs: Map<number, { count: number; last: Buffer | undefined }>): void {
  const st = dirs.get(e.parent);
  if (!st) throw corrupt(`failed to check ${show(e)}: parent ${e.parent} was not walked`);
  if (st.last && Buffer.compare(st.last, e.name) >= 0) throw corrupt(`failed to check ${show(e)}: entries are not sorted`);
  st.last = e.name;
  st.count++;
  const found = sb.lookup(e.parent, e.name);
  if (found !== e.ino) throw corrupt(`failed to check ${show(e)}: lookup finds ${found}`);
}

function checkXattrs(sb: RafsSuper, e: WalkEntry): number {
  const names = sb.listXattrs(e.ino);
  for (const name of names) {
    const value = sb.getXattr(e.ino, name);
    if (name.length === 0 || name.length > RAFS_MAX_XATTR_NAME || value === undefined || value.length > RAFS_MAX_XATTR_VALUE) {
      throw corrupt(`failed to check ${show(e)}: bad xattr ${JSON.stringify(name.toString('latin1'))}`);
    }
  }
  return names.length;
}

/** Chunks must be in file order, not overlap, lie inside the file and inside their blob. */
function checkCoverage(e: WalkEntry, chunks: readonly ChunkInfo[], blobs: readonly BlobInfo[]): void {
  let pos = 0;
  for (const c of chunks) {
    if (c.fileOffset < pos || c.fileOffset + c.uncompressedSize > e.attr.size) {
      throw corrupt(`failed to check ${show(e)}: chunk at ${c.fileOffset} (+${c.uncompressedSize}) overlaps or overruns`);
    }
    pos = c.fileOffset + c.uncompressedSize;
    const b = blobs[c.blobIndex];
    if (b.compressedSize > 0 && c.compressedOffset + c.compressedSize > b.compressedSize) {
      throw corrupt(`failed to check ${show(e)}: chunk ${c.index} ends past blob ${b.blobId}'s ${b.compressedSize} bytes`);
    }
    if (b.uncompressedSize > 0 && c.uncompressedOffset + c.uncompressedSize > b.uncompressedSize) {
      throw corrupt(`failed to check ${show(e)}: chunk ${c.index} ends past blob ${b.blobId}'s uncompressed size`);
    }
    if (b.chunkCount > 0 && c.index >= b.chunkCount) {
      throw corrupt(`failed to check ${show(e)}: chunk index ${c.index} of ${b.chunkCount} in blob ${b.blobId}`);
    }
  }
}

/**
 * Two references to one stored chunk must agree on everything but the file offset. Zran
 * chunks (targz-ref) are keyed by their uncompressed offset: their gzip offsets are
 * approximate and two small neighbours may share one.
 */
function noteChunk(keys: Map<string, ChunkInfo>, c: ChunkInfo, e: WalkEntry, blobs: readonly BlobInfo[]): void {
  const zran = ((blobs[c.blobIndex]?.features ?? 0) & BlobFeatures.ZRAN) !== 0;
  const key = `${c.blobIndex}:${zran ? `u${c.uncompressedOffset}` : c.compressedOffset}`;
  const prev = keys.get(key);
  if (!prev) {
    keys.set(key, c);
    return;
  }
  if (
    !prev.digest.equals(c.digest) ||
    prev.compressedSize !== c.compressedSize ||
    prev.uncompressedSize !== c.uncompressedSize ||
    prev.uncompressedOffset !== c.uncompressedOffset
  ) {
    throw corrupt(`failed to check ${show(e)}: chunk at blob ${c.blobIndex} offset ${c.compressedOffset} is described two ways`);
  }
}
