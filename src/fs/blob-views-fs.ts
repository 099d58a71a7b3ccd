// The FileSystem of the erofs fs driver's own FUSE connection: one read-only file per
// data blob of every mounted image, `/<mount index>/<blob id>`, whose bytes are the
// blob's uncompressed address space (storage/blob-view.ts), and the image's bootstrap,
// `/<mount index>/bootstrap`, as the daemon parsed it. The kernel's erofs mounts these
// files (file-backed, or through loop devices); no user sees this tree (it is mounted
// under the daemon's state directory). Node ids are computed from the mount index and the
// blob's position, as in the pseudo fs, so a successor that re-attaches the same mounts
// at the same indexes answers every node id the kernel (and every loop device) holds.
import { FuseError, RafsFormatError } from '../errors.js';
import type { Attr, DirentSink, FileSystem, StatFs } from '../fuse/filesystem.js';
import { S_IFDIR, S_IFREG } from '../fuse/filesystem.js';
import type { BlobView } from '../storage/blob-view.js';
import { MAX_INDEX, ROOT_ID, imageNodeId, indexOfNode, inoOfNode } from './node-id.js';
import { pooledRead } from './read-buffer.js';

/** What the views of one image mount are attached as. */
export interface ViewSet {
  readonly index: number;
  /** In blob table order: erofs' device slot k + 1 is views[k]. */
  readonly views: readonly BlobView[];
  /** The bootstrap (an EROFS image): erofs' primary device. */
  readonly bootstrapBytes: Buffer;
}

/** Where the tree comes from: the daemon's mount table, so the views need no bookkeeping of their own. */
export interface ViewSource {
  viewSet(index: number): ViewSet | undefined;
  /** Indexes of the mounts that have views, ascending. */
  indexes(): number[];
}

/** Who owns the views tree and when it was made. */
export interface BlobViewsFsOptions {
  uid: number;
  gid: number;
  /** mtime of every node (seconds). */
  startTime: number;
  /** Told about every read that failed in storage. */
  onReadError?: (err: unknown) => void;
}

const DIR_INO = 0;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
const STATFS: StatFs = { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 4096, namelen: 255, frsize: 0 };
const noEntry = new RafsFormatError('ERR_RAFS_NO_ENTRY', 'failed to look up: no such blob view');
const stale = new FuseError('ERR_FS_STALE', 'failed to resolve node: its image is no longer mounted');
const isDir = new FuseError('ERR_FS_IS_DIR', 'failed to read: a directory');

/** The bootstrap's inode number within its image: after the views (ino k + 1 is views[k]). */
const bootstrapIno = (set: ViewSet): number => set.views.length + 1;

/** Path of a view inside the views mount. */
export function viewPath(index: number, blobId: string): string {
  return `/${index}/${blobId}`;
}

/** Name of the bootstrap beside an image's views (a blob id is 64 hex digits: no clash). */
export const BOOTSTRAP_NAME = 'bootstrap';

/** Path of an image's bootstrap inside the views mount. */
export function bootstrapPath(index: number): string {
  return `/${index}/${BOOTSTRAP_NAME}`;
}

/** The views tree: a live projection of the mount table (the kernel looks names up with a zero negative timeout). */
export class BlobViewsFs implements FileSystem {
  readonly #opts: BlobViewsFsOptions;
  readonly #source: ViewSource;

  constructor(source: ViewSource, opts: BlobViewsFsOptions) {
    this.#source = source;
    this.#opts = opts;
  }

