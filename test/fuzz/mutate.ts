// Seeded mutations of a RAFS bootstrap for the fuzz test and the longer run
// (bench/fuzz/bootstrap.fuzz.ts): bit flips, truncations, extreme values stomped over
// counts and sizes (inode sizes, child counts, superblock fields), directory cycles (a
// directory entry pointed back at an ancestor) and chunk offsets past the end of the blob.
// The same seed always gives the same bytes, so a failing case is replayed by its seed.
import * as L from '../../src/rafs/layout/index.js';
import { parseBootstrap } from '../../src/rafs/index.js';
import { walk } from '../../src/rafs/walk.js';
import { S_IFDIR, S_IFMT } from '../../src/rafs/layout/common.js';

/** mulberry32: a small, fast, seedable PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Where the structured mutations of one image aim, found once from the intact bootstrap. */
export interface Targets {
  /** [offset, width] of count and size fields. */
  sizes: [number, 2 | 4 | 8][];
  /** Offsets of u64 chunk compressed offsets. */
  chunkOffsets: number[];
  /** [offset, width, value]: writing `value` there makes a directory list an ancestor. */
  cycles: [number, 4 | 8, number][];
  /** Size of the largest blob, for offsets just past its end. */
  blobSize: number;
}

/** Finds the mutation targets of an intact bootstrap. */
export function findTargets(buf: Buffer, blobSize: number): Targets {
  const sb = parseBootstrap(buf);
  const t: Targets = { sizes: [], chunkOffsets: [], cycles: [], blobSize };
  const dirs = [...walk(sb)].filter((e) => (e.attr.mode & S_IFMT) === S_IFDIR);
  if (sb.version === 5) {
    const s = L.decodeV5Superblock(buf);
    t.sizes.push([56, 4], [32, 8]); // inode table entries and offset
    const offsetOf = new Map<number, number>();
    for (const e of L.decodeV5InodeTable(buf, s.inodeTableOffset, s.inodeTableEntries)) {
      if (e === 0) continue;
      const off = e * 8;
      const i = L.decodeV5Inode(buf, off);
      offsetOf.set(i.ino, off);
      t.sizes.push([off + 64, 8], [off + 96, 4], [off + 100, 2]); // size, child count, name size
      let pos = off + L.V5_INODE_SIZE + L.align8(i.nameSize) + L.align8(i.symlinkSize);
      if (i.flags & L.V5InodeFlags.XATTR) pos += L.decodeV5XattrTable(buf, pos, buf.length).byteLength;
      if ((i.mode & S_IFMT) === L.S_IFREG) for (let k = 0; k < i.childCount; k++) t.chunkOffsets.push(pos + k * L.V5_CHUNK_INFO_SIZE + 48);
    }
    // A directory whose children start where its parent's do lists itself.
    for (const d of dirs) {
      const at = offsetOf.get(d.ino);
      const parentAt = offsetOf.get(d.parent);
      if (d.depth === 0 || at === undefined || parentAt === undefined) continue;
      t.cycles.push([at + 92, 4, buf.readUInt32LE(parentAt + 92)]);
    }
  } else {
    const ext = L.decodeV6SuperblockExt(buf);
    // Inode count; blob table size; chunk table offset and size.
    t.sizes.push([L.EROFS_SUPER_OFFSET + 16, 8], [L.V6_EXT_SUPER_OFFSET + 16, 4], [L.V6_EXT_SUPER_OFFSET + 24, 8], [L.V6_EXT_SUPER_OFFSET + 32, 8]);
    const sbv6 = L.decodeV6Superblock(buf);
    for (const e of walk(sb)) {
      const off = sbv6.metaBlkaddr * L.EROFS_BLOCK_SIZE + e.ino * L.EROFS_INODE_SLOT_SIZE;
      t.sizes.push(L.isExtendedInode(buf.readUInt16LE(off)) ? [off + 8, 8] : [off + 8, 4]);
    }
    for (let off = ext.chunkTableOffset; off < ext.chunkTableOffset + ext.chunkTableSize; off += L.V5_CHUNK_INFO_SIZE) t.chunkOffsets.push(off + 48);
    // A dirent naming a subdirectory, pointed at the directory holding it (or the root).
    for (const d of dirs) {
      if (d.depth === 0) continue;
      for (let off = 0; off + L.V6_DIRENT_SIZE <= buf.length; off += 4) {
        if (buf[off + 10] === L.ErofsFileType.DIR && buf.readBigUInt64LE(off) === BigInt(d.ino)) {
          t.cycles.push([off, 8, d.parent], [off, 8, sb.rootIno]);
        }
      }
    }
  }
  return t;
}

const EXTREMES: Record<4 | 8, number[]> = {
  4: [0, 1, 0x7fffffff, 0xffffffff, 0x80000000, 0xfffffff0],
  8: [0, 1, 0xffffffff, 2 ** 32, 2 ** 40, 2 ** 53 - 1],
};

function put(buf: Buffer, off: number, width: number, v: number): void {
  if (off < 0 || off + width > buf.length) return;
  if (width === 8) buf.writeBigUInt64LE(BigInt(v), off);
  else if (width === 4) buf.writeUInt32LE(v >>> 0, off);
  else buf.writeUInt16LE(v & 0xffff, off);
}

/** The mutation kinds, in the order `mutate` picks them by `kind % KINDS.length`. */
export const KINDS = ['bitflip', 'truncate', 'size', 'cycle', 'chunk-offset', 'stomp'] as const;
export type MutationKind = (typeof KINDS)[number];

/** One mutated copy of `base` for `seed`, and what was done to it. */
export function mutate(base: Buffer, targets: Targets, seed: number): { bytes: Buffer; kind: MutationKind; note: string } {
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)];
  let kind = KINDS[seed % KINDS.length];
  if (kind === 'cycle' && targets.cycles.length === 0) kind = 'size';
  const buf = Buffer.from(base);
  switch (kind) {
    case 'bitflip': {
      const n = 1 + int(8);
      // Most flips in the first 8 KiB, where superblocks, tables and the root live.
      for (let i = 0; i < n; i++) {
        const off = rnd() < 0.6 ? int(Math.min(buf.length, 8192)) : int(buf.length);
        buf[off] ^= 1 << int(8);
      }
      return { bytes: buf, kind, note: `${n} bit flips` };
    }
    case 'truncate': {
      const len = int(buf.length);
      return { bytes: buf.subarray(0, len), kind, note: `truncated to ${len}` };
    }
    case 'size': {
      const [off, width] = pick(targets.sizes);
      const v = pick(EXTREMES[width === 8 ? 8 : 4]);
      put(buf, off, width, v);
      return { bytes: buf, kind, note: `size field at ${off} = ${v}` };
    }
    case 'cycle': {
      const [off, width, v] = pick(targets.cycles);
      put(buf, off, width, v);
      return { bytes: buf, kind, note: `entry at ${off} points to ${v}` };
    }
    case 'chunk-offset': {
      if (targets.chunkOffsets.length === 0) return { bytes: buf, kind, note: 'no chunks' };
      const off = pick(targets.chunkOffsets);
      const v = pick([targets.blobSize, targets.blobSize + 1 + int(4096), 2 ** 40, 2 ** 53 - 1]);
      put(buf, off, 8, v);
      return { bytes: buf, kind, note: `chunk offset at ${off} = ${v}` };
    }
    case 'stomp': {
      const n = 1 + int(4);
      for (let i = 0; i < n; i++) put(buf, int(buf.length >> 2) << 2, 4, pick(EXTREMES[4]));
      return { bytes: buf, kind, note: `${n} words stomped` };
    }
  }
}
