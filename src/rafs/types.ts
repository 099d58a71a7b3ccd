// The format-neutral view of a RAFS image that every layer above src/rafs uses: fs,
// unpack and check walk inodes through RafsSuper, whose blobs and file chunks are
// storage's BlobInfo and ChunkInfo (storage/types.ts). v5 and v6 readers both produce
// exactly these shapes, so nothing above this module branches on version.
import type { BlobInfo, ChunkInfo, Compressor, Digester } from '../storage/types.js';

/** Attributes of an inode as stat(2) reports them. */
export interface InodeAttr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte blocks. */
  blocks: number;
  rdev: number;
  mtime: number;
  mtimeNsec: number;
}

/** A directory entry as the image lists it ("." and ".." are not included). */
export interface DirEntry {
  name: Buffer;
  ino: number;
  /** The S_IFMT bits of the child's mode. */
  type: number;
}

/** Prefetch hints recorded in the bootstrap (inode numbers; a directory means its subtree). */
export type PrefetchList = readonly number[];

/**
 * An opened bootstrap, v5 or v6. Lazy: opening decodes only the superblock and tables;
 * inodes are decoded on demand. Inode numbers are the image's own (v5 `i_ino`, v6 nid),
 * stable across processes. Every method throws RafsFormatError on corrupt metadata and
 * `ERR_RAFS_NO_ENTRY` for an inode number the image does not have.
 */
export interface RafsSuper {
  readonly version: 5 | 6;
  readonly rootIno: number;
  readonly chunkSize: number;
  readonly compressor: Compressor;
  readonly digester: Digester;
  /** RafsSuperFlags bits (docs/format.md §1.2). */
  readonly flags: number;
  /** When false, uid/gid in inodes are meaningless and the daemon reports its own. */
  readonly explicitUidGid: boolean;
  readonly blobs: readonly BlobInfo[];
  /** Number of distinct inodes (not the superblock's informational count). */
  readonly inodeCount: number;
  /** Size of the bootstrap file in bytes. */
  readonly bootstrapSize: number;

  getAttr(ino: number): InodeAttr;
  /** The child of directory `parent` named `name`, or undefined. */
  lookup(parent: number, name: Buffer): number | undefined;
  /** The parent directory of a directory (root: itself). */
  parentOf(dir: number): number;
  /** Number of entries of a directory (without "." and ".."). */
  childCount(dir: number): number;
  /** Entries of a directory from position `start` on, in image order. */
  readdir(dir: number, start?: number): Iterable<DirEntry>;
  readlink(ino: number): Buffer;
  /** xattr names of an inode (full names such as `user.foo`). */
  listXattrs(ino: number): Buffer[];
  /** The value of one xattr, or undefined. */
  getXattr(ino: number, name: Buffer): Buffer | undefined;
  /**
   * The chunks that hold bytes of `[offset, offset + size)` of a regular file, in file order.
   * Ranges not covered by any returned chunk are holes (read as zeros).
   */
  fileChunks(ino: number, offset: number, size: number): ChunkInfo[];
  /**
   * Every distinct chunk stored in blob `blobIndex`, ordered by compressed offset.
   * `fileOffset` is 0 in these: a deduplicated chunk belongs to no single file offset.
   */
  blobChunks(blobIndex: number): readonly ChunkInfo[];
  /** Inode numbers the bootstrap's prefetch table lists. */
  prefetchList(): PrefetchList;
  /**
   * The superblock as upstream's `GET /api/v1/daemon/backend` reports it (docs/contract.md §7.1).
   * `attr_timeout`/`entry_timeout` come from `opts` (seconds), else upstream's 2^32 s.
   */
  superblockJson(opts?: { attrTimeout?: number; entryTimeout?: number }): Record<string, unknown>;
}
