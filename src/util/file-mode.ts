// The file type bits of st_mode (<sys/stat.h>), shared by every layer that looks at a
// mode: the RAFS layouts store them, the FUSE ABI reports them, storage walks by them.
// One home below both rafs and fuse, since fuse may not import rafs (docs/architecture.md, "Layers").

/** Mask of the file type bits. */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
