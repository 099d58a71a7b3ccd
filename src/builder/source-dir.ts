// Scans a source directory into a build tree: lstat with nanosecond mtimes, raw-byte names
// (non-UTF-8 names survive), symlink targets, device numbers, xattrs, and hard links by
// (st_dev, st_ino). Sockets are skipped with a warning, as upstream does. File data is not
// read here: regular files keep their path for the chunker. Synchronous (a CLI tool).
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { BuildError } from '../errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../rafs/layout/common.js';
import { checkName, nameKey, type BuildInode } from './tree.js';
import { filterXattrs } from './xattr-rules.js';
import { readXattrs } from './xattr.js';

export interface DirSourceOptions {
  /** Keep uid/gid (false with --repeatable: every owner becomes 0). */
  explicitUidGid: boolean;
  warn(message: string): void;
}

const NS = 1_000_000_000n;

function inodeFromStat(st: BigIntStats, path: Buffer, explicitUidGid: boolean, warn: (m: string) => void): BuildInode {
  const mode = Number(st.mode);
  const type = mode & S_IFMT;
  const inode: BuildInode = {
    mode,
    uid: explicitUidGid ? Number(st.uid) : 0,
    gid: explicitUidGid ? Number(st.gid) : 0,
    // Images hold unsigned times: a time before 1970 is recorded as the epoch.
    mtime: st.mtimeNs < 0n ? 0 : Number(st.mtimeNs / NS),
    mtimeNsec: st.mtimeNs < 0n ? 0 : Number(st.mtimeNs % NS),
    // Upstream stores st_rdev truncated to 32 bits: the Linux "new" encoding for majors < 4096.
    rdev: type === S_IFCHR || type === S_IFBLK ? Number(st.rdev & 0xffff_ffffn) : 0,
    size: type === S_IFREG ? Number(st.size) : 0,
    xattrs: filterXattrs(readXattrs(path), path.toString(), warn),
  };
  if (type === S_IFLNK) {
    inode.symlink = readlinkSync(path, { encoding: 'buffer' });
    inode.size = inode.symlink.length;
  } else if (type === S_IFREG) {
    inode.data = { kind: 'path', path };
  } else if (type === S_IFDIR) {
    inode.children = new Map();
  }
  return inode;
}

function stat(path: Buffer): BigIntStats {
  try {
    return lstatSync(path, { bigint: true });
  } catch (err) {
    throw new BuildError('ERR_BUILD_SOURCE', `failed to stat ${path.toString()}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The tree of directory `root`. `onEntry` is told about each entry (progress). The root's
 * mtime is recorded as 0, as upstream does for repeatable images.
 */
export function scanDirectory(root: string, opts: DirSourceOptions, onEntry?: () => void): BuildInode {
  const rootPath = Buffer.from(root);
  const rootStat = stat(rootPath);
  if (!rootStat.isDirectory()) throw new BuildError('ERR_BUILD_SOURCE', `failed to build from ${root}: not a directory`);
  const tree = inodeFromStat(rootStat, rootPath, opts.explicitUidGid, opts.warn);
  tree.mtime = 0;
  tree.mtimeNsec = 0;
  const links = new Map<string, BuildInode>();
  const stack: { path: Buffer; inode: BuildInode }[] = [{ path: rootPath, inode: tree }];
  const slash = Buffer.from('/');
  while (stack.length > 0) {
    const dir = stack.pop() as { path: Buffer; inode: BuildInode };
    let names: Buffer[];
    try {
      names = readdirSync(dir.path, { encoding: 'buffer' });
    } catch (err) {
      throw new BuildError('ERR_BUILD_SOURCE', `failed to read directory ${dir.path.toString()}: ${(err as Error).message}`, { cause: err });
    }
    for (const name of names) {
      const path = Buffer.concat([dir.path, slash, name]);
      checkName(name, path.toString());
      const st = stat(path);
      const type = Number(st.mode) & S_IFMT;
      if (type === S_IFSOCK) {
        opts.warn(`skipping socket ${path.toString()}`);
        continue;
      }
      let inode: BuildInode | undefined;
      const linkKey = type !== S_IFDIR && st.nlink > 1n ? `${st.dev}:${st.ino}` : undefined;
      if (linkKey) inode = links.get(linkKey);
      if (!inode) {
        inode = inodeFromStat(st, path, opts.explicitUidGid, opts.warn);
        if (linkKey) links.set(linkKey, inode);
      }
      dir.inode.children!.set(nameKey(name), { name, inode });
      onEntry?.();
      if (type === S_IFDIR) stack.push({ path, inode });
    }
  }
  return tree;
}
