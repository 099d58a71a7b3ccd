// Writes a synthetic RAFS v6 bootstrap (a mountable EROFS image, docs/format.md §5) from
// a SynthNode tree with the layout encoders: superblocks, one device slot and blob entry,
// inodes from block 3 (root nid 128), inline tails or separate directory/symlink blocks,
// chunk indexes (holes as NULL block addresses), then the chunk table.
import { RafsSuperFlags } from '../../../src/rafs/layout/common.js';
import { encodeV5ChunkInfo, type V5ChunkInfo } from '../../../src/rafs/layout/v5.js';
import {
  encodeV6BlobEntry,
  encodeV6ChunkIndex,
  encodeV6Device,
  encodeV6DirBlock,
  encodeV6Inode,
  encodeV6Superblock,
  encodeV6SuperblockExt,
  encodeV6XattrEntry,
  encodeV6XattrIbodyHeader,
  EROFS_BLOCK_SIZE,
  EROFS_SUPER_MAGIC,
  ErofsLayout,
  fileTypeFromMode,
  splitV6XattrName,
  V6_NULL_BLKADDR,
  v6XattrIcount,
} from '../../../src/rafs/layout/v6.js';
import { DEFAULT_BLOB_ID, fakeDigest, numberTree, targetOf, xattrList, type Numbered, type SynthNode, type SynthOptions } from './synth.js';

export interface V6Options extends SynthOptions {
  buildTime?: number;
  buildTimeNsec?: number;
}

export interface V6Image {
  bytes: Buffer;
  nodes: Numbered[];
  /** nid of each index (hard links share their primary's). */
  nids: number[];
  /** Byte offset of each primary inode. */
  offsets: Map<number, number>;
}

const META_BLKADDR = 2;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

interface Plan {
  n: Numbered;
  inodeSize: number;
  xattrs: Buffer;
  data: Buffer;
  /** Directory entries (for dirs) grouped by block, names only until nids are known. */
  blocks: Buffer[][];
  inline: boolean;
  chunkCount: number;
  offset: number;
  firstBlock: number;
}

function xattrArea(n: SynthNode): Buffer {
  const list = xattrList(n);
  if (list.length === 0) return Buffer.alloc(0);
  const parts = [encodeV6XattrIbodyHeader({ nameFilter: 0, sharedCount: 0 })];
  for (const x of list) {
    const { nameIndex, suffix } = splitV6XattrName(x.name);
    const body = Buffer.concat([encodeV6XattrEntry({ nameLen: suffix.length, nameIndex, valueSize: x.value.length }), suffix, x.value]);
    parts.push(body, Buffer.alloc((4 - (body.length % 4)) % 4));
  }
  return Buffer.concat(parts);
}

function splitBlocks(names: Buffer[]): Buffer[][] {
  const blocks: Buffer[][] = [[]];
  let used = 0;
  for (const name of names) {
    if (used + 12 + name.length > EROFS_BLOCK_SIZE) {
      blocks.push([]);
      used = 0;
    }
    blocks[blocks.length - 1].push(name);
    used += 12 + name.length;
  }
  return blocks;
}

