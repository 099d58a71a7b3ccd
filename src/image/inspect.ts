// `nydus-image inspect --request R`: answers one request about an image's metadata as
// upstream's request mode does: JSON for stats, blobs and prefetch (plus a few fields of
// this project's own), upstream's text for ls, stat NAME, icheck INODE and chunk OFFSET
// (inspect-text.ts). There is no interactive prompt.
import { ConfigError } from '../errors.js';
import { checkInode, listRoot, showChunk, statEntry } from './inspect-text.js';
import type { RafsSuper } from '../rafs/types.js';
import { walk } from '../rafs/walk.js';

export const INSPECT_REQUESTS = ['stats', 'blobs', 'prefetch', 'ls', 'stat NAME', 'icheck INODE', 'chunk OFFSET'] as const;
type InspectRequest = 'stats' | 'blobs' | 'prefetch';

/** The answer to a request: JSON, or upstream's text (after which upstream prints `null`). */
export type InspectAnswer = { json: unknown } | { text: string };

/** Answers a request line (`icheck 5`, `chunk 0`, `stats`...) about `sb`. */
export function inspectRequest(sb: RafsSuper, line: string): InspectAnswer {
  const [cmd = '', arg, extra] = line.trim().split(/\s+/);
  const bad = (why: string): ConfigError => new ConfigError('ERR_CLI_USAGE', `inspect request "${line}": ${why}`);
  const needArg = (): string => {
    if (arg === undefined) throw bad(`${cmd} needs an argument`);
    return arg;
  };
  const number = (what: string): number => {
    const v = needArg();
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw bad(`${what} must be a number`);
    return Number(v);
  };
  if (extra !== undefined) throw bad('too many arguments');
  switch (cmd) {
    case 'ls':
      if (arg !== undefined) throw bad('ls takes no argument');
      return { text: listRoot(sb) };
    case 'stat':
      return { text: statEntry(sb, needArg()) };
    case 'icheck':
      return { text: checkInode(sb, number('INODE')) };
    case 'chunk':
      return { text: showChunk(sb, number('OFFSET')) };
    default:
      if (arg !== undefined) throw bad(`${cmd} takes no argument`);
      return { json: inspect(sb, cmd) };
  }
}

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