  lookup(parent: number, name: Buffer): Attr {
    if (parent === ROOT_ID) {
      const text = name.toString('latin1');
      const index = Number(text);
      if (!/^[1-9][0-9]*$/.test(text) || index > MAX_INDEX || this.#source.viewSet(index) === undefined) throw noEntry;
      return this.#dirAttr(index);
    }
    const set = this.#set(parent);
    if (inoOfNode(parent) !== DIR_INO) throw new RafsFormatError('ERR_RAFS_NOT_DIR', 'failed to look up: a blob view is not a directory');
    const id = name.toString('latin1');
    if (id === BOOTSTRAP_NAME) return this.#bootstrapAttr(set);
    const k = set.views.findIndex((v) => v.blob.blobId === id);
    if (k < 0) throw noEntry;
    return this.#fileAttr(set.index, k, set.views[k]);
  }

  getattr(nodeId: number): Attr {
    if (nodeId === ROOT_ID) return this.#attr(ROOT_ID, S_IFDIR | 0o500, 2, 0);
    const set = this.#set(nodeId);
    const ino = inoOfNode(nodeId);
    if (ino === DIR_INO) return this.#dirAttr(set.index);
    if (ino === bootstrapIno(set)) return this.#bootstrapAttr(set);
    return this.#fileAttr(set.index, ino - 1, this.#view(set, ino));
  }

  read(nodeId: number, _fh: number, offset: number, size: number): Promise<Buffer> | Buffer {
    if (nodeId === ROOT_ID) throw isDir;
    const set = this.#set(nodeId);
    const ino = inoOfNode(nodeId);
    if (ino === DIR_INO) throw isDir;
    // The bootstrap is in memory already: a slice of it, no copy.
    if (ino === bootstrapIno(set)) return set.bootstrapBytes.subarray(offset, offset + size);
    const view = this.#view(set, ino);
    const n = Math.min(size, view.size - offset);
    if (n <= 0) return Buffer.alloc(0);
    return pooledRead(n, (out) => view.read(offset, out), this.#opts.onReadError);
  }

  readdir(nodeId: number, _fh: number, offset: number, out: DirentSink): void {
    if (offset < 1 && !out.add(DOT, nodeId, S_IFDIR, 1)) return;
    if (offset < 2 && !out.add(DOTDOT, ROOT_ID, S_IFDIR, 2)) return;
    if (nodeId === ROOT_ID) {
      const list = this.#source.indexes();
      for (let k = Math.max(offset, 2) - 2; k < list.length; k++) {
        const attr = this.#dirAttr(list[k]);
        if (!out.add(String(list[k]), attr.ino, S_IFDIR, k + 3, out.plus ? attr : undefined)) return;
      }
      return;
    }
    const set = this.#set(nodeId);
    if (inoOfNode(nodeId) !== DIR_INO) throw new RafsFormatError('ERR_RAFS_NOT_DIR', 'failed to list: a blob view is not a directory');
    for (let k = Math.max(offset, 2) - 2; k < set.views.length; k++) {
      const attr = this.#fileAttr(set.index, k, set.views[k]);
      if (!out.add(set.views[k].blob.blobId, attr.ino, S_IFREG, k + 3, out.plus ? attr : undefined)) return;
    }
    if (offset <= set.views.length + 2) {
      const attr = this.#bootstrapAttr(set);
      out.add(BOOTSTRAP_NAME, attr.ino, S_IFREG, set.views.length + 3, out.plus ? attr : undefined);
    }
  }

  readdirplus(nodeId: number, fh: number, offset: number, out: DirentSink): void {
    this.readdir(nodeId, fh, offset, out);
  }

  statfs(): StatFs {
    return STATFS;
  }

  #set(nodeId: number): ViewSet {
    const set = this.#source.viewSet(indexOfNode(nodeId));
    if (set === undefined) throw stale;
    return set;
  }

  #view(set: ViewSet, ino: number): BlobView {
    const v = set.views[ino - 1];
    if (v === undefined) throw stale;
    return v;
  }

  #dirAttr(index: number): Attr {
    return this.#attr(imageNodeId(index, DIR_INO), S_IFDIR | 0o500, 2, 0);
  }

  #bootstrapAttr(set: ViewSet): Attr {
    return this.#attr(imageNodeId(set.index, bootstrapIno(set)), S_IFREG | 0o400, 1, set.bootstrapBytes.length);
  }

  #fileAttr(index: number, k: number, view: BlobView): Attr {
    return this.#attr(imageNodeId(index, k + 1), S_IFREG | 0o400, 1, view.size);
  }

  #attr(ino: number, mode: number, nlink: number, size: number): Attr {
    const o = this.#opts;
    return { ino, mode, nlink, uid: o.uid, gid: o.gid, size, blocks: Math.ceil(size / 512), rdev: 0, mtime: o.startTime, mtimeNsec: 0 };
  }
}
