// Pieces both readers share: error constructors that say which inode, the chunk
// sanity checks that keep a corrupt record from turning into wrong file bytes, the
// argument rules of fileChunks and blobChunks, and the RafsSuperMeta JSON shape nydusd
// reports (docs/contract.md §7.1).
import { RafsFormatError } from '../../errors.js';
import { ChunkFlags, corrupt, RAFS_DEFAULT_TIMEOUT_SECS, S_IFMT, S_IFREG } from '../layout/common.js';
import type { V5ChunkInfo } from '../layout/v5.js';
import type { BlobInfo, ChunkInfo } from '../../storage/types.js';

export function noEntry(ino: number): RafsFormatError {
  return new RafsFormatError('ERR_RAFS_NO_ENTRY', `failed to find inode ${ino}: no such inode in the image`);
}

export function notDir(ino: number): RafsFormatError {
  return new RafsFormatError('ERR_RAFS_NOT_DIR', `failed to read directory ${ino}: not a directory`);
}

export function notSymlink(ino: number): RafsFormatError {
  return new RafsFormatError('ERR_RAFS_NOT_SYMLINK', `failed to read link ${ino}: not a symlink`);
}

export function notFile(ino: number): RafsFormatError {
  return new RafsFormatError('ERR_RAFS_NOT_FILE', `failed to map chunks of inode ${ino}: not a regular file`);
}

/** True for a value usable as an inode number lookup key. */
export function isInoLike(ino: number): boolean {
  return Number.isSafeInteger(ino) && ino >= 0;
}

/**
 * A ChunkInfo for file offset `fileOffset` from a chunk record (v5) or chunk table entry
 * (v6), after the checks every chunk must pass: its blob exists, it is no larger than a
 * chunk, and stored-raw chunks have equal sizes.
 */
export function toChunkInfo(c: V5ChunkInfo, fileOffset: number, blobs: readonly BlobInfo[], chunkSize: number, where: string): ChunkInfo {
  const compressed = (c.flags & ChunkFlags.COMPRESSED) !== 0;
  if (c.blobIndex >= blobs.length) throw corrupt(`failed to map ${where}: blob index ${c.blobIndex} of ${blobs.length} blobs`);
  if (c.uncompressedSize === 0 || c.uncompressedSize > chunkSize) {
    throw corrupt(`failed to map ${where}: uncompressed size ${c.uncompressedSize} (chunk size ${chunkSize})`);
  }
  if (c.compressedSize === 0 || (!compressed && c.compressedSize !== c.uncompressedSize)) {
    throw corrupt(`failed to map ${where}: compressed size ${c.compressedSize} for ${c.uncompressedSize} bytes`);
  }
  return {
    digest: c.blockId,
    blobIndex: c.blobIndex,
    index: c.index,
    compressed,
    compressedOffset: c.compressedOffset,
    compressedSize: c.compressedSize,
    uncompressedOffset: c.uncompressedOffset,
    uncompressedSize: c.uncompressedSize,
    fileOffset,
  };
}

/**
 * Where a `fileChunks(ino, offset, size)` request ends inside a regular file of
 * `fileSize` bytes, or -1 when it holds no byte of the file (then no chunk maps it).
 */
export function fileRangeEnd(ino: number, mode: number, fileSize: number, offset: number, size: number): number {
  if ((mode & S_IFMT) !== S_IFREG) throw notFile(ino);
  const end = Math.min(offset + size, fileSize);
  return !(offset >= 0) || !(size > 0) || offset >= end ? -1 : end;
}

/** Throws ERR_RAFS_NO_ENTRY unless `blobIndex` names one of `blobs` (for `blobChunks`). */
export function checkBlobIndex(blobIndex: number, blobs: readonly BlobInfo[]): void {
  if (!Number.isSafeInteger(blobIndex) || blobIndex < 0 || blobIndex >= blobs.length) {
    throw new RafsFormatError('ERR_RAFS_NO_ENTRY', `failed to list chunks of blob ${blobIndex}: no such blob`);
  }
}

/** The size chunk `k` of a file of `size` bytes must have when the file has no holes. */
export function expectedChunkSize(k: number, chunkSize: number, size: number): number {
  return Math.min(chunkSize, size - k * chunkSize);
}

/** Upstream's `RafsSuperMeta` fields, as `GET /api/v1/daemon/backend` serializes them. */
export interface SuperMetaFields {
  magic: number;
  version: number;
  sbSize: number;
  rootInode: number;
  chunkSize: number;
  inodesCount: number;
  flags: number;
  inodeTableEntries: number;
  inodeTableOffset: number;
  blobTableSize: number;
  blobTableOffset: number;
  extendedBlobTableOffset: number;
  extendedBlobTableEntries: number;
  prefetchTableOffset: number;
  prefetchTableEntries: number;
  metaBlkaddr: number;
  rootNid: number;
  chunkTableOffset: number;
  chunkTableSize: number;
}

/** Timeouts in seconds for the JSON; upstream's defaults are 2^32 s. */
export interface SuperJsonOptions {
  attrTimeout?: number;
  entryTimeout?: number;
}

function duration(secs: number): { secs: number; nanos: number } {
  const whole = Math.floor(secs);
  return { secs: whole, nanos: Math.round((secs - whole) * 1e9) };
}

export function superMetaJson(f: SuperMetaFields, opts: SuperJsonOptions = {}): Record<string, unknown> {
  return {
    magic: f.magic,
    version: f.version,
    sb_size: f.sbSize,
    root_inode: f.rootInode,
    chunk_size: f.chunkSize,
    inodes_count: f.inodesCount,
    flags: { bits: f.flags },
    inode_table_entries: f.inodeTableEntries,
    inode_table_offset: f.inodeTableOffset,
    blob_table_size: f.blobTableSize,
    blob_table_offset: f.blobTableOffset,
    extended_blob_table_offset: f.extendedBlobTableOffset,
    extended_blob_table_entries: f.extendedBlobTableEntries,
    prefetch_table_offset: f.prefetchTableOffset,
    prefetch_table_entries: f.prefetchTableEntries,
    attr_timeout: duration(opts.attrTimeout ?? RAFS_DEFAULT_TIMEOUT_SECS),
    entry_timeout: duration(opts.entryTimeout ?? RAFS_DEFAULT_TIMEOUT_SECS),
    is_chunk_dict: false,
    meta_blkaddr: f.metaBlkaddr,
    root_nid: f.rootNid,
    chunk_table_offset: f.chunkTableOffset,
    chunk_table_size: f.chunkTableSize,
  };
}

/** Sorts chunks by compressed offset, for `blobChunks`. */
export function byCompressedOffset(a: ChunkInfo, b: ChunkInfo): number {
  return a.compressedOffset - b.compressedOffset;
}
