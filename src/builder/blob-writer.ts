// Writes the one new data blob of a build (docs/format.md §3.10, §7): stored chunks in
// order of first appearance, then for v6 the chunk-info array and the 4 KiB meta header,
// with `blob-toc` or inlined metadata each section followed by a "reverse tar" header,
// then (blob-toc) the chunk digest array, (inline) the bootstrap `image.boot`, and
// (blob-toc) the ToC. Every byte is written once, in order, with no seek: the file may be
// a FIFO the caller reads as we go. The blob id is sha256 of the file, minus the digest
// payload for a blob-toc blob without inlined metadata (upstream); an inline-meta blob's
// id is the sha256 of the whole file, so that it equals the registry digest.
// `seal` ends the data sections, `appendBootstrap` inlines the bootstrap, `end` writes the
// ToC and closes; `finish` does all three for a blob without inlined metadata.
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { BuildError } from '../errors.js';
import { BlobFeatures, compressorToId, RAFS_MAX_CHUNKS_PER_BLOB, writeU64 } from '../rafs/layout/common.js';
import { EROFS_BLOCK_SIZE } from '../rafs/layout/v6.js';
import type { Compressor } from '../storage/types.js';
import { compress } from '../storage/codec.js';
import { BlobToc, bootstrapSection, digestSection, metaSection, reverseTarHeader } from './blob-sections.js';

export const BLOB_META_MAGIC = 0xb10b_b10b;
export const BLOB_META_HEADER_SIZE = 4096;
const CI_V1_SIZE = 16;

export interface BlobWriterOptions {
  version: 5 | 6;
  compressor: Compressor;
  /** Uncompressed offsets 4 KiB aligned (always for v6, `--aligned-chunk` for v5). */
  aligned: boolean;
  /**
   * Stored bytes of each chunk start at its uncompressed offset (v6 with compressor
   * none), so that the blob file itself is the uncompressed view the kernel reads.
   */
  storeAtUncompressedOffset: boolean;
  /** `--features blob-toc` (v6 only). */
  toc: boolean;
  /** Mode the file is created with, less the umask (output.ts `outputMode`). */
  mode: number;
  /** `--blob-inline-meta`: the bootstrap follows the blob's sections. */
  inlineMeta?: boolean;
}

/** Where one stored chunk landed. */
export interface StoredChunk {
  index: number;
  compressedOffset: number;
  compressedSize: number;
  uncompressedOffset: number;
}

/** The finished blob, as the blob table describes it. */
export interface FinishedBlob {
  blobId: string;
  chunkCount: number;
  /** Size of the whole blob file. */
  compressedSize: number;
  /** Size of the blob's uncompressed address space. */
  uncompressedSize: number;
  /** Bytes of stored chunk data (before any meta). */
  dataSize: number;
  features: number;
  ciCompressor: Compressor;
  ciOffset: number;
  ciCompressedSize: number;
  ciUncompressedSize: number;
  blobTocSize: number;
  blobTocDigest: Buffer;
}

/** The data and meta sections of a blob, as the blob table describes them before `end`. */
export type SealedBlob = Omit<FinishedBlob, 'blobId' | 'blobTocSize' | 'blobTocDigest'>;

export class BlobWriter {
  private readonly fd: number;
  /** The blob id hash (upstream leaves the digest array out of it). */
  private readonly hash: Hash = createHash('sha256');
  /** Every byte of the file. */
  private readonly fileHash: Hash = createHash('sha256');
  private pos = 0;
  private uncompressedEnd = 0;
  private readonly ci: Buffer[] = [];
  private readonly digests: Buffer[] = [];
  private readonly toc = new BlobToc();
  private sealed?: SealedBlob;
  private closed = false;

  /**
   * `path` is created (`wx`), or with `direct` opened as it is: an existing FIFO or
   * device the caller reads from, which is never removed.
   */
  constructor(
    readonly tmpPath: string,
    private readonly opts: BlobWriterOptions,
    readonly direct = false,
  ) {
    this.fd = openSync(tmpPath, direct ? 'w' : 'wx', opts.mode);
  }

