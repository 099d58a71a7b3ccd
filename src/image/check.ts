// `nydus-image check`: validates an image's metadata (the whole tree, names, chunk
// coverage, v5 inode digests) and, when its blobs are at hand, reads every distinct
// chunk with digest validation. The summary keeps upstream's `--output-json` fields
// (version, bootstrap, blobs, trace) and adds the counts a user asks for.
import { describeError, NydusError } from '../errors.js';
import { validateMetadata, type AnyRafsSuper, type MetadataCounts } from '../rafs/index.js';
import type { Storage } from '../storage/factory.js';
import { buildInfo } from '../util/build-info.js';

export interface BlobSummary {
  blob_id: string;
  index: number;
  compressed_size: number;
  uncompressed_size: number;
  chunk_count: number;
  /** Size of the blob file found by the backend (only when blobs were checked). */
  file_size?: number;
}

export interface ChunkFailure {
  blob_id: string;
  chunk_index: number;
  code: string;
  message: string;
}

export interface CheckSummary {
  /** Upstream fields. */
  version: string;
  bootstrap: string;
  blobs: string[];
  trace: Record<string, unknown>;
  /** Additions of this project. */
  /** "5" or "6": a string, as Go readers of this JSON (nydusify) decode it. */
  fs_version: string;
  compressor: string;
  digester: string;
  chunk_size: number;
  counts: MetadataCounts;
  blob_details: BlobSummary[];
  /** Distinct chunks read and verified; null when no blobs were given. */
  chunks_verified: number | null;
  chunk_failures: ChunkFailure[];
}

/** How many chunk reads the check keeps in flight. */
const PARALLEL = 8;
/** Failures listed before the check stops collecting more. */
const MAX_FAILURES = 100;

/** Checks `sb`; throws RafsFormatError for bad metadata, returns chunk failures in the summary. */
export async function checkImage(bootstrap: string, sb: AnyRafsSuper, storage: Storage | undefined): Promise<CheckSummary> {
  const started = process.hrtime.bigint();
  const counts = await validateMetadata(sb);
  const bi = buildInfo();
  const summary: CheckSummary = {
    version: `${bi.package_ver}-${bi.git_commit}`,
    bootstrap,
    blobs: sb.blobs.map((b) => b.blobId),
    trace: {},
    fs_version: String(sb.version),
    compressor: sb.compressor,
    digester: sb.digester,
    chunk_size: sb.chunkSize,
    counts,
    blob_details: sb.blobs.map((b) => ({
      blob_id: b.blobId,
      index: b.index,
      compressed_size: b.compressedSize,
      uncompressed_size: b.uncompressedSize,
      chunk_count: b.chunkCount,
    })),
    chunks_verified: null,
    chunk_failures: [],
  };
  summary.trace.validate_metadata_ms = elapsedMs(started);
  if (storage) {
    const t = process.hrtime.bigint();
    summary.chunks_verified = await verifyChunks(sb, storage, summary);
    summary.trace.verify_chunks_ms = elapsedMs(t);
  }
  return summary;
}

async function verifyChunks(sb: AnyRafsSuper, storage: Storage, summary: CheckSummary): Promise<number> {
  let verified = 0;
  for (const blob of sb.blobs) {
    const detail = summary.blob_details[blob.index];
    try {
      detail.file_size = await storage.backend.blobSize(blob.blobId);
    } catch (err) {
      record(summary, blob.blobId, -1, err);
      continue;
    }
    const chunks = sb.blobChunks(blob.index);
    let next = 0;
    const worker = async () => {
      while (next < chunks.length && summary.chunk_failures.length < MAX_FAILURES) {
        const c = chunks[next++];
        try {
          await storage.reader.readChunk(c);
          verified++;
        } catch (err) {
          record(summary, blob.blobId, c.index, err);
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  }
  return verified;
}

function record(summary: CheckSummary, blobId: string, index: number, err: unknown): void {
  summary.chunk_failures.push({
    blob_id: blobId,
    chunk_index: index,
    code: err instanceof NydusError ? err.code : 'ERR_UNKNOWN',
    message: describeError(err),
  });
}

function elapsedMs(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

/** The human-readable report `check` prints. */
export function formatCheck(s: CheckSummary): string {
  const c = s.counts;
  const lines = [
    `RAFS v${s.fs_version} image ${s.bootstrap}`,
    `  compressor ${s.compressor}, digester ${s.digester}, chunk size 0x${s.chunk_size.toString(16)}`,
    `  inodes ${c.inodes}: ${c.files} files, ${c.dirs} directories, ${c.symlinks} symlinks, ${c.specials} special, ` +
      `${c.hardlinks} extra hard links, ${c.xattrs} xattrs`,
    `  ${c.chunks} chunk references, ${c.distinctChunks} distinct chunks, ${c.fileBytes} bytes of file data`,
    `  blobs: ${s.blob_details.length}`,
  ];
  for (const b of s.blob_details) {
    const file = b.file_size === undefined ? '' : `, file ${b.file_size} B`;
    lines.push(`    [${b.index}] ${b.blob_id}: ${b.chunk_count} chunks, compressed ${b.compressed_size} B, uncompressed ${b.uncompressed_size} B${file}`);
  }
  if (s.chunks_verified === null) lines.push('  chunk data: not checked (no --blob-dir, --blob or --config)');
  else lines.push(`  chunk data: ${s.chunks_verified} chunks verified, ${s.chunk_failures.length} failed`);
  for (const f of s.chunk_failures) lines.push(`    FAILED ${f.blob_id}#${f.chunk_index}: ${f.message}`);
  return lines.join('\n') + '\n';
}
