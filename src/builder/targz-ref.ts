// `nydus-image create -t targz-ref`: an image over an unconverted .tar.gz layer, laid
// out as upstream builds it (docs/nydus-zran.md). The data blob is the .tar.gz itself,
// byte for byte, named by its sha256; the bootstrap (v6) maps each file chunk to a span
// of the inflated stream; a separate meta blob (named by its own sha256, recorded as the
// blob's `blob_meta_digest`) holds the v2 chunk-info array with the zran contexts after
// it, zstd-compressed, and the meta header. Chunks are not deduplicated: each has its
// own place in the stream. With `inlineMeta` (`--blob-inline-meta`) the bootstrap is
// inlined in the meta blob after a `blob.meta` tar header and followed by its
// `image.boot` one (upstream's RAFS blob for zran); the blob table then records no
// meta digest (the file cannot hold its own hash) and readers name the meta blob after
// the file (inline-meta.ts).
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { BlobFeatures, RAFS_DEFAULT_CHUNK_SIZE } from '../rafs/layout/common.js';
import { parseBootstrap } from '../rafs/reader/open.js';
import type { ChunkInfo } from '../storage/types.js';
import { validateMetadata } from '../rafs/validate.js';
import { compress } from '../storage/codec.js';
import { encodeZranTable } from '../storage/zran.js';
import { encodeMetaHeader } from './blob-writer.js';
import { reverseTarHeader } from './blob-sections.js';
import { writeV6Bootstrap } from './bootstrap-v6.js';
import type { ReadData } from './chunker.js';
import type { ImageSpec, OutBlob } from './image-spec.js';
import { copyFileAtomic, outputMode, writeFileAtomic } from './output.js';
import { buildTreeFromTar, type FileChunker } from './source-tar.js';
import type { BuildInode } from './tree.js';
import { ZranGenerator } from './zran-generator.js';

export interface TargzRefOptions {
  source: string;
  bootstrap?: string;
  /** Receives the meta blob and a copy of the .tar.gz, each named by its id. */
  blobDir?: string;
  /** Exact path of the meta blob (instead of `blobDir/<its sha256>`). */
  blob?: string;
  chunkSize?: number;
  repeatable?: boolean;
  /** Inline the bootstrap in the meta blob (no separate bootstrap file). */
  inlineMeta?: boolean;
  warn?(message: string): void;
}

export interface TargzRefResult {
  bootstrap: string;
  /** The data blob: the .tar.gz's sha256 and size. */
  blobId: string;
  compressedSize: number;
  /** The meta blob: its id (sha256) and path. */
  metaId: string;
  metaPath: string;
  chunkCount: number;
  contextCount: number;
}

/** Chunk-info v2 flags (docs/format.md §7.4). */
const CI_COMPRESSED = 0x01;
const CI_ZRAN = 0x02;
export const TARGZ_REF_FEATURES =
  BlobFeatures.ALIGNED | BlobFeatures.CHUNK_INFO_V2 | BlobFeatures.ZRAN | BlobFeatures.SEPARATE | 0x4000_0000;

function align4k(n: number): number {
  return Math.ceil(n / 4096) * 4096;
}

/** One v2 chunk-info entry of a zran chunk. */
function encodeCiV2Zran(c: ChunkInfo, contextIndex: number, contextOffset: number): Buffer {
  const b = Buffer.alloc(24);
  const uncomp = BigInt(c.uncompressedOffset / 4096) | (BigInt(c.uncompressedSize - 1) << 32n) | (BigInt(CI_COMPRESSED | CI_ZRAN) << 56n);
  b.writeBigUInt64LE(uncomp, 0);
  b.writeBigUInt64LE(BigInt(c.compressedOffset) | (BigInt(c.compressedSize) << 40n), 8);
  b.writeBigUInt64LE((BigInt(contextIndex) << 32n) | BigInt(contextOffset), 16);
  return b;
}

/** Chunks file data as the tar reader passes it, recording where in the gzip stream each chunk is. */
class ZranChunker implements FileChunker {
  readonly entries: Buffer[] = [];
  private uncompressedEnd = 0;

  constructor(
    private readonly zran: ZranGenerator,
    private readonly chunkSize: number,
  ) {}

  get uncompressedSize(): number {
    return this.uncompressedEnd;
  }

  async addFile(inode: BuildInode, size: number, read: ReadData, at: () => number): Promise<void> {
    const count = Math.ceil(size / this.chunkSize);
    inode.chunks = [];
    for (let k = 0; k < count; k++) {
      const n = Math.min(this.chunkSize, size - k * this.chunkSize);
      const start = at();
      this.zran.beginChunk(start, n);
      const data = await read(n);
      const z = this.zran.endChunk(start + n);
      const chunk: ChunkInfo = {
        digest: createHash('sha256').update(data).digest(),
        blobIndex: 0,
        index: this.entries.length,
        compressed: true,
        compressedOffset: z.inPos,
        compressedSize: z.inLen,
        uncompressedOffset: this.uncompressedEnd,
        uncompressedSize: n,
        fileOffset: k * this.chunkSize,
      };
      this.entries.push(encodeCiV2Zran(chunk, z.contextIndex, z.contextOffset));
      this.uncompressedEnd += align4k(n);
      inode.chunks.push(chunk);
    }
  }
}

