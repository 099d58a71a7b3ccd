// Public surface of the filesystem layer: one image as inodes (ImageFs), the pseudo
// filesystem that holds image mounts at paths and is what the FUSE session serves,
// the node-id encoding they share, and the per-mount I/O counters.
export { ImageFs, type ImageFsOptions, type ListingIds } from './image-fs.js';
export { PseudoFs, normalizeMountpoint, type ImageMount, type KernelNotifier, type PseudoFsOptions } from './pseudo-fs.js';
export { FsIoStats, type AccessPatternJson, type FileStatsJson, type FsIoStatsJson, type IoStatsOptions } from './io-stats.js';
export * from './node-id.js';