  get chunkCount(): number {
    return this.ci.length;
  }

  /** Bytes written so far. */
  get size(): number {
    return this.pos;
  }

  private write(buf: Buffer, hashed = true): void {
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off, null);
    if (hashed) this.hash.update(buf);
    this.fileHash.update(buf);
    this.pos += buf.length;
  }

  /** Tar headers after each section: with a ToC and with inlined metadata (upstream). */
  private get tarHeaders(): boolean {
    return this.opts.toc || (this.opts.inlineMeta ?? false);
  }

  /** Appends one new chunk; `stored` is what goes into the file (compressed or raw). */
  append(stored: Buffer, uncompressedSize: number, digest: Buffer): StoredChunk {
    if (this.ci.length >= RAFS_MAX_CHUNKS_PER_BLOB - 1) {
      throw new BuildError('ERR_BUILD_LIMIT', `failed to add chunk: a blob holds at most ${RAFS_MAX_CHUNKS_PER_BLOB - 1} chunks`);
    }
    const uncompressedOffset = this.uncompressedEnd;
    const span = this.opts.aligned ? align4k(uncompressedSize) : uncompressedSize;
    this.uncompressedEnd += span;
    if (this.opts.storeAtUncompressedOffset && this.pos < uncompressedOffset) {
      this.write(Buffer.alloc(uncompressedOffset - this.pos));
    }
    const compressedOffset = this.pos;
    this.write(stored);
    const index = this.ci.length;
    if (this.opts.version === 6) {
      this.ci.push(encodeCiV1(compressedOffset, stored.length, uncompressedOffset, uncompressedSize));
      this.digests.push(digest);
    } else {
      this.ci.push(EMPTY);
    }
    return { index, compressedOffset, compressedSize: stored.length, uncompressedOffset };
  }

  /** Writes the blob's trailer (v6 meta, ToC) and closes; the caller renames the temp file. */
  finish(): FinishedBlob {
    this.seal();
    return this.end();
  }

  /**
   * Ends the chunk data and writes the meta sections (v6: chunk-info array, meta header,
   * with blob-toc the digest array). What it returns is what the blob table records.
   */
  seal(): SealedBlob {
    const o = this.opts;
    const dataSize = this.pos;
    if (o.storeAtUncompressedOffset && this.pos < this.uncompressedEnd) this.write(Buffer.alloc(this.uncompressedEnd - this.pos));
    let features = 0;
    let ciCompressor: Compressor = 'none';
    let ciOffset = 0;
    let ciCompressedSize = 0;
    let ciUncompressedSize = 0;
    if (this.tarHeaders) {
      // The entry names the data section exactly: offset 0, its digest. Upstream's points
      // where the header starts and hashes the header too (docs/format.md §7.6), which
      // makes the converter's Unpack, which seeks image.blob by the ToC, copy wrong bytes.
      // The section is everything before its header, zero padding included.
      const section = this.pos;
      if (o.toc) this.toc.add('image.blob', 'none', this.hash.copy().digest(), 0, section, this.uncompressedEnd);
      this.write(reverseTarHeader('image.blob', section));
    }
    if (o.version === 6) {
      features = BlobFeatures.ALIGNED | BlobFeatures.CAP_TAR_TOC;
      if (o.toc) features |= BlobFeatures.HAS_TOC | BlobFeatures.HAS_TAR_HEADER | BlobFeatures.INLINED_CHUNK_DIGEST;
    } else {
      features = BlobFeatures.CAP_TAR_TOC;
    }
    if (o.inlineMeta) features |= BlobFeatures.INLINED_FS_META | BlobFeatures.HAS_TAR_HEADER;
    // Upstream writes no blob meta for a v6 blob without chunks.
    if (o.version === 6 && this.ci.length > 0) {
      const array = Buffer.concat(this.ci);
      const c = compress(o.compressor, array);
      ciCompressor = c.compressed ? o.compressor : 'none';
      ciOffset = this.pos;
      ciCompressedSize = c.data.length;
      ciUncompressedSize = array.length;
      const header = encodeMetaHeader(features, ciCompressor, this.ci.length, ciOffset, ciCompressedSize, ciUncompressedSize);
      const toc = o.toc ? this.toc : undefined;
      for (const part of metaSection({ plain: array, stored: c.data, compressor: ciCompressor, header }, ciOffset, this.tarHeaders, toc)) this.write(part);
      if (toc) {
        // The digest array is outside the blob id (docs/format.md §7.7).
        const [digests, tarHeader] = digestSection(Buffer.concat(this.digests), this.pos, toc);
        this.write(digests, false);
        this.write(tarHeader);
      }
    }
    this.sealed = {
      chunkCount: this.ci.length,
      compressedSize: this.pos,
      uncompressedSize: this.uncompressedEnd,
      dataSize,
      features,
      ciCompressor,
      ciOffset,
      ciCompressedSize,
      ciUncompressedSize,
    };
    return this.sealed;
  }

  /**
   * Inlines the bootstrap after the sealed sections: zstd-compressed when that is smaller
   * and the blob has a ToC, raw otherwise (upstream), followed by its `image.boot` header.
   */
  appendBootstrap(bootstrap: Buffer): void {
    for (const part of bootstrapSection(bootstrap, this.pos, this.opts.toc ? this.toc : undefined)) this.write(part);
  }

  /** Writes the ToC (blob-toc) and closes. */
  end(): FinishedBlob {
    const sealed = this.sealed ?? this.seal();
    let blobTocSize = 0;
    let blobTocDigest: Buffer = Buffer.alloc(32);
    if (this.opts.toc && this.opts.version === 6) {
      const toc = this.toc.encode();
      this.write(toc.bytes);
      blobTocSize = toc.size;
      blobTocDigest = toc.digest;
    }
    // No fsync: renaming a complete temp file is what makes an interrupted build safe;
    // durability against power loss is not promised (neither upstream nor mkfs.erofs do).
    this.close();
    const blobId = (this.opts.inlineMeta ? this.fileHash : this.hash).digest('hex');
    return { ...sealed, blobId, compressedSize: this.pos, blobTocSize, blobTocDigest };
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  /** Closes and removes the temp file (a direct output is only closed). */
  abort(): void {
    this.close();
    if (this.direct) return;
    try {
      unlinkSync(this.tmpPath);
    } catch {
      // already gone
    }
  }
}

