// RafsSuper over a RAFS v5 bootstrap held in memory. Opening decodes the superblock and
// the blob tables only; inode records are located through the inode table and decoded
// (and bounds-checked) each time they are used. Inode numbers are `i_ino`: the record
// of ino N is `table[N - 1]`; hard-link copies carry the first link's `i_ino`.
import {
  align8,
  compressorFromFlags,
  corrupt,
  digesterFromFlags,
  isValidFileType,
  RAFS_MAX_NAME,
  RafsSuperFlags,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  V5InodeFlags,
} from '../layout/common.js';
import {
  decodeV5ChunkInfo,
  decodeV5Inode,
  decodeV5PrefetchTable,
  decodeV5Superblock,
  decodeV5XattrTable,
  V5_CHUNK_INFO_SIZE,
  V5_INODE_SIZE,
  V5_MAX_INODE_TABLE_ENTRY,
  V5_ROOT_INO,
  V5_SUPERBLOCK_SIZE,
  validateV5Superblock,
  type V5ChunkInfo,
  type V5Inode,
  type V5Superblock,
  type Xattr,
} from '../layout/v5.js';
import type { DirEntry, InodeAttr, RafsSuper } from '../types.js';
import type { BlobInfo, ChunkInfo, Compressor, Digester } from '../../storage/types.js';
import { readV5Blobs } from './blobs.js';
import {
  byCompressedOffset,
  checkBlobIndex,
  expectedChunkSize,
  fileRangeEnd,
  isInoLike,
  noEntry,
  notDir,
  notSymlink,
  superMetaJson,
  toChunkInfo,
  type SuperJsonOptions,
} from './shared.js';

/** One decoded inode record and where its parts lie in the bootstrap. */
export interface V5Record {
  /** Inode-table index (1-based); equals `inode.ino` except for hard-link copies. */
  index: number;
  offset: number;
  inode: V5Inode;
  name: Buffer;
  /** Offset of the xattr table, or -1. */
  xattrOffset: number;
  /** Offset of the first chunk record (regular files). */
  chunksOffset: number;
  /** Offset just past the record. */
  end: number;
}

export class RafsV5Super implements RafsSuper {
  readonly version = 5 as const;
  readonly rootIno = V5_ROOT_INO;
  readonly chunkSize: number;
  readonly compressor: Compressor;
  readonly digester: Digester;
  readonly flags: number;
  readonly explicitUidGid: boolean;
  readonly blobs: readonly BlobInfo[];
  readonly bootstrapSize: number;
  readonly superblock: Readonly<V5Superblock>;
  /** Number of inode-table entries (records, hard-link copies included). */
  readonly indexCount: number;
  private readonly buf: Buffer;
  private distinctInodes: number | undefined;
  private blobChunkLists: ChunkInfo[][] | undefined;

  constructor(buf: Buffer) {
    const sb = decodeV5Superblock(buf, 0);
    validateV5Superblock(sb, buf.length);
    this.buf = buf;
    this.superblock = sb;
    this.bootstrapSize = buf.length;
    this.chunkSize = sb.blockSize;
    this.flags = sb.flags;
    this.compressor = compressorFromFlags(sb.flags, false);
    this.digester = digesterFromFlags(sb.flags, false);
    this.explicitUidGid = (sb.flags & RafsSuperFlags.EXPLICIT_UID_GID) !== 0;
    this.blobs = readV5Blobs(buf, sb, this.compressor, this.digester);
    this.indexCount = sb.inodeTableEntries;
    const root = this.recordAt(V5_ROOT_INO);
    if ((root.inode.mode & S_IFMT) !== S_IFDIR || root.inode.ino !== V5_ROOT_INO) {
      throw corrupt(`failed to open v5 bootstrap: index 1 (ino ${root.inode.ino}) is not the root directory`);
    }
  }

  /** Distinct inodes: records whose `i_ino` is their own index. Scans the table once. */
  get inodeCount(): number {
    if (this.distinctInodes === undefined) {
      let n = 0;
      for (let i = 1; i <= this.indexCount; i++) if (this.recordAt(i).inode.ino === i) n++;
      this.distinctInodes = n;
    }
    return this.distinctInodes;
  }

