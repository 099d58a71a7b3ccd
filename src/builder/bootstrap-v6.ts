// Writes a RAFS v6 bootstrap, which is an EROFS image the Linux kernel mounts
// (docs/format.md §4, §5): superblocks, one device slot per blob, the blob table, the
// prefetch table, extended inodes placed by v6-layout, directory blocks, inline tails
// and xattrs, chunk indexes, and nydus' private chunk table. Every inode is extended so
// that mtimes (with nanoseconds), 32-bit ids and device numbers survive (decision 0003).
import { BuildError } from '../errors.js';
import { compressorToId, digesterToId, RafsSuperFlags, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from '../rafs/layout/common.js';
import { encodeV5ChunkInfo } from '../rafs/layout/v5.js';
import {
  encodeV6BlobEntry,
  encodeV6ChunkIndex,
  encodeV6DirBlock,
  encodeV6Device,
  encodeV6InodeExtended,
  encodeV6Superblock,
  encodeV6SuperblockExt,
  EROFS_BLKSZBITS,
  EROFS_BLOCK_SIZE,
  EROFS_INODE_SLOT_SIZE,
  EROFS_SUPER_MAGIC,
  EROFS_SUPER_OFFSET,
  ErofsChunkFormat,
  ErofsFeatureCompat,
  ErofsFeatureIncompat,
  ErofsLayout,
  fileTypeFromMode,
  V6_BLOB_ENTRY_SIZE,
  V6_BLOB_ID_LEN,
  V6_CHUNK_INDEX_SIZE,
  V6_DEVICE_SLOT_SIZE,
  V6_DEVTABLE_OFFSET,
  V6_DIRENT_SIZE,
  V6_EXT_SUPER_OFFSET,
  V6_NULL_BLKADDR,
} from '../rafs/layout/v6.js';
import type { ChunkInfo } from '../storage/types.js';
import { allInlinedDigests, chunkRecord, superFlags, typeOf, type ImageSpec } from './image-spec.js';
import { countLinks, indexOrder, sortedChildren, type BuildInode } from './tree.js';
import { layoutV6, type Placement } from './v6-layout.js';
import { encodeV6XattrArea } from './v6-xattr.js';

const BLOCK = EROFS_BLOCK_SIZE;
/** Device slots are laid out for a flat (single device) view at this alignment (HEAD). */
const MAPPED_ALIGN = 512 * 1024;
const MAX_BLOBS = 254;

function align4k(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** Encodes the whole v6 bootstrap. */
export function writeV6Bootstrap(spec: ImageSpec): Buffer {
  if (spec.blobs.length > MAX_BLOBS) throw new BuildError('ERR_BUILD_LIMIT', `failed to write v6 bootstrap: ${spec.blobs.length} blobs, at most ${MAX_BLOBS}`);
  for (const b of spec.blobs) {
    if (b.blobId.length !== V6_BLOB_ID_LEN) throw new BuildError('ERR_BUILD_LIMIT', `failed to write v6 bootstrap: blob id ${JSON.stringify(b.blobId)} is not ${V6_BLOB_ID_LEN} characters`);
  }
  const numbering = indexOrder(spec.root);
  const { placements, end } = layoutV6(numbering, spec.chunkSize);
  const nid = (i: BuildInode): number => (placements.get(i) as Placement).offset / EROFS_INODE_SLOT_SIZE;

  const blobTableOffset = align4k(V6_DEVTABLE_OFFSET + spec.blobs.length * V6_DEVICE_SLOT_SIZE);
  const blobTableSize = spec.blobs.length * V6_BLOB_ENTRY_SIZE;
  // Upstream writes no prefetch table for an image without blobs.
  const prefetch = spec.blobs.length > 0 ? spec.prefetch : [];
  const prefetchOffset = blobTableOffset + blobTableSize;
  // Inodes were placed from 4096 on (the root first, nid 128); the meta area starts one
  // block before them, after the tables, so that no inode has nid 0.
  const metaAddr = spec.blobs.length > 0 ? align4k(prefetchOffset + prefetch.length * 4) : 0;
  const shift = metaAddr;
  const chunkTableOffset = align4k(end + shift);

  const links = countLinks(numbering.entries);

  // Chunk table: one entry per stored chunk (blob, index), sorted by (digest, device id).
  const chunkKeys = new Map<number, ChunkInfo>();
  const meta = Buffer.alloc(chunkTableOffset - 0);
  let hasXattr = false;
  for (const [inode, p] of placements) {
    const pos = p.offset + shift;
    const t = typeOf(inode);
    const { area, icount } = encodeV6XattrArea(inode.xattrs);
    if (icount > 0) hasXattr = true;
    let size = inode.size;
    let u = 0;
    if (t === S_IFDIR) {
      size = p.dirSize;
      u = (p.dataOffset + shift) / BLOCK;
      const self = nid(inode);
      const parent = links.parentDir.get(inode);
      writeData(meta, p, shift, dirBlocks(inode, self, parent ? nid(parent) : self, nid));
    } else if (t === S_IFLNK) {
      u = (p.dataOffset + shift) / BLOCK;
      writeData(meta, p, shift, [inode.symlink as Buffer]);
    } else if (t === S_IFREG) {
      u = writeChunkIndexes(meta, pos + p.inodeSize, inode, spec.chunkSize, chunkKeys);
    } else if (t === S_IFCHR || t === S_IFBLK) {
      u = inode.rdev;
    }
    encodeV6InodeExtended({
      format: 1 | (p.layout << 1),
      xattrIcount: icount,
      mode: inode.mode,
      nlink: links.nlink(inode),
      size,
      u,
      ino: links.firstIndex.get(inode) as number,
      uid: inode.uid,
      gid: inode.gid,
      mtime: inode.mtime,
      mtimeNsec: inode.mtimeNsec,
    }).copy(meta, pos);
    area.copy(meta, pos + 64);
  }

  const chunks = [...chunkKeys.values()].sort((a, b) => Buffer.compare(a.digest, b.digest) || a.blobIndex - b.blobIndex || a.index - b.index);
  const chunkTable = Buffer.concat(chunks.map((c) => encodeV5ChunkInfo(chunkRecord(c))));
  const total = align4k(chunkTableOffset + chunkTable.length);
  const out = Buffer.alloc(total);
  meta.copy(out, 0);
  chunkTable.copy(out, chunkTableOffset);

  // Device slots, laid out one after another for a flat view of bootstrap + blobs.
  let pos = total;
  let blocks = 0;
  spec.blobs.forEach((b, k) => {
    const cnt = Math.ceil(b.uncompressedSize / BLOCK);
    const mapped = Math.ceil(pos / MAPPED_ALIGN) * MAPPED_ALIGN / BLOCK;
    pos = (mapped + cnt) * BLOCK;
    blocks += cnt;
    encodeV6Device({ blobId: b.blobId, blocks: cnt, mappedBlkaddr: mapped }).copy(out, V6_DEVTABLE_OFFSET + k * V6_DEVICE_SLOT_SIZE);
    encodeV6BlobEntry({
      blobId: b.blobId,
      blobIndex: k,
      chunkSize: spec.chunkSize,
      chunkCount: b.chunkCount,
      compressionAlgo: compressorToId(b.compressor),
      digestAlgo: digesterToId(b.digester),
      features: b.features,
      compressedSize: b.compressedSize,
      uncompressedSize: b.uncompressedSize,
      blobTocSize: b.blobTocSize,
      ciCompressor: compressorToId(b.ciCompressor),
      ciOffset: b.ciOffset,
      ciCompressedSize: b.ciCompressedSize,
      ciUncompressedSize: b.ciUncompressedSize,
      blobTocDigest: b.blobTocDigest,
      blobMetaDigest: b.blobMetaDigest,
      blobMetaSize: b.blobMetaSize,
      cipherIv: Buffer.alloc(8),
      cipherAlgo: 0,
    }).copy(out, blobTableOffset + k * V6_BLOB_ENTRY_SIZE);
  });
  prefetch.forEach((i, k) => out.writeUInt32LE(nid(i), prefetchOffset + k * 4));

  let flags = superFlags(spec, hasXattr);
  if (allInlinedDigests(spec.blobs)) flags |= RafsSuperFlags.INLINED_CHUNK_DIGEST;
  encodeV6Superblock({
    magic: EROFS_SUPER_MAGIC,
    checksum: 0,
    featureCompat: ErofsFeatureCompat.RAFS_V6,
    blkszbits: EROFS_BLKSZBITS,
    extslots: 0,
    rootNid: nid(spec.root),
    inos: placements.size,
    buildTime: 0,
    buildTimeNsec: 0,
    blocks,
    metaBlkaddr: metaAddr / BLOCK,
    xattrBlkaddr: 0,
    uuid: Buffer.alloc(16),
    volumeName: Buffer.alloc(16),
    featureIncompat: ErofsFeatureIncompat.CHUNKED_FILE | ErofsFeatureIncompat.DEVICE_TABLE,
    u1: 0,
    extraDevices: spec.blobs.length,
    devtSlotoff: V6_DEVTABLE_OFFSET / 128,
  }).copy(out, EROFS_SUPER_OFFSET);
  encodeV6SuperblockExt({
    flags,
    blobTableOffset,
    blobTableSize,
    chunkSize: spec.chunkSize,
    chunkTableOffset,
    chunkTableSize: chunkTable.length,
    prefetchTableOffset: prefetch.length > 0 ? prefetchOffset : 0,
    prefetchTableSize: prefetch.length * 4,
  }).copy(out, V6_EXT_SUPER_OFFSET);
  return out;
}

/** A directory's blocks ("." and ".." included, sorted, names never split across blocks). */
function dirBlocks(dir: BuildInode, self: number, parent: number, nid: (i: BuildInode) => number): Buffer[] {
  const list = [
    { name: Buffer.from('.'), nid: self, fileType: fileTypeFromMode(S_IFDIR) },
    { name: Buffer.from('..'), nid: parent, fileType: fileTypeFromMode(S_IFDIR) },
    ...sortedChildren(dir).map((e) => ({ name: e.name, nid: nid(e.inode), fileType: fileTypeFromMode(e.inode.mode) })),
  ].sort((a, b) => Buffer.compare(a.name, b.name));
  const blocks: Buffer[] = [];
  let cur: typeof list = [];
  let used = 0;
  for (const e of list) {
    const len = V6_DIRENT_SIZE + e.name.length;
    if (used + len > BLOCK) {
      blocks.push(encodeV6DirBlock(cur));
      cur = [];
      used = 0;
    }
    cur.push(e);
    used += len;
  }
  blocks.push(encodeV6DirBlock(cur));
  return blocks;
}

/** Writes directory/symlink data: full blocks at the data offset, the tail inline or after them. */
function writeData(meta: Buffer, p: Placement, shift: number, pieces: Buffer[]): void {
  // Directory blocks are whole 4 KiB blocks except the last; a symlink is one piece.
  const data = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces.map((b, i) => (i < pieces.length - 1 ? Buffer.concat([b, Buffer.alloc(BLOCK - b.length)]) : b)));
  const full = data.length - (data.length % BLOCK);
  data.copy(meta, p.dataOffset + shift, 0, full);
  const tailAt = p.layout === ErofsLayout.FLAT_INLINE ? p.offset + shift + p.inodeSize : p.dataOffset + shift + full;
  data.copy(meta, tailAt, full);
}

/** Writes a file's chunk indexes after its inode; returns the chunk format for `i_u`. */
function writeChunkIndexes(meta: Buffer, after: number, inode: BuildInode, chunkSize: number, keys: Map<number, ChunkInfo>): number {
  const count = Math.ceil(inode.size / chunkSize);
  const at = Math.ceil(after / V6_CHUNK_INDEX_SIZE) * V6_CHUNK_INDEX_SIZE;
  const slots = new Array<ChunkInfo | undefined>(count);
  for (const c of inode.chunks ?? []) {
    const k = c.fileOffset / chunkSize;
    if (!Number.isInteger(k) || k >= count || c.uncompressedOffset % BLOCK !== 0) {
      throw new BuildError('ERR_BUILD_SOURCE', `failed to write v6 chunk indexes: chunk at file offset ${c.fileOffset} cannot be mapped`);
    }
    slots[k] = c;
    const key = c.blobIndex * 2 ** 24 + c.index;
    if (!keys.has(key)) keys.set(key, c);
  }
  let contiguous = count > 1;
  for (let k = 0; k < count; k++) {
    const c = slots[k];
    const idx = c ? { deviceId: c.blobIndex + 1, ciIndex: c.index, blkaddr: c.uncompressedOffset / BLOCK } : { deviceId: 0, ciIndex: 0, blkaddr: V6_NULL_BLKADDR };
    encodeV6ChunkIndex(idx).copy(meta, at + k * V6_CHUNK_INDEX_SIZE);
    const prev = slots[k - 1];
    if (k > 0 && (!c || !prev || c.blobIndex !== prev.blobIndex || c.uncompressedOffset !== prev.uncompressedOffset + chunkSize)) contiguous = false;
  }
  // A file stored contiguously is one big chunk to the kernel (upstream's page-cache
  // sharing trick); nydusd keeps indexing with the superblock's chunk size.
  const kernelChunk = contiguous && inode.size > chunkSize ? 2 ** Math.ceil(Math.log2(inode.size)) : chunkSize;
  return (Math.log2(kernelChunk) - EROFS_BLKSZBITS) | ErofsChunkFormat.INDEXES;
}
