// `nydus-image create -t estargz-ref LAYER` and `-t estargztoc-ref TOC`: an image over
// an unconverted eStargz layer, built from its table of contents alone. The data blob is
// the layer, byte for byte, named by its sha256; each chunk is the gzip member the TOC
// names, read from its start (storage/gzip-member.ts). As upstream's stargz builder lays
// it out: v6, gzip chunks with the layer's own sha256 chunk digests, blob features
// ALIGNED | CAP_TAR_TOC (no v2 chunk-info array, no zran, no blob meta): the bootstrap's
// chunk table holds every chunk's place in the layer. No chunk data is read or
// recompressed, so building costs a TOC read (plus hashing the layer for estargz-ref).
// `convert` hands in a TOC it read from a registry (createEstargzRefFromToc), and picks
// one chunk size for all of an image's layers with tocChunkSize.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { alignUp, BlobFeatures, isValidChunkSize } from '../rafs/layout/common.js';
import { EROFS_BLOCK_SIZE } from '../rafs/layout/v6.js';
import { parseBootstrap } from '../rafs/reader/open.js';
import type { ChunkInfo } from '../storage/types.js';
import { validateMetadata } from '../rafs/validate.js';
import { writeV6Bootstrap } from './bootstrap-v6.js';
import { readLayerToc, readTocFile, type EstargzLayerToc, type TocEntry } from './estargz-toc.js';
import type { ImageSpec, OutBlob } from './image-spec.js';
import { copyFileAtomic, outputMode, writeFileAtomic } from './output.js';
import { inodeOf, lookup, parentDir, placeInode, splitTarPath, type TarSourceOptions } from './source-tar.js';
import { isReg, nameKey, newDir, type BuildInode } from './tree.js';
import type { TarMember } from '../util/tar-reader.js';

export const ESTARGZ_REF_FEATURES = BlobFeatures.ALIGNED | BlobFeatures.CAP_TAR_TOC;
/** Files of the eStargz format itself, not of the image (upstream skips them too). */
const SPECIAL_FILES = new Set(['stargz.index.json', '.prefetch.landmark', '.no.prefetch.landmark']);
/** TOC entry types as the tar reader names member kinds. */
const TYPE_KIND = { dir: 'dir', reg: 'file', symlink: 'symlink', hardlink: 'hardlink', char: 'char', block: 'block', fifo: 'fifo' } as const;

export interface EstargzRefOptions {
  /** An eStargz layer (estargz-ref), or its TOC saved alone (estargztoc-ref, with `blobId`). */
  source: string;
  tocOnly?: boolean;
  /** estargztoc-ref: the layer's sha256 (hex). */
  blobId?: string;
  /** estargztoc-ref: the layer's size, when known (bounds the last chunk's read). */
  blobSize?: number;
  bootstrap?: string;
  /** Receives a copy of the layer under its digest (estargz-ref). */
  blobDir?: string;
  chunkSize?: number;
  repeatable?: boolean;
  warn?(message: string): void;
}

export interface EstargzRefResult {
  bootstrap: string;
  blobId: string;
  /** The layer's size (0 when estargztoc-ref was not told it). */
  compressedSize: number;
  chunkCount: number;
  chunkSize: number;
}

interface FileChunks {
  inode: BuildInode;
  size: number;
  parts: TocEntry[];
}

function fail(detail: string): BuildError {
  return new BuildError('ERR_BUILD_SOURCE', `failed to build from the eStargz TOC: ${detail}`);
}

/** Most compressed bytes a gzip member needs for `size` inflated bytes (deflate's stored-block bound plus header). */
function gzipBound(size: number): number {
  return size + Math.ceil(size / 16384) * 5 + 10 + 8 + 5 + 128;
}

/** The uncompressed bytes of one reg/chunk entry of a file of `size` bytes. */
function partSize(e: TocEntry, size: number): number {
  return e.chunkSize !== 0 ? e.chunkSize : size - e.chunkOffset;
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(piece as Buffer);
  return h.digest('hex');
}

