// Writes a RAFS v5 bootstrap (docs/format.md §3) from a build tree: inodes numbered as
// upstream does (§3.8), one record per name (hard links repeat the full record with the
// first link's i_ino), i_digest per §2, sections 8-byte aligned, records contiguous to
// EOF. Returns the bytes; the caller writes them atomically.
import { BuildError } from '../errors.js';
import { align8, BlobFeatures, S_IFDIR, S_IFLNK, S_IFREG, V5InodeFlags } from '../rafs/layout/common.js';
import {
  encodeV5BlobTable,
  encodeV5ExtBlobEntry,
  encodeV5InodeRecord,
  encodeV5InodeTable,
  encodeV5PrefetchTable,
  encodeV5Superblock,
  V5_EXT_BLOB_ENTRY_SIZE,
  V5_SUPER_MAGIC,
  V5_SUPER_VERSION,
  V5_SUPERBLOCK_SIZE,
} from '../rafs/layout/v5.js';
import { digest } from '../storage/digest.js';
import { chunkRecord, superFlags, typeOf, type ImageSpec } from './image-spec.js';
import { countLinks, indexOrder, type BuildInode } from './tree.js';

const ROOT_NAME = Buffer.from('/');
const DIR_BLOCK = 4096;

function xattrPairsSize(i: BuildInode): number {
  return i.xattrs.reduce((s, x) => s + 4 + x.name.length + 1 + x.value.length, 0);
}

/** Encodes the whole v5 bootstrap. */
export function writeV5Bootstrap(spec: ImageSpec): Buffer {
  const { entries: order, childStart } = indexOrder(spec.root);
  const n = order.length;
  // ino of an inode = index of its first name.
  const { firstIndex: inoOf, nlink } = countLinks(order);

  // Digests bottom-up: children always have larger indexes than their directory.
  const digests = new Array<Buffer>(n);
  const childDigests = new Map<number, Buffer[]>();
  for (let i = n - 1; i >= 0; i--) {
    const o = order[i];
    const t = typeOf(o.inode);
    let parts: Buffer[];
    if (t === S_IFDIR) parts = childDigests.get(i + 1)?.reverse() ?? [];
    else if (t === S_IFREG) parts = (o.inode.chunks ?? []).map((c) => c.digest);
    else if (t === S_IFLNK) parts = [o.inode.symlink as Buffer];
    else parts = [];
    digests[i] = digest(spec.digester, Buffer.concat(parts));
    if (i > 0) {
      const list = childDigests.get(o.parentIndex) ?? [];
      list.push(digests[i]);
      childDigests.set(o.parentIndex, list);
    }
  }

  const records: Buffer[] = [];
  let hasXattr = false;
  for (let i = 0; i < n; i++) {
    const o = order[i];
    const inode = o.inode;
    const t = typeOf(inode);
    const name = o.entry ? o.entry.name : ROOT_NAME;
    const chunks = t === S_IFREG ? (inode.chunks ?? []) : [];
    let flags = 0;
    if (t === S_IFLNK) flags |= V5InodeFlags.SYMLINK;
    if (inode.xattrs.length > 0) {
      flags |= V5InodeFlags.XATTR;
      hasXattr = true;
    }
    if (t === S_IFREG && chunks.length !== Math.ceil(inode.size / spec.chunkSize)) flags |= V5InodeFlags.HAS_HOLE;
    let size = inode.size;
    let childIndex = 0;
    let childCount = 0;
    if (t === S_IFDIR) {
      const kids = inode.children ? [...inode.children.values()] : [];
      size = kids.length === 0 ? DIR_BLOCK : Math.ceil(kids.reduce((s, e) => s + e.name.length + 8, 0) / DIR_BLOCK) * DIR_BLOCK;
      childIndex = childStart.get(inode) as number;
      childCount = kids.length;
    } else if (t === S_IFREG) {
      childCount = chunks.length;
    }
    const symlink = t === S_IFLNK ? (inode.symlink as Buffer) : undefined;
    if (symlink && symlink.length > 0xffff) throw new BuildError('ERR_BUILD_LIMIT', `failed to write v5 inode: symlink target of ${symlink.length} bytes`);
    records.push(
      encodeV5InodeRecord({
        inode: {
          digest: digests[i],
          parent: i === 0 ? 0 : (inoOf.get(order[o.parentIndex - 1].inode) as number),
          ino: inoOf.get(inode) as number,
          uid: inode.uid,
          gid: inode.gid,
          projid: 0,
          mode: inode.mode,
          size,
          blocks: Math.ceil((size + align8(xattrPairsSize(inode))) / 512),
          flags,
          nlink: nlink(inode),
          childIndex,
          childCount,
          nameSize: name.length,
          symlinkSize: symlink ? symlink.length : 0,
          rdev: inode.rdev,
          mtimeNsec: inode.mtimeNsec,
          mtime: inode.mtime,
        },
        name,
        symlink,
        xattrs: inode.xattrs,
        chunks: chunks.map(chunkRecord),
      }),
    );
  }

  const blobTable = encodeV5BlobTable(spec.blobs.map((b) => ({ readaheadOffset: b.readaheadOffset, readaheadSize: b.readaheadSize, blobId: b.blobId })));
  const prefetch = spec.prefetch.map((i) => inoOf.get(i) as number);
  const inodeTableOffset = V5_SUPERBLOCK_SIZE;
  const prefetchTableOffset = inodeTableOffset + align8(n * 4);
  const blobTableOffset = prefetchTableOffset + align8(prefetch.length * 4);
  const extOffset = blobTableOffset + blobTable.length;
  let pos = extOffset + spec.blobs.length * V5_EXT_BLOB_ENTRY_SIZE;
  const table = new Uint32Array(n);
  records.forEach((r, i) => {
    table[i] = pos / 8;
    pos += r.length;
  });
  if (pos / 8 >= 1 << 29) throw new BuildError('ERR_BUILD_LIMIT', `failed to write v5 bootstrap: ${pos} bytes of metadata exceed the inode table range`);
  const sb = encodeV5Superblock({
    magic: V5_SUPER_MAGIC,
    fsVersion: V5_SUPER_VERSION,
    sbSize: V5_SUPERBLOCK_SIZE,
    blockSize: spec.chunkSize,
    flags: superFlags(spec, hasXattr),
    inodesCount: inoOf.size,
    inodeTableOffset,
    prefetchTableOffset,
    blobTableOffset,
    inodeTableEntries: n,
    prefetchTableEntries: prefetch.length,
    blobTableSize: blobTable.length,
    extendedBlobTableEntries: spec.blobs.length,
    extendedBlobTableOffset: spec.blobs.length > 0 ? extOffset : 0,
  });
  const ext = spec.blobs.map((b) =>
    encodeV5ExtBlobEntry({
      chunkCount: b.chunkCount,
      // The in-memory-only bit must never reach the disk (docs/format.md §1.3).
      features: b.features & ~BlobFeatures.V5_NO_EXT_BLOB_TABLE,
      uncompressedSize: b.uncompressedSize,
      compressedSize: b.compressedSize,
    }),
  );
  return Buffer.concat([sb, encodeV5InodeTable(table), encodeV5PrefetchTable(prefetch), blobTable, ...ext, ...records]);
}
