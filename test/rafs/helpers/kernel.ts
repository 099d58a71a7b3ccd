// The Linux EROFS driver as an oracle for v6 bootstraps: mount a copy read-only over a
// loop device, then compare every entry the reader walks with what lstat, readdir,
// readlink and getfattr report through the kernel.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { walk, type RafsSuper } from '../../../src/rafs/index.js';

/** Mounts `bootstrap` (bytes) with `mount -t erofs -o ro,loop`; unmounts in `t.after`. */
export function mountErofs(t: TestContext, bootstrap: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'rafs-kernel-'));
  const image = join(dir, 'bootstrap');
  const mnt = join(dir, 'mnt');
  writeFileSync(image, bootstrap);
  mkdirSync(mnt);
  t.after(() => {
    spawnSync('umount', ['-l', mnt]);
    rmSync(dir, { recursive: true, force: true });
  });
  execFileSync('mount', ['-t', 'erofs', '-o', 'ro,loop', image, mnt], { stdio: 'pipe' });
  return mnt;
}

export function haveGetfattr(): boolean {
  return spawnSync('getfattr', ['--version']).status === 0;
}

/** xattrs of a path as the kernel lists them (getfattr, hex values). */
function kernelXattrs(path: Buffer): Map<string, string> {
  const out = execFileSync('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'hex', path.toString('latin1')], { encoding: 'latin1' });
  const map = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) map.set(m[1], m[2]);
  }
  return map;
}

/** Compares every walked entry with the kernel's view; returns the number compared. */
export function compareWithKernel(sb: RafsSuper, mnt: string, opts: { xattrs: boolean }): number {
  const base = Buffer.from(mnt);
  let n = 0;
  for (const e of walk(sb)) {
    const path = e.depth === 0 ? base : Buffer.concat([base, e.path]);
    const where = e.path.toString('latin1');
    const st = lstatSync(path, { bigint: true });
    const a = e.attr;
    assert.equal(Number(st.ino), e.ino, `${where}: st_ino vs nid`);
    assert.equal(Number(st.mode), a.mode, `${where}: mode`);
    assert.equal(Number(st.nlink), a.nlink, `${where}: nlink`);
    assert.equal(Number(st.uid), a.uid, `${where}: uid`);
    assert.equal(Number(st.gid), a.gid, `${where}: gid`);
    assert.equal(st.size, BigInt(a.size), `${where}: size`);
    assert.equal(st.mtimeNs, BigInt(a.mtime) * 1_000_000_000n + BigInt(a.mtimeNsec), `${where}: mtime`);
    assert.equal(Number(st.rdev), a.rdev, `${where}: rdev`);
    const type = a.mode & 0o170000;
    if (type === 0o040000) {
      const names = readdirSync(path, { encoding: 'buffer' });
      assert.deepEqual(names, [...sb.readdir(e.ino)].map((d) => Buffer.from(d.name)), `${where}: entries`);
    } else if (type === 0o120000) {
      assert.deepEqual(readlinkSync(path, { encoding: 'buffer' }), Buffer.from(sb.readlink(e.ino)), `${where}: target`);
    }
    // getfattr takes the path as a (UTF-8) argument: raw non-ASCII names cannot be passed.
    if (opts.xattrs && type !== 0o120000 && !path.some((b) => b >= 0x80)) {
      const ours = new Map(sb.listXattrs(e.ino).map((name) => [name.toString('latin1'), sb.getXattr(e.ino, name)!.toString('hex')]));
      assert.deepEqual(kernelXattrs(path), ours, `${where}: xattrs`);
    }
    n++;
  }
  return n;
}
