// A depth-first walk over a whole image, in image order (a directory, then its entries
// one by one, descending into each subdirectory as it comes), for `check` and `unpack`.
// Iterative, so deep trees cannot overflow the stack; a directory reached twice (a
// cycle or a directory hard link), a name that could escape a path and a path beyond
// MAX_WALK_PATH are errors.
import { corrupt, S_IFDIR, S_IFMT } from './layout/common.js';
import type { DirEntry, InodeAttr, RafsSuper } from './types.js';

/** One entry of the walk. Hard links appear once per name, with the same `ino`. */
export interface WalkEntry {
  /** Absolute path: `/` for the root, `/a/b` below it. */
  path: Buffer;
  /** Entry name (empty for the root). */
  name: Buffer;
  ino: number;
  attr: InodeAttr;
  /** Inode number of the directory holding the entry (the root's is its own). */
  parent: number;
  /** 0 for the root, 1 for its entries, ... */
  depth: number;
}

const SLASH = Buffer.from('/');
/**
 * Longest path the walk builds (16 x PATH_MAX). Each entry copies its parent's path, so a
 * hostile chain of nested directories would otherwise cost quadratic time and memory.
 */
export const MAX_WALK_PATH = 65536;

/** Throws unless `name` is a single path component: non-empty, no `/` or NUL, not `.`/`..`. */
export function checkEntryName(name: Buffer, dir: number): void {
  const bad =
    name.length === 0 ||
    name.includes(0x2f) ||
    name.includes(0) ||
    (name.length === 1 && name[0] === 0x2e) ||
    (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e);
  if (bad) throw corrupt(`failed to walk directory ${dir}: invalid entry name ${JSON.stringify(name.toString('latin1'))}`);
}

interface Frame {
  ino: number;
  path: Buffer;
  depth: number;
  entries: Iterator<DirEntry>;
}

/** Walks the image from its root. Throws RafsFormatError on the first corrupt piece. */
export function* walk(sb: RafsSuper): Generator<WalkEntry> {
  const root = sb.rootIno;
  const rootAttr = sb.getAttr(root);
  yield { path: SLASH, name: Buffer.alloc(0), ino: root, attr: rootAttr, parent: root, depth: 0 };
  if ((rootAttr.mode & S_IFMT) !== S_IFDIR) return;
  const seenDirs = new Set<number>([root]);
  const stack: Frame[] = [{ ino: root, path: SLASH, depth: 0, entries: sb.readdir(root)[Symbol.iterator]() }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const next = top.entries.next();
    if (next.done) {
      stack.pop();
      continue;
    }
    const e = next.value;
    checkEntryName(e.name, top.ino);
    if (top.path.length + 1 + e.name.length > MAX_WALK_PATH) {
      throw corrupt(`failed to walk directory ${top.ino}: path longer than ${MAX_WALK_PATH} bytes`);
    }
    const path = top.path.length === 1 ? Buffer.concat([SLASH, e.name]) : Buffer.concat([top.path, SLASH, e.name]);
    const attr = sb.getAttr(e.ino);
    yield { path, name: e.name, ino: e.ino, attr, parent: top.ino, depth: top.depth + 1 };
    if ((attr.mode & S_IFMT) === S_IFDIR) {
      if (seenDirs.has(e.ino)) {
        throw corrupt(`failed to walk ${path.toString('latin1')}: directory ${e.ino} is reached twice (cycle or directory hard link)`);
      }
      seenDirs.add(e.ino);
      stack.push({ ino: e.ino, path, depth: top.depth + 1, entries: sb.readdir(e.ino)[Symbol.iterator]() });
    }
  }
}
