// Overlay semantics for layered images (upstream `Tree::merge_overaly`): an upper layer is
// applied to a lower tree. OCI whiteouts (`.wh.NAME` deletes NAME, `.wh..wh..opq` hides
// every lower sibling) or overlayfs ones (a 0:0 character device deletes its name, a
// directory with trusted.overlay.opaque=y hides the lower directory's content). Whiteouts
// are consumed: none is left in the result. Upper entries replace lower ones; directories
// present in both are merged.
import { BuildError } from '../errors.js';
import { S_IFCHR, S_IFMT } from '../rafs/layout/common.js';
import { isDir, nameKey, sortedChildren, type BuildEntry, type BuildInode } from './tree.js';

export type WhiteoutSpec = 'oci' | 'overlayfs' | 'none';
export const WHITEOUT_SPECS: readonly WhiteoutSpec[] = ['oci', 'overlayfs', 'none'];

export const OCI_WHITEOUT_PREFIX = Buffer.from('.wh.');
export const OCI_WHITEOUT_OPAQUE = Buffer.from('.wh..wh..opq');
export const OVERLAYFS_OPAQUE_XATTR = Buffer.from('trusted.overlay.opaque');

type Whiteout = { kind: 'remove'; name: Buffer } | { kind: 'opaque' } | { kind: 'opaque-dir' };

function startsWith(b: Buffer, prefix: Buffer): boolean {
  return b.length >= prefix.length && b.subarray(0, prefix.length).equals(prefix);
}

/** True for an overlayfs whiteout: a character device with device number 0:0. */
export function isOverlayfsWhiteout(i: BuildInode): boolean {
  return (i.mode & S_IFMT) === S_IFCHR && i.rdev === 0;
}

/** True for a directory marked opaque the overlayfs way. */
export function isOverlayfsOpaque(i: BuildInode): boolean {
  return isDir(i) && i.xattrs.some((x) => x.name.equals(OVERLAYFS_OPAQUE_XATTR) && x.value.toString('latin1') === 'y');
}

function whiteoutOf(e: BuildEntry, spec: WhiteoutSpec): Whiteout | undefined {
  if (spec === 'oci') {
    if (e.name.equals(OCI_WHITEOUT_OPAQUE)) return { kind: 'opaque' };
    if (startsWith(e.name, OCI_WHITEOUT_PREFIX)) return { kind: 'remove', name: e.name.subarray(OCI_WHITEOUT_PREFIX.length) };
  } else if (spec === 'overlayfs') {
    if (isOverlayfsWhiteout(e.inode)) return { kind: 'remove', name: e.name };
    if (isOverlayfsOpaque(e.inode)) return { kind: 'opaque-dir' };
  }
  return undefined;
}

/** A copy of directory inode `d` with no children (and, for overlayfs, no opaque marker). */
function bareDir(d: BuildInode, spec: WhiteoutSpec): BuildInode {
  const xattrs = spec === 'overlayfs' ? d.xattrs.filter((x) => !x.name.equals(OVERLAYFS_OPAQUE_XATTR)) : d.xattrs;
  return { ...d, xattrs, children: new Map() };
}

/**
 * Applies `upper` (a layer's root) to `lower` (the tree below it, modified in place) and
 * returns the merged root: the upper root's attributes over the merged entries.
 */
export function applyLayer(lower: BuildInode, upper: BuildInode, spec: WhiteoutSpec): BuildInode {
  if (!isDir(lower) || !isDir(upper)) throw new BuildError('ERR_BUILD_SOURCE', 'failed to merge layers: a root is not a directory');
  const root: BuildInode = { ...bareDir(upper, spec), children: lower.children };
  mergeChildren(root, upper, spec);
  return root;
}

function mergeChildren(lower: BuildInode, upper: BuildInode, spec: WhiteoutSpec): void {
  const children = lower.children as Map<string, BuildEntry>;
  const kept: { entry: BuildEntry; opaque: boolean }[] = [];
  // Whiteouts first, so that they only ever hide entries of lower layers.
  for (const u of sortedChildren(upper)) {
    const w = whiteoutOf(u, spec);
    if (!w) kept.push({ entry: u, opaque: false });
    else if (w.kind === 'remove') children.delete(nameKey(w.name));
    else if (w.kind === 'opaque') children.clear();
    else kept.push({ entry: u, opaque: true });
  }
  for (const { entry: u, opaque } of kept) {
    const key = nameKey(u.name);
    const existing = children.get(key);
    if (!isDir(u.inode)) {
      children.set(key, u);
      continue;
    }
    // A directory: merged with a lower directory of the same name unless opaque; its own
    // entries are applied recursively so that nested whiteouts are consumed too.
    const keepLower = existing && isDir(existing.inode) && !opaque;
    const merged: BuildInode = { ...bareDir(u.inode, spec), children: keepLower ? existing.inode.children : new Map() };
    children.set(key, { name: u.name, inode: merged });
    mergeChildren(merged, u.inode, spec);
  }
}
