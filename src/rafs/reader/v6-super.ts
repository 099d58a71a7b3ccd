// RafsSuper over a RAFS v6 bootstrap (an EROFS image) held in memory. Opening decodes
// the superblocks and the blob table; inodes, directories, xattrs and chunk indexes are
// decoded on demand. Inode numbers are nids (`st_ino` under the kernel too). File chunks
// are resolved through the bootstrap's chunk table, indexed on first use.
import { RafsFormatError } from '../../errors.js';
import {
  compressorFromFlags,
  corrupt,
  digesterFromFlags,
  RAFS_MAX_CHUNKS_PER_BLOB,
  RafsSuperFlags,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
} from '../layout/common.js';
import { decodeV5ChunkInfo, V5_CHUNK_INFO_SIZE, type V5ChunkInfo, type Xattr } from '../layout/v5.js';
import {
  decodeV6ChunkIndex,
  decodeV6Device,
  decodeV6Superblock,
  decodeV6SuperblockExt,
  ErofsChunkFormat,
  V6_CHUNK_INDEX_SIZE,
  V6_DEVICE_SLOT_SIZE,
  V6_DEVTABLE_OFFSET,
  V6_NULL_BLKADDR,
  EROFS_BLOCK_SIZE,
  validateV6Superblock,
  validateV6SuperblockExt,
  type V6Device,
  type V6Superblock,
  type V6SuperblockExt,
} from '../layout/v6.js';
import type { DirEntry, InodeAttr, RafsSuper } from '../types.js';
import type { BlobInfo, ChunkInfo, Compressor, Digester } from '../../storage/types.js';
import { readV6Blobs } from './blobs.js';
import { WeightedLru } from '../../util/weighted-lru.js';
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
import { direntModeType, lookupV6Dir, parseV6Dir, type ParsedDir } from './v6-dir.js';
import { chunkIndexesOffset, loadV6Node, readInlineData, readV6Xattrs, type V6Node } from './v6-inode.js';

/** Parsed directories kept, by total entries (names stay views into the bootstrap). */
const DIR_CACHE_ENTRIES = 1 << 16;
const dirEntries = (d: ParsedDir): number => d.entries.length + 1;

export class RafsV6Super implements RafsSuper {
  readonly version = 6 as const;
  readonly rootIno: number;
  readonly chunkSize: number;
  readonly compressor: Compressor;
  readonly digester: Digester;
  readonly flags: number;
  readonly explicitUidGid: boolean;
  readonly blobs: readonly BlobInfo[];
  readonly bootstrapSize: number;
  readonly superblock: Readonly<V6Superblock>;
  readonly superblockExt: Readonly<V6SuperblockExt>;
  private readonly buf: Buffer;
  private readonly dirs = new WeightedLru<number, ParsedDir>(DIR_CACHE_ENTRIES, dirEntries);
  /** (blob index << 24 | ci index) -> offset of the chunk table entry. */
  private chunkTable: Map<number, number> | undefined;
  private blobChunkLists: ChunkInfo[][] | undefined;
  private distinctInodes: number | undefined;

  /** The whole bootstrap, an EROFS image (what the erofs fs driver hands the kernel). */
  get bytes(): Buffer {
    return this.buf;
  }

  constructor(buf: Buffer) {
    const sb = decodeV6Superblock(buf);
    validateV6Superblock(sb, buf.length);
    const ext = decodeV6SuperblockExt(buf);
    validateV6SuperblockExt(ext, sb, buf.length);
    this.buf = buf;
    this.superblock = sb;
    this.superblockExt = ext;
    this.bootstrapSize = buf.length;
    this.chunkSize = ext.chunkSize;
    this.flags = ext.flags;
    this.compressor = compressorFromFlags(ext.flags, true);
    this.digester = digesterFromFlags(ext.flags, true);
    this.explicitUidGid = (ext.flags & RafsSuperFlags.EXPLICIT_UID_GID) !== 0;
    this.blobs = readV6Blobs(buf, ext);
    this.rootIno = sb.rootNid;
    if ((this.node(sb.rootNid).inode.mode & S_IFMT) !== S_IFDIR) {
      throw corrupt(`failed to open v6 bootstrap: root nid ${sb.rootNid} is not a directory`);
    }
  }

  /** Distinct inodes reachable from the root (one traversal on first use). */
  get inodeCount(): number {
    if (this.distinctInodes === undefined) {
      const seen = new Set<number>([this.rootIno]);
      const stack = [this.rootIno];
      while (stack.length > 0) {
        for (const e of this.dir(stack.pop() as number).entries) {
          if (seen.has(e.nid)) continue;
          seen.add(e.nid);
          if ((this.node(e.nid).inode.mode & S_IFMT) === S_IFDIR) stack.push(e.nid);
        }
      }
      this.distinctInodes = seen.size;
    }
    return this.distinctInodes;
  }

