// RAFS v6 (EROFS) directories: whole-directory parsing for readdir (the caller caches
// the result) and a lookup that, like the kernel, binary-searches blocks by their first
// and last names and then entries inside one block, decoding O(log blocks) blocks.
import { corrupt } from '../layout/common.js';
import {
  decodeV6DirBlock,
  modeTypeFromFileType,
  v6DirBlockEntries,
  v6DirBlockName,
  v6DirBlockNid,
  type V6DirBlockEntry,
} from '../layout/v6.js';
import { dataBlockRange, type V6Node } from './v6-inode.js';

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** A directory's entries without `.` and `..`, in image order, plus those two. */
export interface ParsedDir {
  entries: V6DirBlockEntry[];
  /** nid of `.` and `..` (-1 when missing). */
  self: number;
  parent: number;
}

function decodeBlock(buf: Buffer, n: V6Node, k: number): V6DirBlockEntry[] {
  const [s, e] = dataBlockRange(buf, n, k);
  return decodeV6DirBlock(buf.subarray(s, e), `block ${k} of v6 directory ${n.nid}`);
}

/** Parses every block of a directory. */
export function parseV6Dir(buf: Buffer, n: V6Node): ParsedDir {
  const out: ParsedDir = { entries: [], self: -1, parent: -1 };
  for (let k = 0; k < n.blocks; k++) {
    for (const e of decodeBlock(buf, n, k)) {
      if (e.name.equals(DOT) || e.name.equals(DOTDOT)) {
        const isDot = e.name.length === 1;
        if ((isDot ? out.self : out.parent) !== -1) throw corrupt(`failed to read v6 directory ${n.nid}: duplicate "${e.name}"`);
        if (isDot) out.self = e.nid;
        else out.parent = e.nid;
      } else {
        out.entries.push(e);
      }
    }
  }
  return out;
}

/**
 * The nid of entry `name` (which may be `.` or `..`), or undefined. Probes dirents in
 * place: no block is decoded whole.
 */
export function lookupV6Dir(buf: Buffer, n: V6Node, name: Buffer): number | undefined {
  let lo = 0;
  let hi = n.blocks - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const [s, e] = dataBlockRange(buf, n, mid);
    const block = buf.subarray(s, e);
    const where = `block ${mid} of v6 directory ${n.nid}`;
    const count = v6DirBlockEntries(block, where);
    // cmp(i) < 0: `name` sorts before entry i.
    const cmp = (i: number): number => {
      const [a, b] = v6DirBlockName(block, i, count, where);
      return name.compare(block, a, b);
    };
    if (cmp(0) < 0) {
      hi = mid - 1;
      continue;
    }
    if (cmp(count - 1) > 0) {
      lo = mid + 1;
      continue;
    }
    let a = 0;
    let b = count - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const c = cmp(m);
      if (c === 0) return v6DirBlockNid(block, m, where);
      if (c > 0) a = m + 1;
      else b = m - 1;
    }
    return undefined;
  }
  return undefined;
}

/** S_IFMT bits of a dirent's file type (0 when the dirent says "unknown"). */
export function direntModeType(e: V6DirBlockEntry): number {
  return modeTypeFromFileType(e.fileType);
}