  /** Byte offset of the record at inode-table index `index`, with its fixed part in the file. */
  private recordOffset(index: number): number {
    if (!Number.isSafeInteger(index) || index < 1 || index > this.indexCount) throw noEntry(index);
    const entry = this.buf.readUInt32LE(this.superblock.inodeTableOffset + (index - 1) * 4);
    if (entry <= V5_SUPERBLOCK_SIZE >> 3 || entry >= V5_MAX_INODE_TABLE_ENTRY || entry * 8 + V5_INODE_SIZE > this.buf.length) {
      throw corrupt(`failed to locate v5 inode index ${index}: table entry 0x${entry.toString(16)} is invalid`);
    }
    return entry * 8;
  }

  /**
   * Compares `name` with the name of the record at `index` (negative: the record's name
   * sorts first) without decoding the record: lookups probe many records.
   */
  private compareName(index: number, name: Buffer): number {
    const offset = this.recordOffset(index);
    const size = this.buf.readUInt16LE(offset + 100);
    const start = offset + V5_INODE_SIZE;
    if (size === 0 || size > RAFS_MAX_NAME || start + size > this.buf.length) {
      throw corrupt(`failed to decode v5 inode index ${index} at offset ${offset}: name size ${size}`);
    }
    return -name.compare(this.buf, start, start + size);
  }

  /** Decodes the record at inode-table index `index`, checking that it fits the file. */
  recordAt(index: number): V5Record {
    const buf = this.buf;
    const offset = this.recordOffset(index);
    const where = `v5 inode index ${index} at offset ${offset}`;
    const inode = decodeV5Inode(buf, offset);
    if (inode.ino < 1 || inode.ino > this.indexCount || inode.nlink === 0 || !isValidFileType(inode.mode)) {
      throw corrupt(`failed to decode ${where}: ino ${inode.ino}, nlink ${inode.nlink}, mode 0${inode.mode.toString(8)}`);
    }
    if (inode.nameSize === 0 || inode.nameSize > RAFS_MAX_NAME) throw corrupt(`failed to decode ${where}: name size ${inode.nameSize}`);
    const type = inode.mode & S_IFMT;
    if (type === S_IFLNK && inode.symlinkSize === 0) throw corrupt(`failed to decode ${where}: empty symlink`);
    const nameOffset = offset + V5_INODE_SIZE;
    let pos = nameOffset + align8(inode.nameSize) + align8(inode.symlinkSize);
    if (pos > buf.length) throw corrupt(`failed to decode ${where}: name/symlink beyond the bootstrap`);
    let xattrOffset = -1;
    if (inode.flags & V5InodeFlags.XATTR) {
      xattrOffset = pos;
      if (pos + 8 > buf.length) throw corrupt(`failed to decode ${where}: xattr table beyond the bootstrap`);
      const size = buf.readUInt32LE(pos) + buf.readUInt32LE(pos + 4) * 2 ** 32;
      pos += 8 + align8(size);
    }
    const chunksOffset = pos;
    if (type === S_IFREG) {
      if (!(inode.flags & V5InodeFlags.HAS_HOLE) && inode.childCount !== Math.ceil(inode.size / this.chunkSize)) {
        throw corrupt(`failed to decode ${where}: ${inode.childCount} chunks for ${inode.size} bytes`);
      }
      pos += inode.childCount * V5_CHUNK_INFO_SIZE;
    } else if (type === S_IFDIR && inode.childCount > 0) {
      const last = inode.childIndex + inode.childCount - 1;
      if (inode.childIndex <= index || last > this.indexCount) {
        throw corrupt(`failed to decode ${where}: child range [${inode.childIndex}, ${last}] is invalid`);
      }
    }
    if (pos > buf.length) throw corrupt(`failed to decode ${where}: record of ${pos - offset} bytes overruns`);
    return { index, offset, inode, name: buf.subarray(nameOffset, nameOffset + inode.nameSize), xattrOffset, chunksOffset, end: pos };
  }

  /** The record an inode number stands for (its first link), or ERR_RAFS_NO_ENTRY. */
  record(ino: number): V5Record {
    if (!isInoLike(ino)) throw noEntry(ino);
    const rec = this.recordAt(ino);
    if (rec.inode.ino !== ino) throw noEntry(ino);
    return rec;
  }

