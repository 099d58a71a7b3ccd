// FUSE node ids of the pseudo filesystem. They must be < 2^53 (JS numbers) and
// mean the same thing to a successor process, so they are computed, never
// allocated from a per-process table:
//   1                          the FUSE root (the pseudo root, or the root of the image mounted at `/`)
//   index * 2^32 + ino         inode `ino` of the image mounted with `index` (1 <= index < 2^20)
//   2^52 + hash52(path)        a pseudo directory, named by its path in the pseudo fs
// Image inode numbers (v5 i_ino, v6 nid) are far below 2^32: a bootstrap is at most
// 2 GiB, so neither a v5 inode table nor a v6 nid (offset / 32) can reach it.
import { createHash } from 'node:crypto';

/** Node id of the FUSE root. */
export const ROOT_ID = 1;
/** Node ids per mount index. */
export const INDEX_SPAN = 2 ** 32;
/** Mount indexes are 1 .. MAX_INDEX (index 0 is the pseudo fs). */
export const MAX_INDEX = 2 ** 20 - 1;
/** First node id of the pseudo directory range. */
export const PSEUDO_BASE = 2 ** 52;

/** Node id of inode `ino` of the mount with `index`. */
export function imageNodeId(index: number, ino: number): number {
  return index * INDEX_SPAN + ino;
}

/** The mount index of an image node id (0 for the root and pseudo directories). */
export function indexOfNode(nodeId: number): number {
  return nodeId >= PSEUDO_BASE ? 0 : Math.floor(nodeId / INDEX_SPAN);
}

/** The image inode number of an image node id. */
export function inoOfNode(nodeId: number): number {
  return nodeId % INDEX_SPAN;
}

/** True for a pseudo directory's node id. */
export function isPseudoNode(nodeId: number): boolean {
  return nodeId >= PSEUDO_BASE;
}

/** True when an image inode number fits the encoding. */
export function inoFits(ino: number): boolean {
  return Number.isSafeInteger(ino) && ino >= 0 && ino < INDEX_SPAN;
}

/**
 * Node id of the pseudo directory at `path` (normalized, not `/`): 2^52 plus the top
 * 52 bits of sha256(path). Two paths colliding is refused at mount time, never resolved
 * by probing, so the id depends on the path alone.
 */
export function pseudoDirId(path: string): number {
  const h = createHash('sha256').update(path).digest();
  // 52 bits: 20 from the first word, 32 from the second.
  return PSEUDO_BASE + (h.readUInt32BE(0) >>> 12) * 2 ** 32 + h.readUInt32BE(4);
}
