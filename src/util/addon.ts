// Finds one of the project's C addons (binding.gyp targets) in the nearest
// `build/Release` above the calling module, whether it runs from the TypeScript sources
// or from dist/, and loads it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Loads `build/Release/<name>.node`, searching upwards from `fromUrl` (the caller's
 * `import.meta.url`); `missing` builds the caller's typed error when it is not built.
 */
export function loadAddon<T>(name: string, fromUrl: string, missing: (message: string) => Error): T {
  const rel = join('build', 'Release', `${name}.node`);
  for (let dir = dirname(fileURLToPath(fromUrl)); ; ) {
    const candidate = join(dir, rel);
    if (existsSync(candidate)) return createRequire(fromUrl)(candidate) as T;
    const up = dirname(dir);
    if (up === dir) throw missing(`${rel} not found (run npm ci, or npm run install to build the addons)`);
    dir = up;
  }
}
