// `nydus-image create`: a directory or an OCI layer tar becomes a RAFS v5/v6 image (a
// data blob named by its id and a bootstrap). Order of work, as upstream: load the parent
// image and the chunk dictionary, build the layer's tree while chunking file data into
// the new blob (deduplicated against everything known), apply the layer over the parent,
// settle the blob table, write the bootstrap, read it back and validate it, then place
// blob and bootstrap atomically.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { isValidChunkSize, RAFS_DEFAULT_CHUNK_SIZE } from '../rafs/layout/common.js';
import { parseBootstrap } from '../rafs/reader/open.js';
import type { Compressor, Digester } from '../storage/types.js';
import { validateMetadata, type MetadataCounts } from '../rafs/validate.js';
import { BlobWriter, type SealedBlob } from './blob-writer.js';
import { writeV5Bootstrap } from './bootstrap-v5.js';
import { writeV6Bootstrap } from './bootstrap-v6.js';
import { ChunkPool } from './chunk-pool.js';
import { ChunkDict, Chunker, type DedupStats } from './chunker.js';
import { checkCompatible, loadImage, treeFromImage, type ImageSettings } from './from-bootstrap.js';
import type { ImageSpec, OutBlob } from './image-spec.js';
import { applyLayer, type WhiteoutSpec } from './overlay.js';
import { isSpecialFile, outputMode, placeFile, removeTemp, tempPathFor, writeFileAtomic } from './output.js';
import { prefetchFiles, resolvePattern, type PrefetchPolicy } from './prefetch.js';
import { silentProgress, type Progress } from './progress.js';
import { scanDirectory } from './source-dir.js';
import { buildTreeFromTar, openTarStream } from './source-tar.js';
import { indexOrder, isReg, type BuildInode } from './tree.js';

export type SourceType = 'dir-rafs' | 'tar-rafs' | 'targz-rafs';
export const SOURCE_TYPES: readonly SourceType[] = ['dir-rafs', 'tar-rafs', 'targz-rafs'];

export interface CreateOptions {
  source: string;
  type: SourceType;
  /** Bootstrap path; default: `<blobDir>/<sha256 of the bootstrap>`. */
  bootstrap?: string;
  /** Directory receiving the blob (named by its id) and, without `bootstrap`, the bootstrap. */
  blobDir?: string;
  /** Exact path of the blob file (instead of `blobDir/<id>`). */
  blob?: string;
  fsVersion: 5 | 6;
  compressor: Compressor;
  digester: Digester;
  chunkSize?: number;
  /** v5 only (v6 chunks are always aligned). */
  alignedChunk?: boolean;
  /** No uid/gid (all 0, EXPLICIT_UID_GID clear). */
  repeatable?: boolean;
  whiteoutSpec?: WhiteoutSpec;
  parentBootstrap?: string;
  chunkDict?: string;
  prefetchPolicy?: PrefetchPolicy;
  /** Prefetch patterns, already parsed (absolute paths as components). */
  prefetchPatterns?: Buffer[][];
  /** `--features blob-toc`. */
  blobToc?: boolean;
  /**
   * `--blob-inline-meta`: the bootstrap is also appended to the blob, whose table entry
   * then names it "x" * 64 (upstream): a reader takes the id from the file's name.
   */
  inlineMeta?: boolean;
  /** Worker threads for digesting/compressing (default: CPUs, at most 4). */
  workers?: number;
  progress?: Progress;
  warn?(message: string): void;
}

export interface BuildResult {
  /** The bootstrap file written, if any (an inline-meta build may write none). */
  bootstrap?: string;
  /** Blob ids of the image's blob table, in order. */
  blobs: string[];
  /** The blob written by this build, if any data was new. */
  blob?: { id: string; path: string; compressedSize: number; uncompressedSize: number; chunkCount: number };
  dedup: DedupStats;
  counts: MetadataCounts;
  /** Seconds spent per phase. */
  timings: Record<string, number>;
}