export function buildV6(root: SynthNode, opts: V6Options = {}): V6Image {
  const cs = opts.chunkSize ?? 0x100000;
  const buildTime = opts.buildTime ?? 0;
  const nodes = numberTree(root);
  const primaries = nodes.filter((n) => n.primary === n.index);
  const plans = new Map<number, Plan>();
  let cursor = (META_BLKADDR + 1) * EROFS_BLOCK_SIZE;
  for (const n of primaries) {
    const t = n.node.type;
    const p: Plan = { n, inodeSize: n.node.compact ? 32 : 64, xattrs: xattrArea(n.node), data: Buffer.alloc(0), blocks: [], inline: false, chunkCount: 0, offset: 0, firstBlock: 0 };
    let size = 0;
    if (t === 'dir') {
      const names = [DOT, DOTDOT, ...n.children.map((c) => nodes[c - 1].name)].sort(Buffer.compare);
      p.blocks = splitBlocks(names);
      const last = p.blocks[p.blocks.length - 1].reduce((s, x) => s + 12 + x.length, 0);
      size = (p.blocks.length - 1) * EROFS_BLOCK_SIZE + last;
    } else if (t === 'symlink') {
      p.data = targetOf(n.node);
      size = p.data.length;
    }
    const tail = size % EROFS_BLOCK_SIZE;
    p.inline = (t === 'dir' || t === 'symlink') && tail > 0 && p.inodeSize + p.xattrs.length + tail <= EROFS_BLOCK_SIZE;
    if (t === 'file') p.chunkCount = Math.ceil((n.node.size ?? 0) / cs);
    const head = p.inodeSize + p.xattrs.length;
    const need = t === 'file' ? Math.ceil(head / 8) * 8 + 8 * p.chunkCount : head + (p.inline ? tail : 0);
    let start = Math.ceil(cursor / 32) * 32;
    if (p.inline && (start % EROFS_BLOCK_SIZE) + need > EROFS_BLOCK_SIZE) start = Math.ceil(start / EROFS_BLOCK_SIZE) * EROFS_BLOCK_SIZE;
    p.offset = start;
    cursor = start + need;
    plans.set(n.index, p);
  }
  const nidOf = (index: number): number => (plans.get(nodes[index - 1].primary)!.offset - META_BLKADDR * EROFS_BLOCK_SIZE) / 32;
  let nextBlock = Math.ceil(cursor / EROFS_BLOCK_SIZE);
  const regions: { at: number; bytes: Buffer }[] = [];
  const chunks: V5ChunkInfo[] = [];
  let uncompressed = 0;
  let compressed = 0;
  for (const p of plans.values()) {
    const { n } = p;
    const t = n.node.type;
    let data = p.data;
    if (t === 'dir') {
      const nidByName = new Map<string, number>([['.', nidOf(n.index)], ['..', nidOf(n.parent || n.index)]]);
      const typeByName = new Map<string, number>([['.', 2], ['..', 2]]);
      for (const c of n.children) {
        nidByName.set(nodes[c - 1].name.toString('latin1'), nidOf(c));
        typeByName.set(nodes[c - 1].name.toString('latin1'), fileTypeFromMode(nodes[c - 1].mode));
      }
      const encoded = p.blocks.map((names) =>
        encodeV6DirBlock(names.map((name) => ({ name, nid: nidByName.get(name.toString('latin1'))!, fileType: typeByName.get(name.toString('latin1'))! }))),
      );
      data = Buffer.concat(encoded.map((b, i) => (i < encoded.length - 1 ? Buffer.concat([b, Buffer.alloc(EROFS_BLOCK_SIZE - b.length)]) : b)));
    }
    const full = p.inline ? Math.floor(data.length / EROFS_BLOCK_SIZE) : Math.ceil(data.length / EROFS_BLOCK_SIZE);
    p.firstBlock = full > 0 ? nextBlock : 0;
    if (full > 0) regions.push({ at: nextBlock * EROFS_BLOCK_SIZE, bytes: data.subarray(0, Math.min(data.length, full * EROFS_BLOCK_SIZE)) });
    nextBlock += full;
    const layout = t === 'file' ? ErofsLayout.CHUNK_BASED : p.inline ? ErofsLayout.FLAT_INLINE : ErofsLayout.FLAT_PLAIN;
    const size = t === 'file' ? n.node.size ?? 0 : data.length;
    let u = 0;
    if (t === 'file') u = 0x20 | (Math.log2(cs) - 12);
    else if (t === 'chr' || t === 'blk') u = n.node.rdev ?? 0;
    else if (t === 'dir' || t === 'symlink') u = p.firstBlock;
    const inode = encodeV6Inode({
      format: (p.inodeSize === 64 ? 1 : 0) | (layout << 1),
      xattrIcount: v6XattrIcount(p.xattrs.length),
      mode: n.mode,
      nlink: n.nlink,
      size,
      u,
      ino: n.index,
      uid: n.node.uid ?? 0,
      gid: n.node.gid ?? 0,
      mtime: p.inodeSize === 64 ? n.node.mtime ?? 0 : (n.node.mtime ?? buildTime) - buildTime,
      mtimeNsec: n.node.mtimeNsec ?? 0,
    });
    const parts = [inode, p.xattrs];
    if (p.inline) parts.push(data.subarray(full * EROFS_BLOCK_SIZE));
    if (t === 'file') {
      const head = p.inodeSize + p.xattrs.length;
      parts.push(Buffer.alloc(Math.ceil(head / 8) * 8 - head));
      for (let k = 0; k < p.chunkCount; k++) {
        if (n.node.holes?.includes(k)) {
          parts.push(encodeV6ChunkIndex({ deviceId: 1, ciIndex: 0, blkaddr: V6_NULL_BLKADDR }));
          continue;
        }
        const len = Math.min(cs, size - k * cs);
        const c: V5ChunkInfo = {
          blockId: fakeDigest(n.path, k),
          blobIndex: 0,
          flags: 0,
          compressedSize: len,
          uncompressedSize: len,
          compressedOffset: compressed,
          uncompressedOffset: uncompressed,
          fileOffset: k * cs,
          index: chunks.length,
          crc32: 0,
        };
        chunks.push(c);
        compressed += len;
        uncompressed += Math.ceil(len / EROFS_BLOCK_SIZE) * EROFS_BLOCK_SIZE;
        parts.push(encodeV6ChunkIndex({ deviceId: 1, ciIndex: c.index, blkaddr: c.uncompressedOffset / EROFS_BLOCK_SIZE }));
      }
    }
    regions.push({ at: p.offset, bytes: Buffer.concat(parts) });
  }
  const chunkTableOffset = chunks.length > 0 ? nextBlock * EROFS_BLOCK_SIZE : 0;
  const chunkTable = Buffer.concat(chunks.map(encodeV5ChunkInfo));
  const end = Math.max(nextBlock * EROFS_BLOCK_SIZE + chunkTable.length, (META_BLKADDR + 2) * EROFS_BLOCK_SIZE);
  const bytes = Buffer.alloc(Math.ceil(end / EROFS_BLOCK_SIZE) * EROFS_BLOCK_SIZE);
  const blobId = opts.blobId ?? DEFAULT_BLOB_ID;
  const prefetch = (opts.prefetch ?? []).map((path) => nidOf(nodes.find((n) => n.path === path)!.index));
  encodeV6Superblock({
    magic: EROFS_SUPER_MAGIC,
    checksum: 0,
    featureCompat: 0x4000_0000,
    blkszbits: 12,
    extslots: 0,
    rootNid: nidOf(1),
    inos: primaries.length,
    buildTime,
    buildTimeNsec: opts.buildTimeNsec ?? 0,
    blocks: uncompressed / EROFS_BLOCK_SIZE,
    metaBlkaddr: META_BLKADDR,
    xattrBlkaddr: 0,
    uuid: Buffer.alloc(16),
    volumeName: Buffer.alloc(16),
    featureIncompat: 0xc,
    u1: 0,
    extraDevices: 1,
    devtSlotoff: 11,
  }).copy(bytes, 1024);
  const hasXattr = primaries.some((n) => xattrList(n.node).length > 0);
  encodeV6SuperblockExt({
    flags: RafsSuperFlags.COMPRESSION_NONE | RafsSuperFlags.HASH_BLAKE3 | RafsSuperFlags.EXPLICIT_UID_GID | (hasXattr ? RafsSuperFlags.HAS_XATTR : 0),
    blobTableOffset: 4096,
    blobTableSize: 256,
    chunkSize: cs,
    chunkTableOffset,
    chunkTableSize: chunkTable.length,
    prefetchTableOffset: prefetch.length > 0 ? 4096 + 256 : 0,
    prefetchTableSize: prefetch.length * 4,
  }).copy(bytes, 1152);
  encodeV6Device({ blobId, blocks: uncompressed / EROFS_BLOCK_SIZE, mappedBlkaddr: 0 }).copy(bytes, 1408);
  encodeV6BlobEntry({
    blobId,
    blobIndex: 0,
    chunkSize: cs,
    chunkCount: chunks.length,
    compressionAlgo: 0,
    digestAlgo: 0,
    features: 1,
    compressedSize: compressed,
    uncompressedSize: uncompressed,
    blobTocSize: 0,
    ciCompressor: 0,
    ciOffset: compressed,
    ciCompressedSize: chunks.length * 16,
    ciUncompressedSize: chunks.length * 16,
    blobTocDigest: Buffer.alloc(32),
    blobMetaDigest: Buffer.alloc(32),
    blobMetaSize: 0,
    cipherIv: Buffer.alloc(8),
    cipherAlgo: 0,
  }).copy(bytes, 4096);
  prefetch.forEach((nid, i) => bytes.writeUInt32LE(nid, 4096 + 256 + i * 4));
  for (const r of regions) r.bytes.copy(bytes, r.at);
  chunkTable.copy(bytes, chunkTableOffset);
  const offsets = new Map([...plans].map(([i, p]) => [i, p.offset]));
  return { bytes, nodes, nids: nodes.map((n) => nidOf(n.index)), offsets };
}
