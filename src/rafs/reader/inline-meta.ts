// Blobs with inlined metadata (`nydus-image create --blob-inline-meta`): the bootstrap
// `image.boot` sits near the end of the data blob, every section followed by a 512-byte
// tar header (docs/format.md §7.1). It is found the way upstream's converter finds it:
// through the ToC entry when the blob ends with a ToC, else by walking the tar headers
// back from the end. Such a blob's table entry names it "x" * 64; readers take the id
// from the file name instead (upstream `BlobInfo::get_blob_id_from_meta_path`).
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { BlobFeatures, corrupt, RAFS_MAX_METADATA_SIZE } from '../layout/common.js';
import { decompressMetadata } from '../../storage/codec.js';
import type { BlobInfo } from '../../storage/types.js';

const TAR_BLOCK = 512;
const TOC_ENTRY_SIZE = 128;
/** Upstream reads at most this much ToC. */
const MAX_TOC_SIZE = 1 << 20;

interface Section {
  name: string;
  /** Offset of the section's payload (its header follows it). */
  offset: number;
  size: number;
}

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) throw corrupt(`failed to read inlined metadata: file ends at ${offset + got}`);
    got += bytesRead;
  }
  return buf;
}

/** The section whose tar header ends at `end`, or undefined when there is no tar header. */
async function sectionBefore(fh: FileHandle, end: number): Promise<Section | undefined> {
  if (end < TAR_BLOCK) return undefined;
  const h = await readAt(fh, end - TAR_BLOCK, TAR_BLOCK);
  if (h.toString('latin1', 257, 262) !== 'ustar') return undefined;
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  const recorded = parseInt(h.toString('latin1', 148, 156).replace(/[\0 ]+$/, ''), 8);
  if (recorded !== sum) return undefined;
  const nul = h.indexOf(0);
  const name = h.toString('latin1', 0, nul < 0 || nul > 100 ? 100 : nul);
  const size = parseInt(h.toString('latin1', 124, 136).replace(/[\0 ]+$/, ''), 8);
  const offset = end - TAR_BLOCK - size;
  if (!Number.isSafeInteger(size) || offset < 0) throw corrupt(`failed to read inlined metadata: section ${name} of ${size} bytes does not fit`);
  return { name, offset, size };
}

/**
 * The bootstrap inlined in the blob file `fh` of `size` bytes, or undefined when the file
 * does not end with nydus tar sections holding one.
 */
export async function readInlineBootstrap(fh: FileHandle, size: number): Promise<Buffer | undefined> {
  const last = await sectionBefore(fh, size);
  if (!last) return undefined;
  if (last.name === 'rafs.blob.toc' && last.size <= MAX_TOC_SIZE && last.size % TOC_ENTRY_SIZE === 0) {
    const toc = await readAt(fh, last.offset, last.size);
    for (let at = 0; at < toc.length; at += TOC_ENTRY_SIZE) {
      const e = toc.subarray(at, at + TOC_ENTRY_SIZE);
      const nul = e.indexOf(0, 8);
      if (e.toString('latin1', 8, nul < 0 || nul > 24 ? 24 : nul) !== 'image.boot') continue;
      const flags = e.readUInt32LE(0);
      const offset = Number(e.readBigUInt64LE(56));
      const stored = Number(e.readBigUInt64LE(64));
      const plain = Number(e.readBigUInt64LE(72));
      if (offset + stored > size || stored > RAFS_MAX_METADATA_SIZE) throw corrupt('failed to read inlined bootstrap: ToC entry out of the blob');
      if (flags !== 0x1 && flags !== 0x2) throw corrupt(`failed to read inlined bootstrap: unsupported ToC compressor flags 0x${flags.toString(16)}`);
      const data = decompressMetadata(flags === 0x2 ? 'zstd' : 'none', await readAt(fh, offset, stored), plain, RAFS_MAX_METADATA_SIZE);
      if (!createHash('sha256').update(data).digest().equals(e.subarray(24, 56))) throw corrupt('failed to read inlined bootstrap: digest mismatch');
      return data;
    }
  }
  // No ToC (or no bootstrap in it): walk the sections back from the end.
  for (let s: Section | undefined = last; s; s = await sectionBefore(fh, s.offset)) {
    if (s.name === 'image.boot') {
      if (s.size > RAFS_MAX_METADATA_SIZE) throw corrupt(`failed to read inlined bootstrap: ${s.size} bytes exceed the metadata limit`);
      return readAt(fh, s.offset, s.size);
    }
  }
  return undefined;
}

/** Upstream's `Path::file_prefix`: the file name up to its first dot. */
export function blobIdFromMetaPath(path: string): string {
  const name = basename(path);
  const dot = name.indexOf('.', 1);
  return dot < 0 ? name : name.slice(0, dot);
}

/**
 * Names the inlined-metadata blobs of `blobs` after the metadata file they came from: the
 * data blob itself, or for a separate (zran) blob its meta blob, which the blob table
 * cannot name (upstream `BlobInfo::set_blob_id_from_meta_path`).
 */
export function nameInlineMetaBlobs(blobs: readonly BlobInfo[], metaPath: string): void {
  for (const b of blobs) {
    if ((b.features & BlobFeatures.INLINED_FS_META) === 0) continue;
    if ((b.features & BlobFeatures.SEPARATE) !== 0) {
      b.metaBlobId ??= blobIdFromMetaPath(metaPath);
      continue;
    }
    b.recordedBlobId ??= b.blobId;
    b.blobId = blobIdFromMetaPath(metaPath);
  }
}