  /** The checked inode `nid`; ERR_RAFS_NO_ENTRY when it lies outside the image. */
  node(nid: number): V6Node {
    if (!isInoLike(nid)) throw noEntry(nid);
    const n = loadV6Node(this.buf, this.superblock.metaBlkaddr, nid, this.chunkSize);
    if (!n) throw noEntry(nid);
    return n;
  }

  private dirNode(nid: number): V6Node {
    const n = this.node(nid);
    if ((n.inode.mode & S_IFMT) !== S_IFDIR) throw notDir(nid);
    return n;
  }

  /** The parsed directory `nid`, from the cache when possible. */
  dir(nid: number): ParsedDir {
    let d = this.dirs.get(nid);
    if (!d) {
      d = parseV6Dir(this.buf, this.dirNode(nid));
      this.dirs.set(nid, d);
    }
    return d;
  }

  getAttr(nid: number): InodeAttr {
    const { inode } = this.node(nid);
    const extended = (inode.format & 1) === 1;
    const type = inode.mode & S_IFMT;
    const sb = this.superblock;
    return {
      ino: nid,
      mode: inode.mode,
      nlink: inode.nlink,
      uid: inode.uid,
      gid: inode.gid,
      size: inode.size,
      blocks: Math.ceil(inode.size / 512),
      // Device numbers sit in i_u (new_encode_dev, the same u32 form v5 stores).
      rdev: type === S_IFCHR || type === S_IFBLK ? inode.u : 0,
      // Compact inodes carry no nsec and count seconds from the superblock's build time.
      mtime: extended ? inode.mtime : sb.buildTime + inode.mtime,
      mtimeNsec: extended ? inode.mtimeNsec : sb.buildTimeNsec,
    };
  }

  lookup(parent: number, name: Buffer): number | undefined {
    if (name.length === 0 || name.equals(DOT) || name.equals(DOTDOT)) {
      // "." and ".." are not children; the fs layer answers them from parentOf.
      this.dirNode(parent);
      return undefined;
    }
    return lookupV6Dir(this.buf, this.dirNode(parent), name);
  }

  parentOf(dir: number): number {
    const d = this.dir(dir);
    if (dir === this.rootIno) return this.rootIno;
    if (d.parent < 0) throw corrupt(`failed to find the parent of v6 directory ${dir}: no ".." entry`);
    return d.parent;
  }

  childCount(dir: number): number {
    return this.dir(dir).entries.length;
  }

  /**
   * Entries from position `start`; names are views into the bootstrap (do not modify).
   * A bad or corrupt directory throws here, before iteration.
   */
  readdir(dir: number, start = 0): Iterable<DirEntry> {
    return this.entriesFrom(this.dir(dir), start);
  }

  private *entriesFrom({ entries }: ParsedDir, start: number): Generator<DirEntry> {
    for (let k = Math.max(0, Math.floor(start)); k < entries.length; k++) {
      const e = entries[k];
      const type = direntModeType(e) || this.node(e.nid).inode.mode & S_IFMT;
      yield { name: e.name, ino: e.nid, type };
    }
  }

  readlink(nid: number): Buffer {
    const n = this.node(nid);
    if ((n.inode.mode & S_IFMT) !== S_IFLNK) throw notSymlink(nid);
    return readInlineData(this.buf, n);
  }

  xattrs(nid: number): Xattr[] {
    return readV6Xattrs(this.buf, this.node(nid));
  }

  listXattrs(nid: number): Buffer[] {
    return this.xattrs(nid).map((x) => x.name);
  }

  getXattr(nid: number, name: Buffer): Buffer | undefined {
    return this.xattrs(nid).find((x) => x.name.equals(name))?.value;
  }

  fileChunks(nid: number, offset: number, size: number): ChunkInfo[] {
    const n = this.node(nid);
    const i = n.inode;
    const end = fileRangeEnd(nid, i.mode, i.size, offset, size);
    if (end < 0) return [];
    const format = i.u & 0xffff;
    if ((format & ErofsChunkFormat.INDEXES) === 0 || (format & ErofsChunkFormat.BIT48) !== 0) {
      throw new RafsFormatError('ERR_RAFS_UNSUPPORTED', `failed to map chunks of v6 inode ${nid}: chunk format 0x${format.toString(16)}`);
    }
    const base = chunkIndexesOffset(n);
    const out: ChunkInfo[] = [];
    const last = Math.floor((end - 1) / this.chunkSize);
    for (let k = Math.floor(offset / this.chunkSize); k <= last; k++) {
      const where = `chunk ${k} of v6 inode ${nid}`;
      const idx = decodeV6ChunkIndex(this.buf, base + k * V6_CHUNK_INDEX_SIZE);
      if (idx.blkaddr === V6_NULL_BLKADDR) continue;
      const blobIndex = idx.deviceId - 1;
      if (blobIndex < 0 || blobIndex >= this.blobs.length) {
        throw corrupt(`failed to map ${where}: device id ${idx.deviceId} of ${this.blobs.length} blobs`);
      }
      const c = this.chunkEntry(blobIndex, idx.ciIndex);
      if (!c || c.uncompressedOffset / EROFS_BLOCK_SIZE !== idx.blkaddr) {
        throw corrupt(`failed to map ${where}: blob ${blobIndex} chunk ${idx.ciIndex} block ${idx.blkaddr} is not in the chunk table`);
      }
      if (c.uncompressedSize !== expectedChunkSize(k, this.chunkSize, i.size)) {
        throw corrupt(`failed to map ${where}: chunk of ${c.uncompressedSize} bytes does not fit the file`);
      }
      out.push(toChunkInfo(c, k * this.chunkSize, this.blobs, this.chunkSize, where));
    }
    return out;
  }

