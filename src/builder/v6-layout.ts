// Places RAFS v6 inodes in the metadata area the way nydus-image does (docs/format.md §6):
// directories are laid out in build order, each followed by its non-directory children;
// a bump allocator keeps the unused tails of 4 KiB blocks as holes, sized in 32-byte
// slots, and later small inodes fill them. Directory and symlink tails are inlined after
// their inode when inode + tail fits in a block. Offsets here start at 4096 (the root);
// the writer shifts them by the meta area address. No bytes are written here.
import { EROFS_BLOCK_SIZE, EROFS_INODE_SLOT_SIZE, ErofsLayout, V6_CHUNK_INDEX_SIZE, V6_DIRENT_SIZE, V6_INODE_EXTENDED_SIZE } from '../rafs/layout/v6.js';
import { S_IFDIR, S_IFLNK, S_IFREG } from '../rafs/layout/common.js';
import { typeOf } from './image-spec.js';
import { sortedChildren, type BuildInode, type Numbering } from './tree.js';
import { v6XattrAreaBytes } from './v6-xattr.js';

const BLOCK = EROFS_BLOCK_SIZE;
const SLOT = EROFS_INODE_SLOT_SIZE;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** Where one inode and its data go (offsets before the meta-area shift). */
export interface Placement {
  offset: number;
  layout: number;
  /** Inode plus inline xattr area. */
  inodeSize: number;
  /** Directories and symlinks: where the full data blocks start. */
  dataOffset: number;
  /** Directories: dirent bytes (`i_size`). */
  dirSize: number;
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** The bump allocator with per-slot-count lists of partly used blocks (upstream BootstrapContext). */
export class Allocator {
  constructor(public offset = BLOCK) {}
  private readonly holes: number[][] = Array.from({ length: BLOCK / SLOT }, () => []);

  align(to: number): void {
    this.offset = roundUp(this.offset, to);
  }

  /** Remembers the rest of the block holding `offset` as a hole. */
  remember(offset: number): void {
    if (offset % BLOCK === 0) return;
    const avail = BLOCK - (offset % BLOCK);
    this.holes[Math.floor(avail / SLOT)].push(offset - (offset % BLOCK));
  }

  /** An offset in a remembered hole with room for `size` bytes, or 0. */
  fromHole(size: number): number {
    if (size >= BLOCK) return 0;
    const min = Math.ceil(size / SLOT);
    for (let idx = min; idx < BLOCK / SLOT; idx++) {
      const block = this.holes[idx].shift();
      if (block === undefined) continue;
      const offset = block + BLOCK - idx * SLOT;
      this.remember(offset + min * SLOT);
      return offset;
    }
    return 0;
  }
}

/** Bytes of a directory's dirents and names (`i_size`), names never split across blocks. */
export function v6DirSize(dir: BuildInode): number {
  const names = [DOT, DOTDOT, ...sortedChildren(dir).map((e) => e.name)].sort(Buffer.compare);
  let size = 0;
  for (const n of names) {
    const len = n.length + V6_DIRENT_SIZE;
    if ((size % BLOCK) + len > BLOCK) size = roundUp(size, BLOCK);
    size += len;
  }
  return size;
}

/** Places an inode whose data is `size` bytes with an inline tail when it fits. */
export function placeWithTail(a: Allocator, inodeSize: number, size: number): Placement {
  const tail = size % BLOCK;
  let offset: number;
  let dataOffset: number;
  let layout: number;
  if (tail !== 0 && inodeSize + tail <= BLOCK) {
    offset = a.fromHole(inodeSize + tail);
    if (offset === 0) {
      if (BLOCK - (a.offset % BLOCK) < inodeSize + tail) {
        a.remember(a.offset);
        a.align(BLOCK);
      }
      offset = a.offset;
      a.offset += inodeSize + tail;
    }
    if (size !== tail) {
      a.remember(a.offset);
      a.align(BLOCK);
    }
    dataOffset = a.offset;
    a.offset += size - tail;
    layout = ErofsLayout.FLAT_INLINE;
  } else {
    offset = a.fromHole(inodeSize);
    if (offset === 0) {
      offset = a.offset;
      a.offset += inodeSize;
    }
    a.remember(a.offset);
    a.align(BLOCK);
    dataOffset = a.offset;
    a.offset += size;
    a.align(BLOCK);
    layout = ErofsLayout.FLAT_PLAIN;
  }
  return { offset, layout, inodeSize, dataOffset, dirSize: 0 };
}

/** Places every inode of the numbered tree; hard links share their first placement. */
export function layoutV6(numbering: Numbering, chunkSize: number): { placements: Map<BuildInode, Placement>; end: number } {
  const a = new Allocator();
  const placements = new Map<BuildInode, Placement>();
  const sizeOf = (i: BuildInode): number => V6_INODE_EXTENDED_SIZE + v6XattrAreaBytes(i.xattrs);
  for (const dir of numbering.dirOrder) {
    const dirSize = v6DirSize(dir);
    placements.set(dir, { ...placeWithTail(a, sizeOf(dir), dirSize), dirSize });
    a.align(SLOT);
    for (const e of sortedChildren(dir)) {
      const inode = e.inode;
      const t = typeOf(inode);
      if (t === S_IFDIR || placements.has(inode)) continue;
      const inodeSize = sizeOf(inode);
      let p: Placement;
      if (t === S_IFREG) {
        const total = roundUp(inodeSize, V6_CHUNK_INDEX_SIZE) + Math.ceil(inode.size / chunkSize) * V6_CHUNK_INDEX_SIZE;
        let offset = a.fromHole(total);
        if (offset === 0) {
          offset = a.offset;
          a.offset += total;
        }
        p = { offset, layout: ErofsLayout.CHUNK_BASED, inodeSize, dataOffset: 0, dirSize: 0 };
      } else if (t === S_IFLNK) {
        p = placeWithTail(a, inodeSize, inode.size);
      } else {
        p = { offset: a.offset, layout: ErofsLayout.FLAT_PLAIN, inodeSize, dataOffset: 0, dirSize: 0 };
        a.offset += inodeSize;
      }
      placements.set(inode, p);
      a.align(SLOT);
    }
  }
  return { placements, end: a.offset };
}
