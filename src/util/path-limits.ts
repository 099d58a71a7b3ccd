// The kernel's limits on a path: checked where a pseudo-fs mountpoint is normalized and,
// earlier, where the admin API takes one from a query string.

/** Longest name of one directory entry, in bytes (Linux NAME_MAX): the kernel refuses longer ones in READDIR. */
const NAME_MAX = 255;
/** Longest path, in bytes, less its NUL (Linux PATH_MAX). */
const PATH_MAX = 4095;

/** Why `mountpoint` exceeds the kernel's limits (a component over NAME_MAX, the path over PATH_MAX), or undefined. */
export function mountpointTooLong(mountpoint: string): string | undefined {
  if (Buffer.byteLength(mountpoint) > PATH_MAX) return `longer than ${PATH_MAX} bytes`;
  for (const name of mountpoint.split('/')) if (Buffer.byteLength(name) > NAME_MAX) return `a component is longer than ${NAME_MAX} bytes`;
  return undefined;
}
