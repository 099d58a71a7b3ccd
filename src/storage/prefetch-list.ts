// Turns an image's prefetch hints into the chunks to fetch, in upstream's order (rafs
// fs.rs `do_prefetch`): the files named by `--prefetch-files` / a mount's
// `prefetch_files` (absolute paths; they replace the bootstrap's table), else the
// bootstrap's prefetch table (inode numbers); a directory stands for its whole subtree.
// Then, with `prefetch_all` or a list that is exactly ["/"], every other chunk of every
// blob. Chunks appear once (deduplicated), hinted ones first, each group in blob order.
import { ConfigError } from '../errors.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../util/file-mode.js';
import { chunkKey } from './amplify.js';
import type { ChunkInfo, ImageBlobs } from './types.js';

/** What planning needs from an opened image (an image's RafsSuper has it). */
export interface PrefetchImage extends ImageBlobs {
  readonly rootIno: number;
  getAttr(ino: number): { mode: number; size: number };
  lookup(parent: number, name: Buffer): number | undefined;
  readdir(dir: number): Iterable<{ ino: number }>;
  /** The chunks holding `[offset, offset + size)` of a regular file, in file order. */
  fileChunks(ino: number, offset: number, size: number): ChunkInfo[];
  /** Inode numbers the image's prefetch table lists. */
  prefetchList(): readonly number[];
}

/** Paths from a `--prefetch-files` file: one per line, trimmed, blanks skipped, each absolute. */
export function parsePrefetchFiles(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (!line.startsWith('/')) throw new ConfigError('ERR_CONFIG_INVALID', `failed to parse prefetch list: ${JSON.stringify(line)} is not an absolute path`);
    out.push(line);
  }
  return out;
}

/** The inode at absolute `path`, or undefined when the image has no such path. */
export function resolvePath(sb: PrefetchImage, path: string): number | undefined {
  let ino = sb.rootIno;
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    const next = part === '..' ? undefined : sb.lookup(ino, Buffer.from(part));
    if (next === undefined) return undefined;
    ino = next;
  }
  return ino;
}

export interface PrefetchPlanOptions {
  /** Absolute paths; when given they replace the bootstrap's prefetch table. */
  files?: readonly string[];
  /** Append every remaining chunk of every blob (`prefetch_all`). */
  all: boolean;
}

/** The chunks to prefetch for `sb`, hinted ones first (see the module comment). */
export function planPrefetch(sb: PrefetchImage, opts: PrefetchPlanOptions): ChunkInfo[] {
  const files = opts.files;
  const everything = opts.all || (files !== undefined && files.length === 1 && files[0].replace(/\/+$/, '') === '');
  const hints = files !== undefined ? files.map((f) => resolvePath(sb, f)).filter((i): i is number => i !== undefined) : [...sb.prefetchList()];
  const seen = new Set<string>();
  const hinted: ChunkInfo[] = [];
  for (const c of hintedChunks(sb, hints)) {
    const key = chunkKey(c);
    if (seen.has(key)) continue;
    seen.add(key);
    hinted.push(c);
  }
  const rest: ChunkInfo[] = [];
  if (everything) {
    for (const blob of sb.blobs) {
      for (const c of sb.blobChunks(blob.index)) {
        const key = chunkKey(c);
        if (seen.has(key)) continue;
        seen.add(key);
        rest.push(c);
      }
    }
  }
  return [...hinted.sort(byBlobOffset), ...rest.sort(byBlobOffset)];
}

function byBlobOffset(a: ChunkInfo, b: ChunkInfo): number {
  return a.blobIndex - b.blobIndex || a.compressedOffset - b.compressedOffset;
}

/** Chunks of the regular files at or under each hinted inode (each inode visited once). */
function* hintedChunks(sb: PrefetchImage, hints: readonly number[]): Generator<ChunkInfo> {
  const visited = new Set<number>();
  const stack = [...hints].reverse();
  while (stack.length > 0) {
    const ino = stack.pop()!;
    if (visited.has(ino)) continue;
    visited.add(ino);
    let attr;
    try {
      attr = sb.getAttr(ino);
    } catch {
      continue; // A stale hint (no such inode) is skipped, as upstream does.
    }
    const type = attr.mode & S_IFMT;
    if (type === S_IFREG && attr.size > 0) yield* sb.fileChunks(ino, 0, attr.size);
    else if (type === S_IFDIR) {
      const children = [...sb.readdir(ino)].map((e) => e.ino);
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
    }
  }
}
