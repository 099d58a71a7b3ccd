// Public surface of the RAFS format module: open/parse a bootstrap (v5 or v6), walk and
// validate an image, and the byte-level layouts the builder writes images with.
export type * from './types.js';
export { openBootstrap, parseBootstrap, type AnyRafsSuper } from './reader/open.js';
export { RafsV5Super, type V5Record } from './reader/v5-super.js';
export { RafsV6Super } from './reader/v6-super.js';
export type { SuperJsonOptions } from './reader/shared.js';
export { walk, checkEntryName, MAX_WALK_PATH, type WalkEntry } from './walk.js';
export { validateMetadata, type MetadataCounts } from './validate.js';
export * as layout from './layout/index.js';
