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
// the file (inline-meta.ts). With `blobToc` as well (the converter's packRef) the chunk
// digests (`blob.digest`) and a ToC follow, and the bootstrap is zstd-compressed.
// The source is read once, front to back, and the meta blob written front to back, so
// both may be FIFOs (decision 0015).
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { alignUp, BlobFeatures, RAFS_DEFAULT_CHUNK_SIZE } from '../rafs/layout/common.js';
import { EROFS_BLOCK_SIZE } from '../rafs/layout/v6.js';
import { parseBootstrap } from '../rafs/reader/open.js';
import type { ChunkInfo } from '../storage/types.js';
import { validateMetadata } from '../rafs/validate.js';
import { compress } from '../storage/codec.js';
import { encodeZranTable, type ZranContext } from '../storage/zran.js';
import { BlobToc, bootstrapSection, digestSection, metaSection, type MetaSection } from './blob-sections.js';
import { encodeMetaHeader } from './blob-writer.js';
import { writeV6Bootstrap } from './bootstrap-v6.js';
import type { ReadData } from './chunker.js';
import type { ImageSpec, OutBlob } from './image-spec.js';
import { outputMode, SequentialOutput, writeFileAtomic } from './output.js';
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
  /** `--features blob-toc` (with `inlineMeta`): the chunk digests and a ToC in the meta blob. */
  blobToc?: boolean;
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
  BlobFeatures.ALIGNED | BlobFeatures.CHUNK_INFO_V2 | BlobFeatures.ZRAN | BlobFeatures.SEPARATE | BlobFeatures.CAP_TAR_TOC;

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
  private readonly digestList: Buffer[] = [];
  private uncompressedEnd = 0;

  constructor(
    private readonly zran: ZranGenerator,
    private readonly chunkSize: number,
  ) {}

  get uncompressedSize(): number {
    return this.uncompressedEnd;
  }

  /** The chunk digest array (`blob.digest`): 32 bytes per chunk, in chunk index order. */
  digests(): Buffer {
    return Buffer.concat(this.digestList);
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
      this.digestList.push(chunk.digest);
      this.uncompressedEnd += alignUp(n, EROFS_BLOCK_SIZE);
      inode.chunks.push(chunk);
    }
  }
}

function fail(m: string): BuildError {
  return new BuildError('ERR_BUILD_SOURCE', m);
}

function checkOptions(o: TargzRefOptions): void {
  if (!o.blob && !o.blobDir) throw fail('failed to create image: both --blob and --blob-dir are missing');
  if (!o.bootstrap && !o.blobDir && !o.inlineMeta) throw fail('failed to create image: both --bootstrap and --blob-dir are missing');
  // The bootstrap names its meta blob by the file it is read from: a copy elsewhere would name the wrong one.
  if (o.inlineMeta && o.bootstrap) throw fail('failed to create image: --bootstrap conflicts with --blob-inline-meta for targz-ref (the bootstrap is inlined in the meta blob)');
  // Without inlined metadata upstream names such a meta blob by a hash that leaves the
  // digest array out, which no registry would accept as its digest.
  if (o.blobToc && !o.inlineMeta) throw fail('failed to create image: --features blob-toc with --type targz-ref needs --blob-inline-meta');
  if (o.blobDir && !existsSync(o.blobDir)) throw fail(`failed to create image: blob directory ${o.blobDir} does not exist`);
  const st = statSync(o.source, { throwIfNoEntry: false });
  if (!st?.isFile() && !st?.isFIFO()) throw fail(`failed to build from ${o.source}: not a regular file or FIFO`);
}

/** The one pass over the layer: its tree, chunks and zran contexts, and `copy` fed as it is read. */
async function indexLayer(o: TargzRefOptions, chunkSize: number, copy: SequentialOutput | undefined): Promise<{ root: BuildInode; zran: ZranGenerator; chunker: ZranChunker }> {
  const zran = await ZranGenerator.open(o.source, copy && ((piece) => copy.write(piece)));
  const chunker = new ZranChunker(zran, chunkSize);
  try {
    const root = await buildTreeFromTar(zran.inflated(), chunker, { explicitUidGid: !o.repeatable, whiteoutSpec: 'oci', warn: o.warn ?? (() => undefined) });
    return { root, zran, chunker };
  } finally {
    await zran.close();
  }
}

/** The blob meta as upstream dumps it: [chunk-info array + zran table, zstd][meta header]. */
function encodeBlobMeta(chunker: ZranChunker, contexts: readonly ZranContext[], features: number): MetaSection {
  const ciArray = Buffer.concat(chunker.entries);
  const zranTable = encodeZranTable(contexts);
  const plain = Buffer.concat([ciArray, zranTable]);
  const packed = compress('zstd', plain);
  const compressor = packed.compressed ? 'zstd' : 'none';
  const header = encodeMetaHeader(features, compressor, chunker.entries.length, 0, packed.data.length, plain.length);
  header.writeBigUInt64LE(BigInt(ciArray.length), 40);
  header.writeBigUInt64LE(BigInt(zranTable.length), 48);
  header.writeUInt32LE(contexts.length, 56);
  return { plain, stored: packed.data, compressor, header };
}

