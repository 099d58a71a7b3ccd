// OCI layers for the tests: directories written from a spec, stamped with distinct
// nanosecond mtimes, and archived by GNU tar (PAX, numeric owners); and the tree
// overlayfs shows for a stack of them, what a merged image must equal.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../helpers/run.js';
import { setMtime } from './tree-helpers.js';

/** Writes `spec` below `root`: a path to its content, or to null for a directory. */
export function writeFiles(root: string, spec: Record<string, string | Buffer | null>): void {
  for (const [p, content] of Object.entries(spec)) {
    const full = join(root, p);
    if (content === null) mkdirSync(full, { recursive: true });
    else {
      mkdirSync(join(full, '..'), { recursive: true });
      writeFileSync(full, content);
    }
  }
}

/** Gives every entry of each layer directory its own mtime, then tars `dirs[i]` into `tars[i]`. */
export async function stampAndTar(dirs: string[], tars: string[]): Promise<void> {
  for (const [i, dir] of dirs.entries()) {
    let n = 0;
    const stamp = (p: string): void => {
      if (statSync(p).isDirectory()) for (const c of readdirSync(p)) stamp(join(p, c));
      setMtime(p, 1_650_000_000 + i * 1000 + n++, 5 + n);
    };
    stamp(dir);
    const r = await runCommand('tar', ['--format=posix', '--numeric-owner', '-cf', tars[i], '-C', dir, '.']);
    assert.equal(r.code, 0, r.stderr);
  }
}

/** Copies layer directory `dir` to `out` as overlayfs wants a layer: whiteouts as 0:0 devices, opaque directories by xattr. */
export async function overlayLayer(dir: string, out: string): Promise<void> {
  // cp -a keeps nanosecond mtimes, owners, xattrs and hard links.
  const cp = await runCommand('cp', ['-a', dir, out]);
  assert.equal(cp.code, 0, cp.stderr);
  const convert = async (d: string): Promise<void> => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (name === '.wh..wh..opq') {
        rmSync(p);
        await runCommand('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', d]);
      } else if (name.startsWith('.wh.')) {
        rmSync(p);
        await runCommand('mknod', [join(d, name.slice(4)), 'c', '0', '0']);
      } else if (statSync(p).isDirectory()) await convert(p);
    }
  };
  await convert(out);
  // Directory mtimes as in the layer (the conversion touched them).
  const restore = async (d: string, orig: string): Promise<void> => {
    for (const name of readdirSync(d)) if (statSync(join(d, name)).isDirectory()) await restore(join(d, name), join(orig, name));
    await runCommand('touch', ['-h', '-r', orig, d]);
  };
  await restore(out, dir);
}

/** A read-only overlayfs of `lowers` (uppermost first) at `mnt` (created). */
export async function mountOverlay(lowers: string[], mnt: string): Promise<{ dir: string; close(): Promise<void> }> {
  mkdirSync(mnt);
  const r = await runCommand('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowers.join(':')}`, mnt]);
  assert.equal(r.code, 0, r.stderr);
  return { dir: mnt, close: async () => void (await runCommand('umount', [mnt])) };
}