/** A TOC entry as the tar reader would have described its tar member. */
function asMember(e: TocEntry, path: Buffer): TarMember {
  const mtime = e.modtime === undefined ? 0 : Date.parse(e.modtime);
  const seconds = Number.isFinite(mtime) ? Math.floor(mtime / 1000) : 0;
  return {
    kind: TYPE_KIND[e.type as keyof typeof TYPE_KIND],
    path,
    linkname: Buffer.from(e.linkName),
    mode: e.mode & 0o7777,
    uid: e.uid,
    gid: e.gid,
    size: e.type === 'reg' ? e.size : 0,
    mtime: seconds,
    mtimeNsec: 0,
    devmajor: e.devMajor,
    devminor: e.devMinor,
    xattrs: Object.entries(e.xattrs).map(([k, v]) => [Buffer.from(k), Buffer.from(v, 'base64')]),
  };
}

/** The tree the TOC describes; regular files' TOC parts by file, in TOC order. */
function buildTree(entries: readonly TocEntry[], opts: TarSourceOptions): { root: BuildInode; files: FileChunks[] } {
  const root = newDir();
  const files = new Map<string, FileChunks>();
  for (const e of entries) {
    const raw = Buffer.from(e.name.replace(/^\/+/, ''));
    const parts = splitTarPath(raw);
    const shown = JSON.stringify(e.name);
    if (parts.length === 1 && SPECIAL_FILES.has(parts[0].toString('latin1'))) continue;
    const key = parts.map((p) => nameKey(p)).join('/');
    if (e.type === 'chunk') {
      const f = files.get(key);
      if (f === undefined) throw fail(`chunk entry ${shown} comes before its file's reg entry`);
      f.parts.push(e);
      continue;
    }
    const m = asMember(e, raw);
    if (parts.length === 0) {
      if (e.type !== 'dir') throw fail(`entry ${shown} names the root but is not a directory`);
      Object.assign(root, { ...inodeOf(m, opts, shown), children: root.children });
      continue;
    }
    const dir = parentDir(root, parts, shown);
    const name = parts[parts.length - 1];
    if (e.type === 'hardlink') {
      const target = lookup(root, splitTarPath(Buffer.from(e.linkName.replace(/^\/+/, ''))));
      if (target === undefined || !isReg(target)) throw fail(`hard link ${shown}: target ${JSON.stringify(e.linkName)} is not a regular file seen before`);
      dir.children!.set(nameKey(name), { name, inode: target });
      continue;
    }
    const inode = inodeOf(m, opts, shown);
    if (!placeInode(dir, name, inode)) continue;
    if (e.type === 'reg') {
      inode.chunks = [];
      if (e.size > 0) files.set(key, { inode, size: e.size, parts: [e] });
      else files.delete(key);
    }
  }
  return { root, files: [...files.values()] };
}

/** The chunk size the TOC's chunking fits: `given`, or the smallest power of two holding every part. */
function pickChunkSize(files: readonly FileChunks[], given: number | undefined): number {
  let largest = 0;
  for (const f of files) for (const p of f.parts) largest = Math.max(largest, partSize(p, f.size));
  let size = given ?? 0x1000;
  if (given === undefined) while (size < largest) size *= 2;
  if (!isValidChunkSize(size)) throw fail(`chunk size 0x${size.toString(16)} is not a power of two in 0x1000..0x1000000 (the layer's largest chunk is ${largest} bytes)`);
  for (const f of files) {
    f.parts.sort((a, b) => a.chunkOffset - b.chunkOffset);
    let pos = 0;
    f.parts.forEach((p, i) => {
      const n = partSize(p, f.size);
      const last = i === f.parts.length - 1;
      // RAFS v6 finds chunk k of a file at k × chunk size: every chunk but the last must be full.
      if (p.chunkOffset !== pos || n <= 0 || n > size || (!last && n !== size) || (last && pos + n !== f.size)) {
        throw fail(
          `the chunks of ${JSON.stringify(p.name)} do not fit chunk size 0x${size.toString(16)} ` +
            `(part at ${p.chunkOffset} of ${n} bytes in a ${f.size}-byte file)` + (given !== undefined ? '; try without --chunk-size' : ''),
        );
      }
      pos += n;
    });
  }
  return size;
}

