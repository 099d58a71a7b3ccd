// Locating and checking one RAFS v6 (EROFS) inode: where it is (meta_blkaddr and nid),
// its format and layout, where its inline xattrs, data blocks and chunk indexes lie.
// Every range is checked against the bootstrap before use, so a corrupt inode is a
// RafsFormatError and never a read beyond the buffer or a huge allocation.
import { RafsFormatError } from '../../errors.js';
import {
  corrupt,
  isValidFileType,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from '../layout/common.js';
import type { Xattr } from '../layout/v5.js';
import {
  decodeV6Inode,
  decodeV6XattrEntry,
  decodeV6XattrIbodyHeader,
  EROFS_BLOCK_SIZE,
  EROFS_INODE_SLOT_SIZE,
  ErofsLayout,
  inodeLayout,
  isExtendedInode,
  V6_CHUNK_INDEX_SIZE,
  V6_INODE_COMPACT_SIZE,
  V6_INODE_EXTENDED_SIZE,
  V6_XATTR_ENTRY_SIZE,
  V6_XATTR_IBODY_HEADER_SIZE,
  V6_XATTR_PREFIXES,
  v6XattrAreaSize,
  type V6Inode,
} from '../layout/v6.js';

/** A decoded inode with the offsets derived from it. */
export interface V6Node {
  nid: number;
  offset: number;
  inode: V6Inode;
  layout: number;
  /** Bytes of the on-disk inode (32 or 64). */
  inodeSize: number;
  xattrSize: number;
  /** Number of 4 KiB data blocks (directories and symlinks). */
  blocks: number;
}

function unsupported(message: string): RafsFormatError {
  return new RafsFormatError('ERR_RAFS_UNSUPPORTED', message);
}

/**
 * Decodes the inode `nid` and checks what every use relies on: it lies inside the file,
 * its format and file type are known, its xattrs fit, and its data or chunk indexes are
 * inside the file. `undefined` when the nid points outside the file or at an unused slot.
 */
export function loadV6Node(buf: Buffer, metaBlkaddr: number, nid: number, chunkSize: number): V6Node | undefined {
  const offset = metaBlkaddr * EROFS_BLOCK_SIZE + nid * EROFS_INODE_SLOT_SIZE;
  if (offset + V6_INODE_COMPACT_SIZE > buf.length) return undefined;
  const where = `v6 inode ${nid} at offset ${offset}`;
  const format = buf.readUInt16LE(offset);
  const inodeSize = isExtendedInode(format) ? V6_INODE_EXTENDED_SIZE : V6_INODE_COMPACT_SIZE;
  if (offset + inodeSize > buf.length) throw corrupt(`failed to decode ${where}: beyond the bootstrap`);
  if (format >> 4 !== 0) throw unsupported(`failed to decode ${where}: format 0x${format.toString(16)} has unknown bits`);
  const layout = inodeLayout(format);
  if (layout === ErofsLayout.COMPRESSED_FULL || layout === ErofsLayout.COMPRESSED_COMPACT) {
    throw unsupported(`failed to decode ${where}: compressed EROFS inodes are not RAFS`);
  }
  if (layout > ErofsLayout.CHUNK_BASED) throw corrupt(`failed to decode ${where}: data layout ${layout}`);
  const inode = decodeV6Inode(buf, offset);
  // An all-zero slot (mode 0) is unused metadata space, not an inode.
  if (inode.mode === 0 && format === 0) return undefined;
  if (!isValidFileType(inode.mode) || inode.nlink === 0) {
    throw corrupt(`failed to decode ${where}: mode 0${inode.mode.toString(8)} nlink ${inode.nlink}`);
  }
  const xattrSize = v6XattrAreaSize(inode.xattrIcount);
  const tail = offset + inodeSize + xattrSize;
  if (tail > buf.length) throw corrupt(`failed to decode ${where}: xattrs beyond the bootstrap`);
  const type = inode.mode & S_IFMT;
  let blocks = 0;
  if (type === S_IFREG) {
    if (layout === ErofsLayout.CHUNK_BASED) {
      const end = alignChunkIndexes(tail) + Math.ceil(inode.size / chunkSize) * V6_CHUNK_INDEX_SIZE;
      if (end > buf.length) throw corrupt(`failed to decode ${where}: chunk indexes for ${inode.size} bytes overrun`);
    } else if (inode.size !== 0) {
      throw unsupported(`failed to decode ${where}: file data inside the bootstrap is not supported`);
    }
  } else if (type === S_IFDIR || type === S_IFLNK) {
    if (layout === ErofsLayout.CHUNK_BASED) throw corrupt(`failed to decode ${where}: chunk-based ${type === S_IFDIR ? 'directory' : 'symlink'}`);
    blocks = Math.ceil(inode.size / EROFS_BLOCK_SIZE);
    // All but an inline tail must be whole blocks inside the file.
    const full = layout === ErofsLayout.FLAT_INLINE ? Math.max(0, blocks - 1) : blocks;
    if ((inode.u + full) * EROFS_BLOCK_SIZE > buf.length) {
      throw corrupt(`failed to decode ${where}: ${blocks} data blocks from block ${inode.u} overrun`);
    }
  }
  return { nid, offset, inode, layout, inodeSize, xattrSize, blocks };
}

function alignChunkIndexes(pos: number): number {
  return Math.ceil(pos / V6_CHUNK_INDEX_SIZE) * V6_CHUNK_INDEX_SIZE;
}

/** Offset of the first chunk index of a chunk-based inode. */
export function chunkIndexesOffset(n: V6Node): number {
  return alignChunkIndexes(n.offset + n.inodeSize + n.xattrSize);
}

/** `[start, end)` of data block `k` of a directory or symlink (the tail may be inline). */
export function dataBlockRange(buf: Buffer, n: V6Node, k: number): [number, number] {
  const len = Math.min(EROFS_BLOCK_SIZE, n.inode.size - k * EROFS_BLOCK_SIZE);
  let start: number;
  if (n.layout === ErofsLayout.FLAT_INLINE && k === n.blocks - 1) {
    start = n.offset + n.inodeSize + n.xattrSize;
    if ((start % EROFS_BLOCK_SIZE) + len > EROFS_BLOCK_SIZE) {
      throw corrupt(`failed to read v6 inode ${n.nid}: inline tail of ${len} bytes crosses a block boundary`);
    }
  } else {
    start = (n.inode.u + k) * EROFS_BLOCK_SIZE;
  }
  if (start + len > buf.length) throw corrupt(`failed to read v6 inode ${n.nid}: data block ${k} beyond the bootstrap`);
  return [start, start + len];
}

/** The whole data of a directory or symlink (a view when it is one range). */
export function readInlineData(buf: Buffer, n: V6Node): Buffer {
  if (n.blocks === 1) {
    const [s, e] = dataBlockRange(buf, n, 0);
    return buf.subarray(s, e);
  }
  const parts: Buffer[] = [];
  for (let k = 0; k < n.blocks; k++) {
    const [s, e] = dataBlockRange(buf, n, k);
    parts.push(buf.subarray(s, e));
  }
  return Buffer.concat(parts);
}

/** The inline xattrs of an inode, full names restored from their prefix index. */
export function readV6Xattrs(buf: Buffer, n: V6Node): Xattr[] {
  if (n.xattrSize === 0) return [];
  const where = `xattrs of v6 inode ${n.nid}`;
  const start = n.offset + n.inodeSize;
  const end = start + n.xattrSize;
  const h = decodeV6XattrIbodyHeader(buf, start);
  if (h.sharedCount !== 0) throw unsupported(`failed to read ${where}: shared xattrs are not supported`);
  const out: Xattr[] = [];
  let pos = start + V6_XATTR_IBODY_HEADER_SIZE;
  while (pos < end) {
    if (end - pos < V6_XATTR_ENTRY_SIZE) throw corrupt(`failed to read ${where}: truncated entry at offset ${pos}`);
    const e = decodeV6XattrEntry(buf, pos);
    const size = Math.ceil((V6_XATTR_ENTRY_SIZE + e.nameLen + e.valueSize) / 4) * 4;
    if (pos + size > end) throw corrupt(`failed to read ${where}: entry at offset ${pos} overruns the xattr area`);
    const prefix = V6_XATTR_PREFIXES[e.nameIndex];
    if (prefix === undefined) throw unsupported(`failed to read ${where}: name index ${e.nameIndex}`);
    const nameStart = pos + V6_XATTR_ENTRY_SIZE;
    out.push({
      name: Buffer.concat([Buffer.from(prefix, 'latin1'), buf.subarray(nameStart, nameStart + e.nameLen)]),
      value: Buffer.from(buf.subarray(nameStart + e.nameLen, nameStart + e.nameLen + e.valueSize)),
    });
    pos += size;
  }
  return out;
}
