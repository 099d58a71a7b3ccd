// Synthetic images for tests: a small tree description, numbered the way nydus-image
// numbers nodes (docs/format.md §3.8: a directory's children get consecutive indexes,
// sorted by name, then each child directory in turn), with hard-link groups and
// invented chunk layouts. The v5 and v6 writers beside this file turn it into bytes
// with the project's own layout encoders, so tests can reach what the fixtures lack.
import { createHash } from 'node:crypto';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from '../../../src/rafs/layout/common.js';

export type SynthType = 'dir' | 'file' | 'symlink' | 'chr' | 'blk' | 'fifo' | 'sock';

export interface SynthNode {
  name: string | Buffer;
  type: SynthType;
  perm?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  mtimeNsec?: number;
  children?: SynthNode[];
  /** Regular file size. */
  size?: number;
  /** Chunk numbers of a file that are holes. */
  holes?: number[];
  target?: string | Buffer;
  rdev?: number;
  xattrs?: Record<string, string | Buffer>;
  /** Hard-link group: every node with the same id is one inode. */
  link?: string;
  /** v6: write a 32-byte compact inode. */
  compact?: boolean;
}

export interface SynthOptions {
  chunkSize?: number;
  blobId?: string;
  /** Paths whose inode numbers go into the prefetch table. */
  prefetch?: string[];
}

/** A node with its position in the numbering. */
export interface Numbered {
  node: SynthNode;
  index: number;
  parent: number;
  path: string;
  name: Buffer;
  mode: number;
  /** Index of the first node of the hard-link group (its own index otherwise). */
  primary: number;
  nlink: number;
  /** Directory children indexes in name order. */
  children: number[];
}

const TYPE_BITS: Record<SynthType, number> = {
  dir: S_IFDIR,
  file: S_IFREG,
  symlink: S_IFLNK,
  chr: S_IFCHR,
  blk: S_IFBLK,
  fifo: S_IFIFO,
  sock: S_IFSOCK,
};

const DEFAULT_PERM: Record<SynthType, number> = {
  dir: 0o755,
  file: 0o644,
  symlink: 0o777,
  chr: 0o600,
  blk: 0o600,
  fifo: 0o644,
  sock: 0o755,
};

export function nameOf(n: SynthNode): Buffer {
  return typeof n.name === 'string' ? Buffer.from(n.name) : n.name;
}

/** Numbers the tree (root = index 1); `out[i - 1]` is index `i`. */
export function numberTree(root: SynthNode): Numbered[] {
  const out: Numbered[] = [];
  const add = (node: SynthNode, parent: number, path: string): Numbered => {
    const n: Numbered = {
      node,
      index: out.length + 1,
      parent,
      path,
      name: nameOf(node),
      mode: TYPE_BITS[node.type] | (node.perm ?? DEFAULT_PERM[node.type]),
      primary: out.length + 1,
      nlink: 1,
      children: [],
    };
    out.push(n);
    return n;
  };
  const number = (dir: Numbered): void => {
    const kids = [...(dir.node.children ?? [])].sort((a, b) => Buffer.compare(nameOf(a), nameOf(b)));
    const added = kids.map((k) => add(k, dir.index, `${dir.path === '/' ? '' : dir.path}/${nameOf(k).toString('latin1')}`));
    dir.children = added.map((a) => a.index);
    for (const a of added) if (a.node.type === 'dir') number(a);
  };
  const r = add(root, 0, '/');
  number(r);
  const groups = new Map<string, Numbered[]>();
  for (const n of out) if (n.node.link) groups.set(n.node.link, [...(groups.get(n.node.link) ?? []), n]);
  for (const members of groups.values()) {
    for (const m of members) {
      m.primary = members[0].index;
      m.nlink = members.length;
    }
  }
  for (const n of out) {
    if (n.node.type === 'dir') n.nlink = 2 + n.children.filter((c) => out[c - 1].node.type === 'dir').length;
  }
  return out;
}

/** An invented chunk digest, stable per (path, chunk). */
export function fakeDigest(path: string, k: number): Buffer {
  return createHash('sha256').update(`${path}#${k}`).digest();
}

export function sha256(parts: readonly Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function xattrList(n: SynthNode): { name: Buffer; value: Buffer }[] {
  return Object.entries(n.xattrs ?? {}).map(([k, v]) => ({ name: Buffer.from(k), value: Buffer.isBuffer(v) ? v : Buffer.from(v) }));
}

export function targetOf(n: SynthNode): Buffer {
  const t = n.target ?? '';
  return Buffer.isBuffer(t) ? t : Buffer.from(t);
}

export const DEFAULT_BLOB_ID = 'a'.repeat(64);