/**
 * Gives every part its chunk: index and uncompressed offset in TOC (= layer) order, and
 * the stored span from its member's offset to the next member that holds a chunk (or
 * `dataEnd`, the TOC's member; unknown for estargztoc-ref without a size: bounded).
 */
function assignChunks(files: readonly FileChunks[], blobSize: number | undefined, dataEnd: number | undefined): { count: number; uncompressed: number } {
  const all: { file: FileChunks; part: TocEntry; chunk: ChunkInfo }[] = [];
  for (const file of files) {
    file.inode.chunks = file.parts.map((part) => {
      const chunk: ChunkInfo = {
        digest: Buffer.from(part.chunkDigest.slice('sha256:'.length), 'hex'),
        blobIndex: 0,
        index: 0,
        compressed: true,
        compressedOffset: part.offset,
        compressedSize: 0,
        uncompressedOffset: 0,
        uncompressedSize: partSize(part, file.size),
        fileOffset: part.chunkOffset,
      };
      all.push({ file, part, chunk });
      return chunk;
    });
  }
  all.sort((a, b) => a.chunk.compressedOffset - b.chunk.compressedOffset);
  let uncompressed = 0;
  all.forEach(({ part, chunk }, i) => {
    const next = i + 1 < all.length ? all[i + 1].chunk.compressedOffset : (dataEnd ?? blobSize);
    if (i + 1 < all.length && next === chunk.compressedOffset) throw fail(`two chunks share the gzip member at offset ${chunk.compressedOffset} (${JSON.stringify(part.name)})`);
    const bound = gzipBound(chunk.uncompressedSize);
    chunk.compressedSize = next === undefined ? bound : i + 1 < all.length ? next - chunk.compressedOffset : Math.min(next - chunk.compressedOffset, bound);
    if (chunk.compressedSize <= 0) throw fail(`chunk of ${JSON.stringify(part.name)} at offset ${chunk.compressedOffset} lies outside the layer`);
    chunk.index = i;
    chunk.uncompressedOffset = uncompressed;
    uncompressed += alignUp(chunk.uncompressedSize, EROFS_BLOCK_SIZE);
  });
  return { count: all.length, uncompressed };
}

/** Builds an estargz-ref / estargztoc-ref image; nothing is left behind when it fails. */
export async function createEstargzRefImage(o: EstargzRefOptions): Promise<EstargzRefResult> {
  if (!o.bootstrap && !o.blobDir) throw new BuildError('ERR_BUILD_SOURCE', 'failed to create image: both --bootstrap and --blob-dir are missing');
  if (o.blobDir && !existsSync(o.blobDir)) throw new BuildError('ERR_BUILD_SOURCE', `failed to create image: blob directory ${o.blobDir} does not exist`);
  if (!existsSync(o.source) || !statSync(o.source).isFile()) throw new BuildError('ERR_BUILD_SOURCE', `failed to build from ${o.source}: not a regular file`);
  if (o.tocOnly) {
    if (o.blobId === undefined || !/^[0-9a-f]{64}$/.test(o.blobId)) throw new BuildError('ERR_BUILD_SOURCE', 'failed to create image: estargztoc-ref needs --blob-id, the layer\'s sha256 digest');
    return writeImage(await readTocFile(o.source), o.blobId, o.blobSize, undefined, o);
  }
  const toc = await readLayerToc(o.source);
  const blobId = await sha256Of(o.source);
  // The data blob is the layer itself; in a blob directory it sits under its digest.
  return writeImage(toc.entries, blobId, toc.layerSize, toc.tocOffset, o, () => {
    if (o.blobDir) copyFileAtomic(o.source, join(o.blobDir, blobId));
  });
}

export interface EstargzTocImageOptions {
  /** The layer's TOC, as read from it (`tocOffset` bounds its last chunk). */
  toc: EstargzLayerToc;
  /** The layer's sha256 (hex). */
  blobId: string;
  bootstrap: string;
  chunkSize?: number;
  repeatable?: boolean;
  warn?(message: string): void;
}

