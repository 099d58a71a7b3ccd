// What a bootstrap writer needs besides the tree: the image-wide settings and the blob
// table, with each blob described the way both versions' tables can hold it. Blob
// entries of existing images are taken from their raw tables so that fields the
// format-neutral BlobInfo leaves out (ToC digest, meta digest) survive a rebuild.
import { BlobFeatures, ChunkFlags, compressorFlag, digesterFlag, RafsSuperFlags, S_IFMT } from '../rafs/layout/common.js';
import type { V5ChunkInfo } from '../rafs/layout/v5.js';
import { decodeV6BlobEntry, V6_BLOB_ENTRY_SIZE } from '../rafs/layout/v6.js';
import type { AnyRafsSuper } from '../rafs/reader/open.js';
import type { ChunkInfo, Compressor, Digester } from '../storage/types.js';
import type { BuildInode } from './tree.js';

/** One blob table entry of the image being written. */
export interface OutBlob {
  blobId: string;
  chunkSize: number;
  chunkCount: number;
  compressor: Compressor;
  digester: Digester;
  features: number;
  compressedSize: number;
  uncompressedSize: number;
  readaheadOffset: number;
  readaheadSize: number;
  ciCompressor: Compressor;
  ciOffset: number;
  ciCompressedSize: number;
  ciUncompressedSize: number;
  blobTocSize: number;
  blobTocDigest: Buffer;
  blobMetaDigest: Buffer;
  blobMetaSize: number;
}

/** Everything a bootstrap writer needs. */
export interface ImageSpec {
  root: BuildInode;
  version: 5 | 6;
  chunkSize: number;
  compressor: Compressor;
  digester: Digester;
  /** EXPLICIT_UID_GID: false for --repeatable builds. */
  explicitUidGid: boolean;
  blobs: OutBlob[];
  /** Inodes the prefetch table lists (policy fs), in pattern order. */
  prefetch: BuildInode[];
}

/** The blob entries of an opened image, as its own tables hold them. */
export function blobsOf(sb: AnyRafsSuper, bootstrap: Buffer): OutBlob[] {
  return sb.blobs.map((b) => {
    const out: OutBlob = {
      blobId: b.blobId,
      chunkSize: b.chunkSize,
      chunkCount: b.chunkCount,
      compressor: b.compressor,
      digester: b.digester,
      features: b.features,
      compressedSize: b.compressedSize,
      uncompressedSize: b.uncompressedSize,
      readaheadOffset: b.readaheadOffset,
      readaheadSize: b.readaheadSize,
      ciCompressor: b.metaCiCompressor,
      ciOffset: b.metaCiOffset,
      ciCompressedSize: b.metaCiCompressedSize,
      ciUncompressedSize: b.metaCiUncompressedSize,
      blobTocSize: b.blobTocSize,
      blobTocDigest: Buffer.alloc(32),
      blobMetaDigest: Buffer.alloc(32),
      blobMetaSize: 0,
    };
    if (sb.version === 6) {
      const raw = decodeV6BlobEntry(bootstrap, sb.superblockExt.blobTableOffset + b.index * V6_BLOB_ENTRY_SIZE);
      out.blobTocDigest = raw.blobTocDigest;
      out.blobMetaDigest = raw.blobMetaDigest;
      out.blobMetaSize = raw.blobMetaSize;
    }
    return out;
  });
}

/** The RafsSuperFlags both versions set: compressor, digester, EXPLICIT_UID_GID and HAS_XATTR. */
export function superFlags(spec: ImageSpec, hasXattr: boolean): number {
  let flags = compressorFlag(spec.compressor) | digesterFlag(spec.digester);
  if (spec.explicitUidGid) flags |= RafsSuperFlags.EXPLICIT_UID_GID;
  if (hasXattr) flags |= RafsSuperFlags.HAS_XATTR;
  return flags;
}

/** A chunk as both versions store it: a v5 chunk record, a v6 chunk table entry. */
export function chunkRecord(c: ChunkInfo): V5ChunkInfo {
  return {
    blockId: c.digest,
    blobIndex: c.blobIndex,
    flags: c.compressed ? ChunkFlags.COMPRESSED : 0,
    compressedSize: c.compressedSize,
    uncompressedSize: c.uncompressedSize,
    compressedOffset: c.compressedOffset,
    uncompressedOffset: c.uncompressedOffset,
    fileOffset: c.fileOffset,
    index: c.index,
    crc32: 0,
  };
}

/** True when every blob carries its chunk digests (v6 superblock flag INLINED_CHUNK_DIGEST). */
export function allInlinedDigests(blobs: readonly OutBlob[]): boolean {
  return blobs.length > 0 && blobs.every((b) => (b.features & BlobFeatures.INLINED_CHUNK_DIGEST) !== 0);
}

/** The S_IFMT bits of an inode. */
export function typeOf(i: BuildInode): number {
  return i.mode & S_IFMT;
}
