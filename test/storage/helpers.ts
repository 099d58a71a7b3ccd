// Storage test helpers: temp dirs, a builder of real blob files (chunks compressed with
// the builder's rule, named by sha256 like nydus-image names them), and a reader of the
// chunk-info and digest arrays a v6 blob-toc blob carries (docs/format.md §7.1–7.6).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { BlobInfo, ChunkInfo, Compressor, Digester } from '../../src/storage/types.js';
import { compress } from '../../src/storage/codec.js';
import { digest } from '../../src/storage/digest.js';

/** A fresh directory under /tmp, removed when the test ends. */
export function tmpDir(t: TestContext, prefix = 'storage'): string {
  const dir = mkdtempSync(join('/tmp', `${prefix}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `n` bytes that compress well but are not trivial. */
export function compressible(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    if (i % 64 === 0) x = (x * 1103515245 + 12345) >>> 0;
    b[i] = 0x41 + ((x >>> (i % 24)) & 0x0f);
  }
  return b;
}

export interface TestBlob {
  blob: BlobInfo;
  /** One ChunkInfo per chunk, in blob order, file offsets as if one file held them all. */
  chunks: ChunkInfo[];
  /** Uncompressed contents of each chunk. */
  data: Buffer[];
  path: string;
  /** The whole blob file. */
  bytes: Buffer;
}

/**
 * Writes a blob of `contents` (one chunk each) into `dir`, named by the sha256 of the file.
 * `gap` bytes of filler separate stored chunks (0 = back to back, as nydus-image writes).
 */
export function buildBlob(
  dir: string,
  contents: Buffer[],
  opts: { compressor?: Compressor; digester?: Digester; gap?: number; blobIndex?: number; chunkSize?: number } = {},
): TestBlob {
  const compressor = opts.compressor ?? 'zstd';
  const digester = opts.digester ?? 'blake3';
  const gap = opts.gap ?? 0;
  const blobIndex = opts.blobIndex ?? 0;
  const parts: Buffer[] = [];
  const chunks: ChunkInfo[] = [];
  let cOff = 0;
  let uOff = 0;
  let fileOff = 0;
  contents.forEach((data, index) => {
    const { data: stored, compressed } = compress(compressor, data);
    chunks.push({
      digest: digest(digester, data),
      blobIndex,
      index,
      compressed,
      compressedOffset: cOff,
      compressedSize: stored.length,
      uncompressedOffset: uOff,
      uncompressedSize: data.length,
      fileOffset: fileOff,
    });
    parts.push(stored);
    cOff += stored.length;
    if (gap > 0 && index < contents.length - 1) {
      parts.push(randomBytes(gap));
      cOff += gap;
    }
    uOff += Math.ceil(data.length / 4096) * 4096;
    fileOff += data.length;
  });
  const bytes = Buffer.concat(parts);
  const blobId = createHash('sha256').update(bytes).digest('hex');
  const path = join(dir, blobId);
  writeFileSync(path, bytes);
  const blob: BlobInfo = {
    index: blobIndex,
    blobId,
    chunkSize: opts.chunkSize ?? 0x100000,
    chunkCount: contents.length,
    compressedSize: bytes.length,
    uncompressedSize: uOff,
    compressor,
    digester,
    features: 0,
    readaheadOffset: 0,
    readaheadSize: 0,
    metaCiCompressor: 'none',
    metaCiOffset: 0,
    metaCiCompressedSize: 0,
    metaCiUncompressedSize: 0,
    blobTocSize: 0,
  };
  return { blob, chunks, data: contents, path, bytes };
}

/** One ToC entry of a blob-toc blob (§7.6). */
export interface TocEntry {
  name: string;
  flags: number;
  compressedOffset: number;
  compressedSize: number;
  uncompressedSize: number;
  uncompressedDigest: Buffer;
}

/** Reads the ToC at the end of a v6 blob-toc blob: entries precede the last 512-byte tar header. */
export function readToc(blobBytes: Buffer): TocEntry[] {
  const header = blobBytes.subarray(blobBytes.length - 512);
  const name = header.toString('latin1', 0, 100).replace(/\0.*$/s, '');
  if (name !== 'rafs.blob.toc') throw new Error(`last tar header is ${JSON.stringify(name)}, not rafs.blob.toc`);
  const size = parseInt(header.toString('latin1', 124, 135), 8);
  const start = blobBytes.length - 512 - size;
  const entries: TocEntry[] = [];
  for (let off = start; off < start + size; off += 128) {
    const e = blobBytes.subarray(off, off + 128);
    entries.push({
      flags: e.readUInt32LE(0),
      name: e.toString('latin1', 8, 24).replace(/\0.*$/s, ''),
      uncompressedDigest: Buffer.from(e.subarray(24, 56)),
      compressedOffset: Number(e.readBigUInt64LE(56)),
      compressedSize: Number(e.readBigUInt64LE(64)),
      uncompressedSize: Number(e.readBigUInt64LE(72)),
    });
  }
  return entries;
}

/** ChunkInfos of a blob-toc blob from its v1 chunk-info array (§7.3) and `blob.digest` array (§7.5). */
export function chunksFromBlobMeta(blobBytes: Buffer, blobIndex = 0): ChunkInfo[] {
  const toc = readToc(blobBytes);
  const meta = toc.find((e) => e.name === 'blob.meta');
  const digests = toc.find((e) => e.name === 'blob.digest');
  if (meta === undefined || digests === undefined) throw new Error('blob has no blob.meta or blob.digest');
  if (meta.compressedSize !== meta.uncompressedSize) throw new Error('compressed chunk-info arrays are not handled here');
  const ci = blobBytes.subarray(meta.compressedOffset, meta.compressedOffset + meta.compressedSize);
  const out: ChunkInfo[] = [];
  for (let i = 0; i * 16 < ci.length; i++) {
    const uncomp = ci.readBigUInt64LE(i * 16);
    const comp = ci.readBigUInt64LE(i * 16 + 8);
    const uSize = Number(((uncomp >> 44n) & 0xfffffn) | (((uncomp >> 8n) & 0xfn) << 20n)) + 1;
    const cSize = Number(((comp >> 44n) & 0xfffffn) | (((comp >> 40n) & 0xfn) << 20n)) + 1;
    out.push({
      digest: Buffer.from(blobBytes.subarray(digests.compressedOffset + 32 * i, digests.compressedOffset + 32 * i + 32)),
      blobIndex,
      index: i,
      compressed: cSize !== uSize,
      compressedOffset: Number(comp & 0xff_ffff_ffffn),
      compressedSize: cSize,
      uncompressedOffset: Number(uncomp & 0xfff_ffff_f000n),
      uncompressedSize: uSize,
      fileOffset: 0,
    });
  }
  return out;
}
