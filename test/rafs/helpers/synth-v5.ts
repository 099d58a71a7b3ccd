// Writes a synthetic RAFS v5 bootstrap (sha256, uncompressed, one blob) from a SynthNode
// tree with the layout encoders: superblock, inode table, prefetch table, blob tables,
// then the records in index order with the i_digest rules of docs/format.md §2.
import { align8, RafsSuperFlags, V5InodeFlags } from '../../../src/rafs/layout/common.js';
import {
  encodeV5BlobTable,
  encodeV5ExtBlobEntry,
  encodeV5InodeRecord,
  encodeV5InodeTable,
  encodeV5PrefetchTable,
  encodeV5Superblock,
  V5_SUPER_MAGIC,
  V5_SUPER_VERSION,
  V5_SUPERBLOCK_SIZE,
  type V5ChunkInfo,
  type V5InodeRecord,
} from '../../../src/rafs/layout/v5.js';
import { DEFAULT_BLOB_ID, fakeDigest, numberTree, sha256, targetOf, xattrList, type Numbered, type SynthNode, type SynthOptions } from './synth.js';

export interface V5Image {
  bytes: Buffer;
  nodes: Numbered[];
  /** Byte offset of each index's record (`offsets[i - 1]`). */
  offsets: number[];
}

export function buildV5(root: SynthNode, opts: SynthOptions = {}): V5Image {
  const cs = opts.chunkSize ?? 0x100000;
  const nodes = numberTree(root);
  const ino = (n: Numbered): number => n.primary;
  let blobOffset = 0;
  let chunkIndex = 0;
  const chunksOf = new Map<number, V5ChunkInfo[]>();
  for (const n of nodes) {
    if (n.node.type !== 'file' || n.primary !== n.index) continue;
    const size = n.node.size ?? 0;
    const list: V5ChunkInfo[] = [];
    for (let k = 0; k * cs < size; k++) {
      if (n.node.holes?.includes(k)) continue;
      const len = Math.min(cs, size - k * cs);
      list.push({
        blockId: fakeDigest(n.path, k),
        blobIndex: 0,
        flags: 0,
        compressedSize: len,
        uncompressedSize: len,
        compressedOffset: blobOffset,
        uncompressedOffset: blobOffset,
        fileOffset: k * cs,
        index: chunkIndex++,
        crc32: 0,
      });
      blobOffset += len;
    }
    chunksOf.set(n.index, list);
  }
  const digests = new Map<number, Buffer>();
  const digestOf = (n: Numbered): Buffer => {
    let d = digests.get(n.index);
    if (d) return d;
    if (n.node.type === 'dir') d = sha256(n.children.map((c) => digestOf(nodes[c - 1])));
    else if (n.node.type === 'symlink') d = sha256([targetOf(n.node)]);
    else if (n.node.type === 'file') d = sha256((chunksOf.get(n.primary) ?? []).map((c) => c.blockId));
    else d = sha256([]);
    digests.set(n.index, d);
    return d;
  };
  const records: V5InodeRecord[] = nodes.map((n) => {
    const t = n.node.type;
    const xattrs = xattrList(n.node);
    const symlink = t === 'symlink' ? targetOf(n.node) : Buffer.alloc(0);
    const chunks = t === 'file' ? chunksOf.get(n.primary) ?? [] : [];
    const dirSize = Math.max(4096, Math.ceil(n.children.reduce((s, c) => s + nodes[c - 1].name.length + 8, 0) / 4096) * 4096);
    const size = t === 'dir' ? dirSize : t === 'symlink' ? symlink.length : t === 'file' ? n.node.size ?? 0 : 0;
    let flags = 0;
    if (t === 'symlink') flags |= V5InodeFlags.SYMLINK;
    if (xattrs.length > 0) flags |= V5InodeFlags.XATTR;
    if (n.node.holes?.length) flags |= V5InodeFlags.HAS_HOLE;
    const name = n.index === 1 ? Buffer.from('/') : n.name;
    return {
      inode: {
        digest: digestOf(n),
        parent: n.parent,
        ino: ino(n),
        uid: n.node.uid ?? 0,
        gid: n.node.gid ?? 0,
        projid: 0,
        mode: n.mode,
        size,
        blocks: Math.ceil(size / 512),
        flags,
        nlink: n.nlink,
        childIndex: t === 'dir' && n.children.length > 0 ? n.children[0] : 0,
        childCount: t === 'dir' ? n.children.length : chunks.length,
        nameSize: name.length,
        symlinkSize: symlink.length,
        rdev: n.node.rdev ?? 0,
        mtimeNsec: n.node.mtimeNsec ?? 0,
        mtime: n.node.mtime ?? 0,
      },
      name,
      symlink,
      xattrs,
      chunks,
    };
  });
  const prefetch = (opts.prefetch ?? []).map((p) => {
    const hit = nodes.find((n) => n.path === p);
    if (!hit) throw new Error(`no such path ${p}`);
    return hit.primary;
  });
  const blobTable = encodeV5BlobTable([{ readaheadOffset: 0, readaheadSize: 0, blobId: opts.blobId ?? DEFAULT_BLOB_ID }]);
  const ext = encodeV5ExtBlobEntry({ chunkCount: chunkIndex, features: 0, uncompressedSize: blobOffset, compressedSize: blobOffset });
  const inodeTableOffset = V5_SUPERBLOCK_SIZE;
  const prefetchOffset = inodeTableOffset + align8(nodes.length * 4);
  const blobTableOffset = prefetchOffset + align8(prefetch.length * 4);
  const extOffset = blobTableOffset + blobTable.length;
  let pos = extOffset + ext.length;
  const recordBytes = records.map((r) => encodeV5InodeRecord(r));
  const offsets = recordBytes.map((b) => {
    const at = pos;
    pos += b.length;
    return at;
  });
  const sb = encodeV5Superblock({
    magic: V5_SUPER_MAGIC,
    fsVersion: V5_SUPER_VERSION,
    sbSize: V5_SUPERBLOCK_SIZE,
    blockSize: cs,
    flags: RafsSuperFlags.COMPRESSION_NONE | RafsSuperFlags.HASH_SHA256 | RafsSuperFlags.EXPLICIT_UID_GID |
      (records.some((r) => r.xattrs?.length) ? RafsSuperFlags.HAS_XATTR : 0),
    inodesCount: nodes.filter((n) => n.primary === n.index).length,
    inodeTableOffset,
    prefetchTableOffset: prefetchOffset,
    blobTableOffset,
    inodeTableEntries: nodes.length,
    prefetchTableEntries: prefetch.length,
    blobTableSize: blobTable.length,
    extendedBlobTableEntries: 1,
    extendedBlobTableOffset: extOffset,
  });
  const bytes = Buffer.concat([
    sb,
    encodeV5InodeTable(offsets.map((o) => o / 8)),
    encodeV5PrefetchTable(prefetch),
    blobTable,
    ext,
    ...recordBytes,
  ]);
  return { bytes, nodes, offsets };
}
