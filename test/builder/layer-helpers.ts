// OCI layers for the builder's tests: directories written from a spec, stamped with
// distinct nanosecond mtimes, and archived by GNU tar (PAX, numeric owners).
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
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
