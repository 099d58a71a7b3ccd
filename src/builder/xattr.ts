// Reads a file's extended attributes for the builder through the C addon
// (src/native/xattr.c: llistxattr/lgetxattr; Node has no xattr API).
// Paths, names and values are raw bytes. Symlinks are never followed.
import { constants } from 'node:os';
import { BuildError } from '../errors.js';
import { loadAddon } from '../util/addon.js';
import type { Xattr } from '../rafs/layout/v5.js';

interface XattrAddon {
  listXattrs(path: Buffer): Buffer[];
  getXattr(path: Buffer, name: Buffer): Buffer;
}

let addon: XattrAddon | undefined;

function load(): XattrAddon {
  addon ??= loadAddon<XattrAddon>((m) => new BuildError('ERR_BUILD_SOURCE', `failed to load the xattr addon: ${m}`));
  return addon;
}

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

function fail(path: Buffer, err: unknown): BuildError {
  const raw = err as { errno?: number; syscall?: string };
  const code = typeof raw?.errno === 'number' ? (errnoNames.get(raw.errno) ?? `E${raw.errno}`) : String(err);
  return new BuildError('ERR_BUILD_SOURCE', `failed to read xattrs of ${path.toString()}: ${raw?.syscall ?? 'xattr'}: ${code}`, { cause: err });
}

/**
 * Every extended attribute of `path` (not following a symlink), sorted by name so that
 * builds are repeatable. A filesystem without xattr support yields none; an attribute
 * that vanishes between listing and reading is skipped.
 */
export function readXattrs(path: Buffer): Xattr[] {
  const x = load();
  let names: Buffer[];
  try {
    names = x.listXattrs(path);
  } catch (err) {
    throw fail(path, err);
  }
  const out: Xattr[] = [];
  for (const name of names.sort(Buffer.compare)) {
    try {
      out.push({ name, value: x.getXattr(path, name) });
    } catch (err) {
      if ((err as { errno?: number }).errno === constants.errno.ENODATA) continue;
      throw fail(path, err);
    }
  }
  return out;
}