  /** EROFS device slot `k` (blob `k`), which the kernel mounts by and nydusd ignores. */
  deviceSlot(k: number): V6Device {
    return decodeV6Device(this.buf, V6_DEVTABLE_OFFSET + k * V6_DEVICE_SLOT_SIZE);
  }

  /** Number of entries in the bootstrap's chunk table. */
  get chunkTableEntries(): number {
    return this.superblockExt.chunkTableSize / V5_CHUNK_INFO_SIZE;
  }

  /** Entry `i` of the chunk table. */
  chunkTableEntry(i: number): V5ChunkInfo {
    return decodeV5ChunkInfo(this.buf, this.superblockExt.chunkTableOffset + i * V5_CHUNK_INFO_SIZE);
  }

  /** The chunk table entry for (blob, chunk-info index), indexing the table on first use. */
  private chunkEntry(blobIndex: number, ciIndex: number): V5ChunkInfo | undefined {
    if (!this.chunkTable) {
      const table = new Map<number, number>();
      for (let i = 0; i < this.chunkTableEntries; i++) {
        const off = this.superblockExt.chunkTableOffset + i * V5_CHUNK_INFO_SIZE;
        const blob = this.buf.readUInt32LE(off + 32);
        const index = this.buf.readUInt32LE(off + 72);
        if (blob >= this.blobs.length || index >= RAFS_MAX_CHUNKS_PER_BLOB) {
          throw corrupt(`failed to index the v6 chunk table: entry ${i} has blob ${blob} chunk ${index}`);
        }
        const key = blob * RAFS_MAX_CHUNKS_PER_BLOB + index;
        if (!table.has(key)) table.set(key, off);
      }
      this.chunkTable = table;
    }
    const off = this.chunkTable.get(blobIndex * RAFS_MAX_CHUNKS_PER_BLOB + ciIndex);
    return off === undefined ? undefined : decodeV5ChunkInfo(this.buf, off);
  }

  /** Distinct chunks of a blob from the chunk table, by compressed offset; `fileOffset` is 0. */
  blobChunks(blobIndex: number): readonly ChunkInfo[] {
    checkBlobIndex(blobIndex, this.blobs);
    if (!this.blobChunkLists) {
      const maps = this.blobs.map(() => new Map<number, ChunkInfo>());
      for (let i = 0; i < this.chunkTableEntries; i++) {
        const c = this.chunkTableEntry(i);
        const info = toChunkInfo(c, 0, this.blobs, this.chunkSize, `chunk table entry ${i}`);
        if (!maps[c.blobIndex].has(c.index)) maps[c.blobIndex].set(c.index, info);
      }
      this.blobChunkLists = maps.map((m) => [...m.values()].sort(byCompressedOffset));
    }
    return this.blobChunkLists[blobIndex];
  }

  prefetchList(): readonly number[] {
    const ext = this.superblockExt;
    const out: number[] = [];
    if (ext.prefetchTableSize === 0 || ext.prefetchTableOffset === 0) return out;
    for (let off = ext.prefetchTableOffset; off < ext.prefetchTableOffset + ext.prefetchTableSize; off += 4) {
      const nid = this.buf.readUInt32LE(off);
      if (nid === 0) break;
      out.push(nid);
    }
    return out;
  }

  superblockJson(opts?: SuperJsonOptions): Record<string, unknown> {
    const sb = this.superblock;
    const ext = this.superblockExt;
    return superMetaJson(
      {
        magic: sb.magic,
        version: 0x600,
        // Upstream's v6 loader leaves sb_size and the v5 table fields at 0.
        sbSize: 0,
        rootInode: sb.rootNid,
        chunkSize: ext.chunkSize,
        inodesCount: sb.inos,
        flags: ext.flags,
        inodeTableEntries: 0,
        inodeTableOffset: 0,
        blobTableSize: ext.blobTableSize,
        blobTableOffset: ext.blobTableOffset,
        extendedBlobTableOffset: 0,
        extendedBlobTableEntries: 0,
        prefetchTableOffset: ext.prefetchTableOffset,
        prefetchTableEntries: ext.prefetchTableSize / 4,
        metaBlkaddr: sb.metaBlkaddr,
        rootNid: sb.rootNid,
        chunkTableOffset: ext.chunkTableOffset,
        chunkTableSize: ext.chunkTableSize,
      },
      opts,
    );
  }
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
