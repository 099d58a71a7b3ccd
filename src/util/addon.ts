// Finds the project's C addon (binding.gyp's one target, build/Release/nydus_native.node)
// in the nearest `build/Release` above this module, whether it runs from the TypeScript
// sources or from dist/, and loads it. Each layer types the functions it uses
// (src/native/index.ts, storage/codec.ts, storage/zran.ts, builder/xattr.ts); Node opens
// the shared object once and initialises it once per thread, however many of them ask.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ADDON = join('build', 'Release', 'nydus_native.node');

/** Loads the addon as `T`; `missing` builds the caller's typed error when it is not built. */
export function loadAddon<T>(missing: (message: string) => Error): T {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; ) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) return createRequire(import.meta.url)(candidate) as T;
    const up = dirname(dir);
    if (up === dir) throw missing(`${ADDON} not found (run npm ci, or npm run install to build the addon)`);
    dir = up;
  }
}