const EMPTY = Buffer.alloc(0);

function align4k(n: number): number {
  return Math.ceil(n / EROFS_BLOCK_SIZE) * EROFS_BLOCK_SIZE;
}

/** A v1 chunk-info entry (docs/format.md §7.3). */
export function encodeCiV1(compressedOffset: number, compressedSize: number, uncompressedOffset: number, uncompressedSize: number): Buffer {
  const u = BigInt(uncompressedSize - 1);
  const c = BigInt(compressedSize - 1);
  const uncomp = BigInt(uncompressedOffset) | (((u >> 20n) & 0xfn) << 8n) | ((u & 0xfffffn) << 44n);
  const comp = BigInt(compressedOffset) | (((c >> 20n) & 0xfn) << 40n) | ((c & 0xfffffn) << 44n);
  const buf = Buffer.alloc(CI_V1_SIZE);
  buf.writeBigUInt64LE(uncomp, 0);
  buf.writeBigUInt64LE(comp, 8);
  return buf;
}

/** The blob meta header (docs/format.md §7.2). */
export function encodeMetaHeader(
  features: number,
  ciCompressor: Compressor,
  entries: number,
  ciOffset: number,
  ciCompressedSize: number,
  ciUncompressedSize: number,
): Buffer {
  const h = Buffer.alloc(BLOB_META_HEADER_SIZE);
  h.writeUInt32LE(BLOB_META_MAGIC, 0);
  h.writeUInt32LE(features >>> 0, 4);
  h.writeUInt32LE(compressorToId(ciCompressor), 8);
  h.writeUInt32LE(entries, 12);
  writeU64(h, 16, ciOffset);
  writeU64(h, 24, ciCompressedSize);
  writeU64(h, 32, ciUncompressedSize);
  h.writeUInt32LE(BLOB_META_MAGIC, 4092);
  return h;
}

