// `nydus-image inspect --request R`: answers one request about an image's metadata as
// JSON, in the shapes upstream's request mode prints (stats, blobs, prefetch), plus a
// few fields of this project's own. There is no interactive prompt.
import { ConfigError } from '../errors.js';
import type { RafsSuper } from '../rafs/types.js';
import { walk } from '../rafs/walk.js';

export const INSPECT_REQUESTS = ['stats', 'blobs', 'prefetch'] as const;
export type InspectRequest = (typeof INSPECT_REQUESTS)[number];

/** Answers `request` about `sb`. */
export function inspect(sb: RafsSuper, request: string): unknown {
  switch (request as InspectRequest) {
    case 'stats':
      return stats(sb);
    case 'blobs':
      return sb.blobs.map((b) => ({
        blob_id: b.blobId,
        readahead_offset: b.readaheadOffset,
        readahead_size: b.readaheadSize,
        decompressed_size: b.uncompressedSize,
        compressed_size: b.compressedSize,
        chunk_count: b.chunkCount,
        chunk_size: b.chunkSize,
        compressor: b.compressor,
        digester: b.digester,
        features: b.features,
      }));
    case 'prefetch':
      return prefetch(sb);
    default:
      throw new ConfigError('ERR_CLI_USAGE', `unknown inspect request "${request}" (expected ${INSPECT_REQUESTS.join(', ')})`);
  }
}

function stats(sb: RafsSuper): Record<string, unknown> {
  const meta = sb.superblockJson();
  return {
    inodes_count: meta.inodes_count,
    fs_version: sb.version,
    chunk_size: sb.chunkSize,
    root_inode: sb.rootIno,
    flags: sb.flags,
    compressor: sb.compressor,
    digester: sb.digester,
    distinct_inodes: sb.inodeCount,
    blobs: sb.blobs.length,
    bootstrap_size: sb.bootstrapSize,
  };
}

/** Every prefetch entry with all the paths naming its inode (several for hard links). */
function prefetch(sb: RafsSuper): Array<{ inode: number; path: string[] }> {
  const wanted = sb.prefetchList();
  if (wanted.length === 0) return [];
  const paths = new Map<number, string[]>(wanted.map((ino) => [ino, []]));
  for (const e of walk(sb)) paths.get(e.ino)?.push(e.path.toString());
  return wanted.map((ino) => ({ inode: ino, path: paths.get(ino) ?? [] }));
}