/** Builds the bootstrap of an eStargz layer from its TOC, read by the caller from wherever the layer is (a registry). */
export async function createEstargzRefFromToc(o: EstargzTocImageOptions): Promise<EstargzRefResult> {
  if (!/^[0-9a-f]{64}$/.test(o.blobId)) throw new BuildError('ERR_BUILD_SOURCE', `failed to create image: blob id ${JSON.stringify(o.blobId)} is not a sha256 digest`);
  return writeImage(o.toc.entries, o.blobId, o.toc.layerSize, o.toc.tocOffset, o);
}

/**
 * The chunk size a TOC's chunking asks for: the smallest that holds its largest chunk,
 * and whether it is fixed (files split into several chunks need exactly that size) or
 * a lower bound (every file is one chunk: any larger size fits too).
 */
export function tocChunkSize(entries: readonly TocEntry[]): { chunkSize: number; fixed: boolean } {
  const { files } = buildTree(entries, { explicitUidGid: true, whiteoutSpec: 'oci', warn: () => undefined });
  return { chunkSize: pickChunkSize(files, undefined), fixed: files.some((f) => f.parts.length > 1) };
}

/**
 * The bootstrap of the layer `blobId` whose TOC holds `entries`, written to `o.bootstrap`
 * (or into `o.blobDir`) once it is built and valid, after `beforeWrite`.
 */
async function writeImage(
  entries: readonly TocEntry[],
  blobId: string,
  blobSize: number | undefined,
  dataEnd: number | undefined,
  o: Pick<EstargzRefOptions, 'bootstrap' | 'blobDir' | 'chunkSize' | 'repeatable' | 'warn'>,
  beforeWrite: () => unknown = () => undefined,
): Promise<EstargzRefResult> {
  const opts: TarSourceOptions = { explicitUidGid: !o.repeatable, whiteoutSpec: 'oci', warn: o.warn ?? (() => undefined) };
  const { root, files } = buildTree(entries, opts);
  const chunkSize = pickChunkSize(files, o.chunkSize);
  const { count, uncompressed } = assignChunks(files, blobSize, dataEnd);
  let chunkEnd = 0;
  for (const f of files) for (const c of f.inode.chunks ?? []) chunkEnd = Math.max(chunkEnd, c.compressedOffset + c.compressedSize);
  if (blobSize !== undefined && chunkEnd > blobSize) throw fail(`chunks reach offset ${chunkEnd}, past the layer's ${blobSize} bytes`);

  const blob: OutBlob = {
    blobId,
    chunkSize,
    chunkCount: count,
    compressor: 'gzip',
    digester: 'sha256',
    features: ESTARGZ_REF_FEATURES,
    compressedSize: blobSize ?? chunkEnd,
    uncompressedSize: uncompressed,
    readaheadOffset: 0,
    readaheadSize: 0,
    // No blob meta: the chunk table says where each chunk is (v1 chunk-info size, nothing stored).
    ciCompressor: 'none',
    ciOffset: 0,
    ciCompressedSize: 0,
    ciUncompressedSize: count * 16,
    blobTocSize: 0,
    blobTocDigest: Buffer.alloc(32),
    blobMetaDigest: Buffer.alloc(32),
    blobMetaSize: 0,
  };
  const spec: ImageSpec = { root, version: 6, chunkSize, compressor: 'gzip', digester: 'sha256', explicitUidGid: !o.repeatable, blobs: [blob], prefetch: [] };
  const bytes = writeV6Bootstrap(spec);
  await validateMetadata(parseBootstrap(bytes));
  beforeWrite();
  const bootstrap = o.bootstrap ?? join(o.blobDir as string, createHash('sha256').update(bytes).digest('hex'));
  writeFileAtomic(bootstrap, bytes, outputMode(o.bootstrap !== undefined));
  return { bootstrap, blobId, compressedSize: blobSize ?? 0, chunkCount: count, chunkSize };
}
