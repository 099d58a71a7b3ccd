// The "nydus tar" framing of blob sections (docs/format.md §7.1, §7.5, §7.6): each
// section is followed by a 512-byte GNU tar header naming it, so that a reader finds
// them walking back from the end of the file; with `--features blob-toc` the file ends
// with a ToC of 128-byte entries under its own header. Shared by the data-blob writer
// (blob-writer.ts) and the targz-ref meta blob (targz-ref.ts). Each helper returns the
// bytes in file order and, given a ToC, records the entries for them: the caller writes
// front to back, so the file may be a FIFO.
import { createHash } from 'node:crypto';
import { writeU64 } from '../rafs/layout/common.js';
import type { Compressor } from '../storage/types.js';
import { compress } from '../storage/codec.js';

const TAR_BLOCK = 512;
const TOC_ENTRY_SIZE = 128;
const TOC_FLAGS: Record<Compressor, number> = { none: 0x1, zstd: 0x2, lz4_block: 0x4, gzip: 0 };

function sha256(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

/** The GNU tar header upstream writes after each blob section (docs/format.md §7.1). */
export function reverseTarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(TAR_BLOCK);
  h.write(name, 0, 100, 'latin1');
  h.write(size.toString(8).padStart(11, '0'), 124, 11, 'latin1');
  h.write('00000000000', 136, 11, 'latin1');
  h[156] = 0x30;
  h.write('ustar  \u0000', 257, 8, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += h[i];
  h.fill(0, 148, 156);
  h.write(sum.toString(8).padStart(7, '0'), 148, 7, 'latin1');
  return h;
}

/** The ToC entries of a blob, in the order its sections were written. */
export class BlobToc {
  private readonly entries: Buffer[] = [];

  /** One entry (docs/format.md §7.6); `digest` is the sha256 of the uncompressed payload. */
  add(name: string, c: Compressor, digest: Buffer, offset: number, compressedSize: number, uncompressedSize: number): void {
    const e = Buffer.alloc(TOC_ENTRY_SIZE);
    e.writeUInt32LE(TOC_FLAGS[c], 0);
    e.write(name, 8, 16, 'latin1');
    digest.copy(e, 24);
    writeU64(e, 56, offset);
    writeU64(e, 64, compressedSize);
    writeU64(e, 72, uncompressedSize);
    this.entries.push(e);
  }

  /**
   * The ToC section, the blob's last bytes (entries, then the `rafs.blob.toc` header), with
   * the blob table's `blob_toc_size` and `blob_toc_digest` for it (both cover the header).
   */
  encode(): { bytes: Buffer; size: number; digest: Buffer } {
    const entries = Buffer.concat(this.entries);
    const bytes = Buffer.concat([entries, reverseTarHeader('rafs.blob.toc', entries.length)]);
    return { bytes, size: bytes.length, digest: sha256(bytes) };
  }
}

/** A blob meta section: the chunk-info data as stored, then the meta header. */
export interface MetaSection {
  /** The uncompressed chunk-info data (the ToC digest covers it). */
  plain: Buffer;
  stored: Buffer;
  compressor: Compressor;
  header: Buffer;
}

/**
 * The blob meta at `offset`: stored data, header and (`tarHeader`) one `blob.meta` tar
 * header over both; the ToC gets `blob.meta` and `blob.meta.header`.
 */
export function metaSection(m: MetaSection, offset: number, tarHeader: boolean, toc?: BlobToc): Buffer[] {
  const out = [m.stored, m.header];
  if (tarHeader) out.push(reverseTarHeader('blob.meta', m.stored.length + m.header.length));
  if (toc) {
    toc.add('blob.meta', m.compressor, sha256(m.plain), offset, m.stored.length, m.plain.length);
    toc.add('blob.meta.header', 'none', sha256(m.header), offset + m.stored.length, m.header.length, m.header.length);
  }
  return out;
}

/** The chunk digest array at `offset` and its `blob.digest` header (never compressed). */
export function digestSection(digests: Buffer, offset: number, toc: BlobToc): [payload: Buffer, header: Buffer] {
  toc.add('blob.digest', 'none', sha256(digests), offset, digests.length, digests.length);
  return [digests, reverseTarHeader('blob.digest', digests.length)];
}

/**
 * An inlined bootstrap at `offset` and its `image.boot` header: with a ToC zstd-compressed
 * when that is smaller, else raw (upstream).
 */
export function bootstrapSection(bootstrap: Buffer, offset: number, toc?: BlobToc): Buffer[] {
  const c = toc ? compress('zstd', bootstrap) : { data: bootstrap, compressed: false };
  toc?.add('image.boot', c.compressed ? 'zstd' : 'none', sha256(bootstrap), offset, c.data.length, bootstrap.length);
  return [c.data, reverseTarHeader('image.boot', c.data.length)];
}
