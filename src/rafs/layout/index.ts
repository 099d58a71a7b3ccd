// The byte-level RAFS layouts (no I/O): shared enumerations, v5 and v6 structures.
export * from './common.js';
export * from './v5.js';
export * from './v6.js';
