// Loads an existing image (a parent bootstrap, a chunk dictionary, a merge input) as a
// build tree, through the format-neutral reader: attributes, xattrs, symlink targets and
// each file's chunks, with hard links sharing one inode. Chunk blob indexes are mapped
// into the blob table of the image being written.
import { stat } from 'node:fs/promises';
import { BuildError, NydusError } from '../errors.js';
import { BlobFeatures, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../rafs/layout/common.js';
import { blobIdFromMetaPath } from '../rafs/reader/inline-meta.js';
import { parseBootstrap, readBootstrapFile, type AnyRafsSuper } from '../rafs/reader/open.js';
import type { Compressor, Digester } from '../storage/types.js';
import { walk } from '../rafs/walk.js';
import { blobsOf, type OutBlob } from './image-spec.js';
import { nameKey, type BuildInode } from './tree.js';

/** An opened image with its raw bytes and blob entries. */
export interface LoadedImage {
  path: string;
  sb: AnyRafsSuper;
  blobs: OutBlob[];
}

/**
 * Reads and parses a bootstrap, or the bootstrap inlined in a data blob (the reader's own
 * size checks apply). A blob with inlined metadata is named after the file's name, as
 * upstream names it, and carried on as an ordinary blob: the new image is not inlined in it.
 */
export async function loadImage(path: string, what: string): Promise<LoadedImage> {
  let bytes: Buffer;
  try {
    bytes = await readBootstrapFile(path);
  } catch (err) {
    if (err instanceof NydusError) throw err;
    throw new BuildError('ERR_BUILD_SOURCE', `failed to read ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
  const sb = parseBootstrap(bytes);
  const blobs: OutBlob[] = [];
  for (const b of blobsOf(sb, bytes)) {
    if ((b.features & BlobFeatures.INLINED_FS_META) === 0) blobs.push(b);
    else if ((b.features & BlobFeatures.SEPARATE) === 0) blobs.push({ ...b, blobId: blobIdFromMetaPath(path), features: b.features & ~BlobFeatures.INLINED_FS_META });
    else blobs.push({ ...b, ...(await metaBlobOf(path)), features: b.features & ~BlobFeatures.INLINED_FS_META });
  }
  return { path, sb, blobs };
}

/**
 * A zran meta blob with the bootstrap inlined, carried into a new image: the new
 * bootstrap names it by digest and size, which the file's name and size give.
 */
async function metaBlobOf(path: string): Promise<Pick<OutBlob, 'blobMetaDigest' | 'blobMetaSize'>> {
  const id = blobIdFromMetaPath(path);
  if (!/^[0-9a-f]{64}$/.test(id)) throw new BuildError('ERR_BUILD_SOURCE', `failed to use ${path}: a meta blob with an inlined bootstrap must be named by its sha256 (as -D names it)`);
  return { blobMetaDigest: Buffer.from(id, 'hex'), blobMetaSize: (await stat(path)).size };
}

/** Settings two images must share for their chunks to be reused (upstream `check_compatibility`). */
export interface ImageSettings {
  version: 5 | 6;
  chunkSize: number;
  compressor: Compressor;
  digester: Digester;
}

export function checkCompatible(img: LoadedImage, want: ImageSettings, what: string): void {
  const sb = img.sb;
  const diff: string[] = [];
  if (sb.version !== want.version) diff.push(`RAFS v${sb.version} (want v${want.version})`);
  if (sb.chunkSize !== want.chunkSize) diff.push(`chunk size 0x${sb.chunkSize.toString(16)} (want 0x${want.chunkSize.toString(16)})`);
  if (sb.compressor !== want.compressor) diff.push(`compressor ${sb.compressor} (want ${want.compressor})`);
  if (sb.digester !== want.digester) diff.push(`digester ${sb.digester} (want ${want.digester})`);
  if (diff.length > 0) throw new BuildError('ERR_BUILD_SOURCE', `failed to use ${what} ${img.path}: ${diff.join(', ')}`);
}

/** The image's tree. `blobMap[i]` is the output index of the image's blob `i`. */
export function treeFromImage(sb: AnyRafsSuper, blobMap: readonly number[]): BuildInode {
  const byIno = new Map<number, BuildInode>();
  let root: BuildInode | undefined;
  for (const e of walk(sb)) {
    let inode = byIno.get(e.ino);
    if (!inode) {
      const a = e.attr;
      const type = a.mode & S_IFMT;
      inode = {
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        mtime: a.mtime,
        mtimeNsec: a.mtimeNsec,
        rdev: a.rdev,
        size: type === S_IFDIR ? 0 : a.size,
        xattrs: sb
          .listXattrs(e.ino)
          .map((name) => ({ name, value: sb.getXattr(e.ino, name) ?? Buffer.alloc(0) }))
          .sort((x, y) => Buffer.compare(x.name, y.name)),
      };
      if (type === S_IFDIR) inode.children = new Map();
      else if (type === S_IFLNK) inode.symlink = Buffer.from(sb.readlink(e.ino));
      else if (type === S_IFREG) {
        inode.chunks = a.size === 0 ? [] : sb.fileChunks(e.ino, 0, a.size).map((c) => ({ ...c, blobIndex: blobMap[c.blobIndex] }));
      }
      byIno.set(e.ino, inode);
    }
    if (e.depth === 0) {
      root = inode;
      continue;
    }
    const parent = byIno.get(e.parent) as BuildInode;
    const name = Buffer.from(e.name);
    parent.children!.set(nameKey(name), { name, inode });
  }
  return root as BuildInode;
}