/** Checks the options the CLI cannot check by shape alone. */
export function checkCreateOptions(o: CreateOptions): void {
  const usage = (m: string): BuildError => new BuildError('ERR_BUILD_SOURCE', `failed to create image: ${m}`);
  const cs = o.chunkSize ?? RAFS_DEFAULT_CHUNK_SIZE;
  if (!isValidChunkSize(cs)) throw usage(`chunk size 0x${cs.toString(16)} must be a power of two in [0x1000, 0x1000000]`);
  if (o.blobToc && o.fsVersion !== 6) throw usage('--features blob-toc needs --fs-version 6');
  if (!o.blob && !o.blobDir) throw usage('both --blob and --blob-dir are missing');
  if (!o.bootstrap && !o.blobDir && !o.inlineMeta) throw usage('both --bootstrap and --blob-dir are missing');
  if (o.blobDir && !existsSync(o.blobDir)) throw usage(`blob directory ${o.blobDir} does not exist`);
  if (o.compressor === 'gzip') throw usage('compressor gzip is not supported for building');
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export async function createImage(o: CreateOptions): Promise<BuildResult> {
  checkCreateOptions(o);
  const t0 = process.hrtime.bigint();
  const timings: Record<string, number> = {};
  const warn = o.warn ?? (() => undefined);
  const progress = o.progress ?? silentProgress;
  const settings: ImageSettings = { version: o.fsVersion, chunkSize: o.chunkSize ?? RAFS_DEFAULT_CHUNK_SIZE, compressor: o.compressor, digester: o.digester };
  const dict = new ChunkDict();
  const blobs: OutBlob[] = [];
  const blobIndexById = new Map<string, number>();

  // Parent image: its blob table comes first and its chunks are known.
  let lower: BuildInode | undefined;
  if (o.parentBootstrap) {
    const parent = await loadImage(o.parentBootstrap, 'parent bootstrap');
    checkCompatible(parent, settings, 'parent bootstrap');
    parent.blobs.forEach((b, i) => {
      blobs.push(b);
      blobIndexById.set(b.blobId, i);
    });
    lower = treeFromImage(parent.sb, parent.blobs.map((_, i) => i));
    for (const inode of uniqueFiles(lower)) for (const c of inode.chunks ?? []) dict.add({ ...c, fileOffset: 0 }, 'parent');
  }
  // Chunk dictionary: its blobs are added (and kept only when referenced).
  const dictBlobs = new Set<number>();
  if (o.chunkDict) {
    const img = await loadImage(o.chunkDict, 'chunk dictionary');
    checkCompatible(img, settings, 'chunk dictionary');
    const map = img.blobs.map((b) => {
      let idx = blobIndexById.get(b.blobId);
      if (idx === undefined) {
        idx = blobs.push(b) - 1;
        blobIndexById.set(b.blobId, idx);
        dictBlobs.add(idx);
      }
      return idx;
    });
    for (const inode of uniqueFiles(treeFromImage(img.sb, map))) for (const c of inode.chunks ?? []) dict.add({ ...c, fileOffset: 0 }, 'dict');
  }
  timings.load_parents = seconds(t0);

  const newBlobIndex = blobs.length;
  const blobFinal = o.blob ?? join(o.blobDir as string, 'blob');
  // A FIFO (the converter's) or a device is written in place; a file appears complete.
  const direct = o.blob !== undefined && isSpecialFile(o.blob);
  const blobTmp = direct ? blobFinal : tempPathFor(blobFinal);
  const writer = new BlobWriter(
    blobTmp,
    {
      version: o.fsVersion,
      compressor: o.compressor,
      aligned: o.fsVersion === 6 || (o.alignedChunk ?? false),
      storeAtUncompressedOffset: o.fsVersion === 6 && o.compressor === 'none',
      mode: outputMode(o.blob !== undefined),
      toc: o.blobToc ?? false,
      inlineMeta: o.inlineMeta ?? false,
    },
    direct,
  );
  const pool = new ChunkPool(o.compressor, o.digester, o.workers ?? 2);
  let result: BuildResult | undefined;
  try {
    // Chunks in flight: about 64 MiB of data whatever the chunk size.
    const window = Math.max(4, Math.floor((64 << 20) / settings.chunkSize));
    const chunker = new Chunker(pool, writer, dict, newBlobIndex, settings.chunkSize, window, (n) => progress.bytes(n));
    const t1 = process.hrtime.bigint();
    const explicitUidGid = !o.repeatable;
    let upper: BuildInode;
    let prefetchBytes = 0;
    const patterns = o.prefetchPolicy && o.prefetchPolicy !== 'none' ? (o.prefetchPatterns ?? []) : [];
    progress.start(0);
    if (o.type === 'dir-rafs') {
      upper = scanDirectory(o.source, { explicitUidGid, warn }, () => progress.entry());
      prefetchBytes = await chunkDirectoryFiles(upper, chunker, writer, patterns, progress);
    } else {
      const st = statSync(o.source);
      if (!st.isFile() && !st.isFIFO()) throw new BuildError('ERR_BUILD_SOURCE', `failed to build from ${o.source}: not a regular file or FIFO`);
      // File bytes against the archive size: close for a plain tar, a lower bound for tar.gz.
      progress.total(st.size);
      upper = await buildTreeFromTar(await openTarStream(o.source), chunker, {
        explicitUidGid,
        whiteoutSpec: o.whiteoutSpec ?? 'oci',
        warn,
        onEntry: () => progress.entry(),
      });
    }
    await chunker.drain();
    progress.stop();
    timings.build_tree_and_blob = seconds(t1);

    const t2 = process.hrtime.bigint();
    const inline = o.inlineMeta ?? false;
    let sealed: SealedBlob | undefined;
    if (writer.chunkCount > 0 || inline) {
      // An inline-meta build always has a blob: it carries the bootstrap.
      sealed = writer.seal();
      blobs.push({
        // Upstream's placeholder: readers derive an inline-meta blob's id from its file name.
        blobId: inline ? INLINE_META_BLOB_ID : '',
        chunkSize: settings.chunkSize,
        chunkCount: sealed.chunkCount,
        compressor: o.compressor,
        digester: o.digester,
        features: sealed.features,
        compressedSize: sealed.compressedSize,
        uncompressedSize: sealed.uncompressedSize,
        readaheadOffset: 0,
        readaheadSize: o.prefetchPolicy === 'blob' ? prefetchBytes : 0,
        ciCompressor: sealed.ciCompressor,
        ciOffset: sealed.ciOffset,
        ciCompressedSize: sealed.ciCompressedSize,
        ciUncompressedSize: sealed.ciUncompressedSize,
        blobTocSize: 0,
        blobTocDigest: Buffer.alloc(32),
        blobMetaDigest: Buffer.alloc(32),
        blobMetaSize: 0,
      });
      if (!inline) {
        // The id is the blob's hash, known only once the ToC is written.
        const fin = writer.end();
        Object.assign(blobs[newBlobIndex], { blobId: fin.blobId, compressedSize: fin.compressedSize, blobTocSize: fin.blobTocSize, blobTocDigest: fin.blobTocDigest });
      }
    } else {
      writer.abort();
      if (!direct) removeTemp(blobTmp);
    }

    const root = lower ? applyLayer(lower, upper, o.whiteoutSpec ?? 'oci') : upper;
    const table = settleBlobTable(root, blobs, dictBlobs);
    const prefetch =
      o.prefetchPolicy === 'fs' ? patterns.map((p) => resolvePattern(root, p)).filter((i): i is BuildInode => i !== undefined) : [];
    const spec: ImageSpec = { root, ...settings, explicitUidGid, blobs: table, prefetch };
    const bytes = o.fsVersion === 5 ? writeV5Bootstrap(spec) : writeV6Bootstrap(spec);
    timings.dump_bootstrap = seconds(t2);
    const t3 = process.hrtime.bigint();
    // Read back what was written: a writer bug must fail the build, not the mount.
    const counts = await validateMetadata(parseBootstrap(bytes));
    timings.validate = seconds(t3);

    let blob: BuildResult['blob'];
    if (sealed) {
      let id = blobs[newBlobIndex].blobId;
      let size = blobs[newBlobIndex].compressedSize;
      if (inline) {
        writer.appendBootstrap(bytes);
        const fin = writer.end();
        id = fin.blobId;
        size = fin.compressedSize;
      }
      const path = o.blob ?? join(o.blobDir as string, id);
      if (!direct) placeFile(blobTmp, path);
      blob = { id, path, compressedSize: size, uncompressedSize: sealed.uncompressedSize, chunkCount: sealed.chunkCount };
    }
    let bootstrap: string | undefined;
    if (o.bootstrap || !inline) {
      bootstrap = o.bootstrap ?? join(o.blobDir as string, createHash('sha256').update(bytes).digest('hex'));
      writeFileAtomic(bootstrap, bytes, outputMode(o.bootstrap !== undefined));
    }
    timings.total_build = seconds(t0);
    // The JSON's blob list names the inline-meta blob by its real id, as upstream's does.
    const ids = table.map((b) => (b.blobId === INLINE_META_BLOB_ID && blob ? blob.id : b.blobId));
    result = { bootstrap, blobs: ids, blob, dedup: chunker.stats, counts, timings };
    return result;
  } finally {
    progress.stop();
    await pool.close();
    if (!result) {
      writer.abort();
      if (!direct) removeTemp(blobTmp);
    }
  }
}

/**
 * Chunks every file of a scanned directory: prefetch files first (in pattern order), then
 * the others in index order. Returns the blob bytes the prefetch files took.
 */
async function chunkDirectoryFiles(upper: BuildInode, chunker: Chunker, writer: BlobWriter, patterns: Buffer[][], progress: Progress): Promise<number> {
  const files = uniqueFiles(upper);
  const first = prefetchFiles(patterns.map((p) => resolvePattern(upper, p)).filter((i): i is BuildInode => i !== undefined));
  const firstSet = new Set(first);
  progress.total(files.reduce((s, i) => s + i.size, 0));
  const pathOf = (i: BuildInode): Buffer => (i.data as { path: Buffer }).path;
  for (const inode of first) await chunker.addPath(inode, pathOf(inode), inode.size);
  await chunker.drain();
  const prefetchBytes = writer.size;
  for (const inode of files) {
    if (firstSet.has(inode)) continue;
    if (inode.size === 0) inode.chunks = [];
    else await chunker.addPath(inode, pathOf(inode), inode.size);
  }
  return prefetchBytes;
}

/** Distinct regular files of a tree, in index order. */
export function uniqueFiles(root: BuildInode): BuildInode[] {
  const seen = new Set<BuildInode>();
  const out: BuildInode[] = [];
  for (const { inode } of indexOrder(root).entries) {
    if (isReg(inode) && !seen.has(inode)) {
      seen.add(inode);
      out.push(inode);
    }
  }
  return out;
}

/** Upstream's blob id for a blob with inlined metadata, in the bootstrap's blob table. */
export const INLINE_META_BLOB_ID = 'x'.repeat(64);

/**
 * The final blob table: every blob except chunk-dictionary blobs no file uses, with the
 * chunks' blob indexes renumbered to match.
 */
export function settleBlobTable(root: BuildInode, blobs: OutBlob[], optional: ReadonlySet<number>): OutBlob[] {
  const files = uniqueFiles(root);
  const used = new Set<number>();
  for (const f of files) for (const c of f.chunks ?? []) used.add(c.blobIndex);
  const map = new Map<number, number>();
  const out: OutBlob[] = [];
  blobs.forEach((b, i) => {
    if (optional.has(i) && !used.has(i)) return;
    map.set(i, out.length);
    out.push(b);
  });
  for (const f of files) {
    if (!f.chunks) continue;
    f.chunks = f.chunks.map((c) => {
      const idx = map.get(c.blobIndex);
      if (idx === undefined) throw new BuildError('ERR_BUILD_SOURCE', `failed to settle blob table: chunk refers to unknown blob ${c.blobIndex}`);
      return idx === c.blobIndex ? c : { ...c, blobIndex: idx };
    });
  }
  return out;
}