/**
 * Builds a targz-ref image; nothing is left behind when it fails. The source is read
 * once, front to back, and the meta blob written front to back: either may be a FIFO.
 */
export async function createTargzRefImage(o: TargzRefOptions): Promise<TargzRefResult> {
  const chunkSize = o.chunkSize ?? RAFS_DEFAULT_CHUNK_SIZE;
  checkOptions(o);
  // The outputs are opened before the source, as upstream opens them: a reader waiting on
  // a FIFO `--blob` sees it end (short) if the build fails, rather than wait forever.
  const metaOut = o.blob ? await SequentialOutput.open(o.blob, outputMode(true)) : await SequentialOutput.open(join(o.blobDir as string, 'meta'), outputMode(false), false);
  let dataOut: SequentialOutput | undefined;
  let placed = false;
  try {
    // In a blob directory the data blob is the layer itself, copied from the same reads.
    if (o.blobDir) dataOut = await SequentialOutput.open(join(o.blobDir, 'layer'), outputMode(false), false);
    const { root, zran, chunker } = await indexLayer(o, chunkSize, dataOut);
    const blobId = zran.digest();
    const chunkCount = chunker.entries.length;
    let features = TARGZ_REF_FEATURES;
    if (o.inlineMeta) features |= BlobFeatures.INLINED_FS_META | BlobFeatures.HAS_TAR_HEADER;
    if (o.blobToc) features |= BlobFeatures.HAS_TOC | BlobFeatures.HAS_TAR_HEADER | (chunkCount > 0 ? BlobFeatures.INLINED_CHUNK_DIGEST : 0);
    const meta = encodeBlobMeta(chunker, zran.contexts, features);
    const toc = o.blobToc ? new BlobToc() : undefined;
    const parts = metaSection(meta, 0, o.inlineMeta ?? false, toc);
    const metaSize = meta.stored.length + meta.header.length;
    const metaDigest = createHash('sha256').update(meta.stored).update(meta.header).digest();

    const blob: OutBlob = {
      blobId,
      chunkSize,
      chunkCount,
      compressor: 'gzip',
      digester: 'sha256',
      features,
      compressedSize: zran.compressedSize,
      uncompressedSize: chunker.uncompressedSize,
      readaheadOffset: 0,
      readaheadSize: 0,
      ciCompressor: meta.compressor,
      ciOffset: 0,
      ciCompressedSize: meta.stored.length,
      ciUncompressedSize: meta.plain.length,
      // An inlined bootstrap cannot hold the digests of the file it sits in: `merge` takes
      // them from the converter's lists (--blob-digests, --blob-sizes, --blob-toc-digests).
      blobTocSize: 0,
      blobTocDigest: Buffer.alloc(32),
      blobMetaDigest: o.inlineMeta ? Buffer.alloc(32) : metaDigest,
      blobMetaSize: o.inlineMeta ? 0 : metaSize,
    };
    const spec: ImageSpec = { root, version: 6, chunkSize, compressor: 'gzip', digester: 'sha256', explicitUidGid: !o.repeatable, blobs: [blob], prefetch: [] };
    const bytes = writeV6Bootstrap(spec);
    await validateMetadata(parseBootstrap(bytes));
    // Upstream's order after the meta: chunk digests, bootstrap, ToC.
    if (toc && chunkCount > 0) parts.push(...digestSection(chunker.digests(), sum(parts), toc));
    if (o.inlineMeta) parts.push(...bootstrapSection(bytes, sum(parts), toc));
    if (toc) parts.push(toc.encode().bytes);

    const hash = createHash('sha256');
    for (const part of parts) {
      hash.update(part);
      await metaOut.write(part);
    }
    const metaId = o.inlineMeta ? hash.digest('hex') : metaDigest.toString('hex');
    const metaPath = o.blob ?? join(o.blobDir as string, metaId);
    await metaOut.commit(metaPath);
    if (dataOut) await dataOut.commit(join(o.blobDir as string, blobId));
    placed = true;
    const result = { blobId, compressedSize: zran.compressedSize, metaId, metaPath, chunkCount, contextCount: zran.contexts.length };
    if (o.inlineMeta) return { bootstrap: metaPath, ...result };
    const bootstrap = o.bootstrap ?? join(o.blobDir as string, createHash('sha256').update(bytes).digest('hex'));
    writeFileAtomic(bootstrap, bytes, outputMode(o.bootstrap !== undefined));
    return { bootstrap, ...result };
  } finally {
    if (!placed) {
      await metaOut.discard();
      await dataOut?.discard();
    }
  }
}

function sum(parts: readonly Buffer[]): number {
  return parts.reduce((n, p) => n + p.length, 0);
}