  private dirRecord(ino: number): V5Record {
    const rec = this.record(ino);
    if ((rec.inode.mode & S_IFMT) !== S_IFDIR) throw notDir(ino);
    return rec;
  }

  getAttr(ino: number): InodeAttr {
    return this.attrOf(this.record(ino).inode);
  }

  /** The attributes a record carries (for hard-link copies: their own fields). */
  attrOf(i: V5Inode): InodeAttr {
    return {
      ino: i.ino,
      mode: i.mode,
      nlink: i.nlink,
      uid: i.uid,
      gid: i.gid,
      size: i.size,
      blocks: i.blocks,
      rdev: i.rdev,
      mtime: i.mtime,
      mtimeNsec: i.mtimeNsec,
    };
  }

  lookup(parent: number, name: Buffer): number | undefined {
    const dir = this.dirRecord(parent).inode;
    let lo = 0;
    let hi = dir.childCount - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const cmp = this.compareName(dir.childIndex + mid, name);
      if (cmp === 0) return this.recordAt(dir.childIndex + mid).inode.ino;
      if (cmp < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  parentOf(dir: number): number {
    const rec = this.dirRecord(dir);
    if (dir === V5_ROOT_INO) return V5_ROOT_INO;
    if (rec.inode.parent === 0) throw corrupt(`failed to find the parent of directory ${dir}: parent is 0`);
    return rec.inode.parent;
  }

  childCount(dir: number): number {
    return this.dirRecord(dir).inode.childCount;
  }

  /**
   * Entries from position `start`; names are views into the bootstrap (do not modify).
   * A bad `dir` throws here; a corrupt child throws when iteration reaches it.
   */
  readdir(dir: number, start = 0): Iterable<DirEntry> {
    return this.children(this.dirRecord(dir).inode, start);
  }

  private *children(d: V5Inode, start: number): Generator<DirEntry> {
    for (let k = Math.max(0, Math.floor(start)); k < d.childCount; k++) {
      const child = this.recordAt(d.childIndex + k);
      yield { name: child.name, ino: child.inode.ino, type: child.inode.mode & S_IFMT };
    }
  }

  readlink(ino: number): Buffer {
    return this.symlinkOf(this.record(ino));
  }

  /** The target of a symlink record (a view into the bootstrap). */
  symlinkOf(rec: V5Record): Buffer {
    if ((rec.inode.mode & S_IFMT) !== S_IFLNK) throw notSymlink(rec.inode.ino);
    const start = rec.offset + V5_INODE_SIZE + align8(rec.inode.nameSize);
    return this.buf.subarray(start, start + rec.inode.symlinkSize);
  }

  /** The xattrs of a record, decoded from its table. */
  xattrsOf(rec: V5Record): Xattr[] {
    if (rec.xattrOffset < 0) return [];
    return decodeV5XattrTable(this.buf, rec.xattrOffset, rec.chunksOffset).xattrs;
  }

  listXattrs(ino: number): Buffer[] {
    return this.xattrsOf(this.record(ino)).map((x) => x.name);
  }

  getXattr(ino: number, name: Buffer): Buffer | undefined {
    return this.xattrsOf(this.record(ino)).find((x) => x.name.equals(name))?.value;
  }

  /** Chunk record `k` of a regular-file record. */
  chunkRecord(rec: V5Record, k: number): V5ChunkInfo {
    return decodeV5ChunkInfo(this.buf, rec.chunksOffset + k * V5_CHUNK_INFO_SIZE);
  }

  fileChunks(ino: number, offset: number, size: number): ChunkInfo[] {
    return this.chunksOf(this.record(ino), offset, size);
  }

  /** The checked chunks of a regular-file record overlapping `[offset, offset + size)`. */
  chunksOf(rec: V5Record, offset: number, size: number): ChunkInfo[] {
    const i = rec.inode;
    const end = fileRangeEnd(i.ino, i.mode, i.size, offset, size);
    if (end < 0) return [];
    const where = (k: number): string => `chunk ${k} of inode ${i.ino} (index ${rec.index})`;
    const out: ChunkInfo[] = [];
    if (i.flags & V5InodeFlags.HAS_HOLE) {
      // Stargz images may skip holes, so each record says where it belongs.
      let prevEnd = 0;
      for (let k = 0; k < i.childCount; k++) {
        const c = this.chunkRecord(rec, k);
        const info = toChunkInfo(c, c.fileOffset, this.blobs, this.chunkSize, where(k));
        if (c.fileOffset < prevEnd || c.fileOffset + c.uncompressedSize > i.size) {
          throw corrupt(`failed to map ${where(k)}: file offset ${c.fileOffset} out of order or beyond the size`);
        }
        prevEnd = c.fileOffset + c.uncompressedSize;
        if (c.fileOffset < end && prevEnd > offset) out.push(info);
      }
      return out;
    }
    const last = Math.min(Math.floor((end - 1) / this.chunkSize), i.childCount - 1);
    for (let k = Math.floor(offset / this.chunkSize); k <= last; k++) {
      const c = this.chunkRecord(rec, k);
      const fileOffset = k * this.chunkSize;
      if (c.fileOffset !== fileOffset || c.uncompressedSize !== expectedChunkSize(k, this.chunkSize, i.size)) {
        throw corrupt(`failed to map ${where(k)}: file offset ${c.fileOffset} size ${c.uncompressedSize} do not fit the file`);
      }
      out.push(toChunkInfo(c, fileOffset, this.blobs, this.chunkSize, where(k)));
    }
    return out;
  }

  /**
   * Distinct chunks of a blob, from one scan of every chunk record (built on first use).
   * Chunks are keyed by compressed offset, which also dedups old images whose `index`
   * fields are all 0. `fileOffset` is 0: a shared chunk has no single file offset.
   */
  blobChunks(blobIndex: number): readonly ChunkInfo[] {
    checkBlobIndex(blobIndex, this.blobs);
    if (!this.blobChunkLists) {
      const maps = this.blobs.map(() => new Map<number, ChunkInfo>());
      for (let index = 1; index <= this.indexCount; index++) {
        const rec = this.recordAt(index);
        if ((rec.inode.mode & S_IFMT) !== S_IFREG || rec.inode.ino !== index) continue;
        for (let k = 0; k < rec.inode.childCount; k++) {
          const c = this.chunkRecord(rec, k);
          const info = toChunkInfo(c, 0, this.blobs, this.chunkSize, `chunk ${k} of index ${index}`);
          const seen = maps[c.blobIndex];
          if (!seen.has(c.compressedOffset)) seen.set(c.compressedOffset, info);
        }
      }
      this.blobChunkLists = maps.map((m) => [...m.values()].sort(byCompressedOffset));
    }
    return this.blobChunkLists[blobIndex];
  }

  prefetchList(): readonly number[] {
    const sb = this.superblock;
    const out: number[] = [];
    for (const ino of decodeV5PrefetchTable(this.buf, sb.prefetchTableOffset, sb.prefetchTableEntries)) {
      // Zero pads the table to 8 bytes; upstream stops there.
      if (ino === 0) break;
      out.push(ino);
    }
    return out;
  }

  superblockJson(opts?: SuperJsonOptions): Record<string, unknown> {
    const sb = this.superblock;
    return superMetaJson(
      {
        magic: sb.magic,
        version: sb.fsVersion,
        sbSize: sb.sbSize,
        rootInode: V5_ROOT_INO,
        chunkSize: sb.blockSize,
        inodesCount: sb.inodesCount,
        flags: sb.flags,
        inodeTableEntries: sb.inodeTableEntries,
        inodeTableOffset: sb.inodeTableOffset,
        blobTableSize: sb.blobTableSize,
        blobTableOffset: sb.blobTableOffset,
        extendedBlobTableOffset: sb.extendedBlobTableOffset,
        extendedBlobTableEntries: sb.extendedBlobTableEntries,
        prefetchTableOffset: sb.prefetchTableOffset,
        prefetchTableEntries: sb.prefetchTableEntries,
        metaBlkaddr: 0,
        rootNid: 0,
        chunkTableOffset: 0,
        chunkTableSize: 0,
      },
      opts,
    );
  }
}
