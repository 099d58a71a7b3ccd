// Prefetch hints (upstream `Prefetch`): absolute paths read one per line from stdin; a
// path already covered by an earlier one is dropped. Policy `fs` records the matched
// inodes in the bootstrap's prefetch table; `fs` and `blob` both put the matched files'
// data first in the blob, in pattern order; `blob` also records that range as the blob's
// readahead window (v5).
import { isDir, isReg, nameKey, sortedChildren, type BuildInode } from './tree.js';

export type PrefetchPolicy = 'fs' | 'blob' | 'none';
export const PREFETCH_POLICIES: readonly PrefetchPolicy[] = ['fs', 'blob', 'none'];

/** Parses the pattern list; relative lines are skipped with a warning, as upstream does. */
export function parsePrefetchPatterns(text: Buffer, warn: (m: string) => void): Buffer[][] {
  const out: Buffer[][] = [];
  const keys: string[] = [];
  for (const raw of splitLines(text)) {
    const line = trim(raw);
    if (line.length === 0) continue;
    if (line[0] !== 0x2f) {
      warn(`ignoring prefetch pattern ${JSON.stringify(line.toString())}: not an absolute path`);
      continue;
    }
    const parts = splitPath(line);
    const key = parts.map((p) => nameKey(p)).join('/');
    if (keys.some((k) => k === '' || key === k || key.startsWith(k + '/'))) {
      warn(`ignoring prefetch pattern ${JSON.stringify(line.toString())}: covered by an earlier one`);
      continue;
    }
    keys.push(key);
    out.push(parts);
  }
  return out;
}

function splitLines(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= b.length; i++) {
    if (i === b.length || b[i] === 0x0a) {
      out.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

function trim(b: Buffer): Buffer {
  let s = 0;
  let e = b.length;
  while (s < e && (b[s] === 0x20 || b[s] === 0x09 || b[s] === 0x0d)) s++;
  while (e > s && (b[e - 1] === 0x20 || b[e - 1] === 0x09 || b[e - 1] === 0x0d)) e--;
  return b.subarray(s, e);
}

function splitPath(p: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      const part = p.subarray(start, i);
      if (part.length > 0 && !(part.length === 1 && part[0] === 0x2e)) parts.push(Buffer.from(part));
      start = i + 1;
    }
  }
  return parts;
}

/** The inode a pattern names in `root`, or undefined. */
export function resolvePattern(root: BuildInode, parts: Buffer[]): BuildInode | undefined {
  let cur: BuildInode | undefined = root;
  for (const p of parts) {
    if (!cur || !isDir(cur)) return undefined;
    cur = cur.children!.get(nameKey(p))?.inode;
  }
  return cur;
}

/** Regular files (non-empty) under the matched inodes, in pattern order, each once. */
export function prefetchFiles(targets: readonly BuildInode[]): BuildInode[] {
  const seen = new Set<BuildInode>();
  const out: BuildInode[] = [];
  const visit = (i: BuildInode): void => {
    if (isReg(i)) {
      if (i.size > 0 && !seen.has(i)) {
        seen.add(i);
        out.push(i);
      }
      return;
    }
    if (isDir(i)) for (const e of sortedChildren(i)) visit(e.inode);
  };
  for (const t of targets) visit(t);
  return out;
}
