// The inline xattr area of a RAFS v6 (EROFS) inode (docs/format.md §4.11): a 12-byte
// header with no shared xattrs, then one entry per attribute with the name's known prefix
// replaced by its index, each padded to 4 bytes.
import { BuildError } from '../errors.js';
import type { Xattr } from '../rafs/layout/v5.js';
import {
  encodeV6XattrEntry,
  encodeV6XattrIbodyHeader,
  splitV6XattrName,
  V6_XATTR_ENTRY_SIZE,
  V6_XATTR_IBODY_HEADER_SIZE,
  v6XattrIcount,
} from '../rafs/layout/v6.js';

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Bytes of the inline xattr area for `xattrs` (0 when there are none). */
export function v6XattrAreaBytes(xattrs: readonly Xattr[]): number {
  if (xattrs.length === 0) return 0;
  let size = V6_XATTR_IBODY_HEADER_SIZE;
  for (const x of xattrs) size += pad4(V6_XATTR_ENTRY_SIZE + splitV6XattrName(x.name).suffix.length + x.value.length);
  return size;
}

/** The encoded area and its `i_xattr_icount`. */
export function encodeV6XattrArea(xattrs: readonly Xattr[]): { area: Buffer; icount: number } {
  if (xattrs.length === 0) return { area: Buffer.alloc(0), icount: 0 };
  const parts: Buffer[] = [encodeV6XattrIbodyHeader({ nameFilter: 0, sharedCount: 0 })];
  for (const x of xattrs) {
    const { nameIndex, suffix } = splitV6XattrName(x.name);
    if (nameIndex === 0 || suffix.length > 0xff || x.value.length > 0xffff) {
      throw new BuildError('ERR_BUILD_LIMIT', `failed to encode xattr ${JSON.stringify(x.name.toString('latin1'))}: not storable in RAFS v6`);
    }
    const body = Buffer.concat([encodeV6XattrEntry({ nameLen: suffix.length, nameIndex, valueSize: x.value.length }), suffix, x.value]);
    parts.push(body, Buffer.alloc(pad4(body.length) - body.length));
  }
  const area = Buffer.concat(parts);
  const icount = v6XattrIcount(area.length);
  if (icount > 0xffff) throw new BuildError('ERR_BUILD_LIMIT', `failed to encode xattrs: ${area.length} bytes exceed the inline limit`);
  return { area, icount };
}
