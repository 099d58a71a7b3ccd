// Which extended attributes an image can hold (docs/format.md §1.6, §4.11): a name with a
// prefix EROFS can index (user., trusted., security., the two POSIX ACL names), at most
// 255 bytes, and a value that fits v6's 16-bit size. Upstream fails the whole build on
// any other; this builder drops it with a warning (decision 0003).
import { RAFS_MAX_XATTR_NAME } from '../rafs/layout/common.js';
import type { Xattr } from '../rafs/layout/v5.js';

/** Largest value both formats can hold (v6 `e_value_size` is a u16). */
export const MAX_XATTR_VALUE = 0xffff;

const PREFIXES = ['user.', 'trusted.', 'security.', 'system.posix_acl_access', 'system.posix_acl_default'].map((p) => Buffer.from(p));

/** True when the name starts with a prefix the formats can store. */
export function hasKnownPrefix(name: Buffer): boolean {
  return PREFIXES.some((p) => name.length >= p.length && name.subarray(0, p.length).equals(p));
}

/** The storable xattrs, sorted by name; the others are reported through `warn`. */
export function filterXattrs(xattrs: readonly Xattr[], where: string, warn: (m: string) => void): Xattr[] {
  const out: Xattr[] = [];
  for (const x of xattrs) {
    const name = x.name.toString('latin1');
    if (!hasKnownPrefix(x.name) || x.name.length > RAFS_MAX_XATTR_NAME) warn(`dropping xattr ${JSON.stringify(name)} of ${where}: unsupported name`);
    else if (x.value.length > MAX_XATTR_VALUE) warn(`dropping xattr ${JSON.stringify(name)} of ${where}: value of ${x.value.length} bytes`);
    else out.push(x);
  }
  return out.sort((a, b) => Buffer.compare(a.name, b.name));
}