/** Builds a targz-ref image; nothing is left behind when it fails. */
export async function createTargzRefImage(o: TargzRefOptions): Promise<TargzRefResult> {
  const chunkSize = o.chunkSize ?? RAFS_DEFAULT_CHUNK_SIZE;
  if (!o.blob && !o.blobDir) throw new BuildError('ERR_BUILD_SOURCE', 'failed to create image: both --blob and --blob-dir are missing');
  if (!o.bootstrap && !o.blobDir && !o.inlineMeta) throw new BuildError('ERR_BUILD_SOURCE', 'failed to create image: both --bootstrap and --blob-dir are missing');
  // The bootstrap names its meta blob by the file it is read from: a copy elsewhere would name the wrong one.
  if (o.inlineMeta && o.bootstrap) throw new BuildError('ERR_BUILD_SOURCE', 'failed to create image: --bootstrap conflicts with --blob-inline-meta for targz-ref (the bootstrap is inlined in the meta blob)');
  if (o.blobDir && !existsSync(o.blobDir)) throw new BuildError('ERR_BUILD_SOURCE', `failed to create image: blob directory ${o.blobDir} does not exist`);
  if (!existsSync(o.source) || !statSync(o.source).isFile()) throw new BuildError('ERR_BUILD_SOURCE', `failed to build from ${o.source}: not a regular file`);
  const magic = Buffer.alloc(2);
  const fh = await open(o.source, 'r');
  try {
    await fh.read(magic, 0, 2, 0);
  } finally {
    await fh.close();
  }
  if (magic[0] !== 0x1f || magic[1] !== 0x8b) {
    throw new BuildError('ERR_BUILD_SOURCE', `failed to build from ${o.source}: not a gzip stream (targz-ref indexes a .tar.gz; a plain tar builds with tar-rafs)`);
  }
  const zran = await ZranGenerator.open(o.source);
  let root: BuildInode;
  const chunker = new ZranChunker(zran, chunkSize);
  try {
    root = await buildTreeFromTar(zran.inflated(), chunker, { explicitUidGid: !o.repeatable, whiteoutSpec: 'oci', warn: o.warn ?? (() => undefined) });
  } finally {
    await zran.close();
  }
  const blobId = zran.digest();
  const compressedSize = zran.compressedSize;

  // The meta blob: [chunk-info array + zran table, zstd][meta header], as upstream dumps it.
  const ciArray = Buffer.concat(chunker.entries);
  const zranTable = encodeZranTable(zran.contexts);
  const ci = Buffer.concat([ciArray, zranTable]);
  const packed = compress('zstd', ci);
  const ciCompressor = packed.compressed ? 'zstd' : 'none';
  const features = TARGZ_REF_FEATURES | (o.inlineMeta ? BlobFeatures.INLINED_FS_META | BlobFeatures.HAS_TAR_HEADER : 0);
  const header = encodeMetaHeader(features, ciCompressor, chunker.entries.length, 0, packed.data.length, ci.length);
  header.writeBigUInt64LE(BigInt(ciArray.length), 40);
  header.writeBigUInt64LE(BigInt(zranTable.length), 48);
  header.writeUInt32LE(zran.contexts.length, 56);
  let meta = Buffer.concat([packed.data, header]);
  const metaDigest = createHash('sha256').update(meta).digest();

  const blob: OutBlob = {
    blobId,
    chunkSize,
    chunkCount: chunker.entries.length,
    compressor: 'gzip',
    digester: 'sha256',
    features,
    compressedSize,
    uncompressedSize: chunker.uncompressedSize,
    readaheadOffset: 0,
    readaheadSize: 0,
    ciCompressor,
    ciOffset: 0,
    ciCompressedSize: packed.data.length,
    ciUncompressedSize: ci.length,
    blobTocSize: 0,
    blobTocDigest: Buffer.alloc(32),
    blobMetaDigest: o.inlineMeta ? Buffer.alloc(32) : metaDigest,
    blobMetaSize: o.inlineMeta ? 0 : meta.length,
  };
  const spec: ImageSpec = { root, version: 6, chunkSize, compressor: 'gzip', digester: 'sha256', explicitUidGid: !o.repeatable, blobs: [blob], prefetch: [] };
  const bytes = writeV6Bootstrap(spec);
  await validateMetadata(parseBootstrap(bytes));
  if (o.inlineMeta) meta = Buffer.concat([meta, reverseTarHeader('blob.meta', meta.length), bytes, reverseTarHeader('image.boot', bytes.length)]);
  const metaId = o.inlineMeta ? createHash('sha256').update(meta).digest('hex') : metaDigest.toString('hex');

  const metaPath = o.blob ?? join(o.blobDir as string, metaId);
  writeFileAtomic(metaPath, meta, outputMode(o.blob !== undefined));
  if (o.blobDir) {
    // The data blob is the layer itself; in a blob directory it sits under its digest.
    copyFileAtomic(o.source, join(o.blobDir, blobId));
  }
  if (o.inlineMeta) return { bootstrap: metaPath, blobId, compressedSize, metaId, metaPath, chunkCount: chunker.entries.length, contextCount: zran.contexts.length };
  const bootstrap = o.bootstrap ?? join(o.blobDir as string, createHash('sha256').update(bytes).digest('hex'));
  writeFileAtomic(bootstrap, bytes, outputMode(o.bootstrap !== undefined));
  return { bootstrap, blobId, compressedSize, metaId, metaPath, chunkCount: chunker.entries.length, contextCount: zran.contexts.length };
}
