// Read planning for the chunk reader: groups the chunks a request misses into backend
// reads and extends each read to the following chunks of the blob (read amplification),
// as long as they lie back to back (or nearly), nobody has them yet, and the read stays
// within `amplifyIo` bytes. Pure: no I/O, no state.
import type { ChunkInfo } from './types.js';

/** Identity of a stored chunk within an image (deduplicated chunks share it). */
export function chunkKey(c: ChunkInfo): string {
  return `${c.blobIndex}:${c.compressedOffset}:${c.compressedSize}:${c.uncompressedSize}:${c.digest.toString('latin1')}`;
}

/** One chunk of a planned backend read. */
export interface PlannedChunk {
  chunk: ChunkInfo;
  key: string;
  /** Not requested: added by amplification. */
  amplified: boolean;
}

export interface PlanOptions {
  /** Largest read in bytes (a single chunk may exceed it); 0 = no amplification. */
  amplifyIo: number;
  /** Largest hole between two chunks of one read. */
  maxGap: number;
  /** Whether a neighbour may join a read: not cached, not in flight, well-formed. */
  available(chunk: ChunkInfo, key: string): boolean;
}

/**
 * Plans backend reads for `misses` (chunks of one blob). `neighbours` is every chunk of the
 * blob sorted by compressed offset, or null when unknown (then only requested chunks merge).
 * Each returned read is a run of chunks in blob order starting at a requested one.
 */
export function planReads(misses: readonly ChunkInfo[], neighbours: readonly ChunkInfo[] | null, opts: PlanOptions): PlannedChunk[][] {
  const sorted = [...misses].sort((a, b) => a.compressedOffset - b.compressedOffset);
  const wanted = new Set(sorted.map(chunkKey));
  const assigned = new Set<string>();
  const reads: PlannedChunk[][] = [];
  for (let s = 0; s < sorted.length; s++) {
    const seed = sorted[s];
    const seedKey = chunkKey(seed);
    if (assigned.has(seedKey)) continue;
    assigned.add(seedKey);
    const read: PlannedChunk[] = [{ chunk: seed, key: seedKey, amplified: false }];
    const start = seed.compressedOffset;
    const limit = Math.max(opts.amplifyIo, seed.compressedSize);
    let end = start + seed.compressedSize;
    const candidates = neighbours ?? sorted;
    for (let j = neighbours === null ? s + 1 : lowerBound(neighbours, start); j < candidates.length; j++) {
      const cand = candidates[j];
      // Skip the seed itself and anything overlapping what the read already covers.
      if (cand.compressedOffset < end || (cand.compressedOffset === start && chunkKey(cand) === seedKey)) continue;
      const candEnd = cand.compressedOffset + cand.compressedSize;
      if (cand.compressedOffset - end > opts.maxGap || candEnd - start > limit) break;
      const key = chunkKey(cand);
      if (wanted.has(key)) {
        if (assigned.has(key)) break;
        assigned.add(key);
        read.push({ chunk: cand, key, amplified: false });
      } else {
        if (!opts.available(cand, key)) break;
        read.push({ chunk: cand, key, amplified: true });
      }
      end = candEnd;
    }
    reads.push(read);
  }
  return reads;
}

/** Index of the first chunk whose compressed offset is ≥ `offset`. */
function lowerBound(list: readonly ChunkInfo[], offset: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].compressedOffset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
