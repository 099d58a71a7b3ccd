// A real root filesystem for builder tests and benchmarks: Debian bookworm minbase made by
// debootstrap once and cached outside the repository (default
// /var/cache/nydus-ts/rootfs-bookworm-minbase, override with NYDUS_TS_ROOTFS). The first
// caller builds it under a lock directory; concurrent callers wait for it. A marker file
// beside the tree says it is complete, so an interrupted debootstrap is never used.
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { runCommand } from '../helpers/run.js';

export const ROOTFS_DIR = process.env.NYDUS_TS_ROOTFS ?? '/var/cache/nydus-ts/rootfs-bookworm-minbase';
const MARKER = `${ROOTFS_DIR}.complete`;
const LOCK = `${ROOTFS_DIR}.lock`;
const MIRROR = process.env.NYDUS_TS_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The cached root filesystem, made on first use; `reason` says why it is unavailable. */
export async function ensureRootfs(): Promise<{ dir?: string; reason?: string }> {
  if (existsSync(MARKER)) return { dir: ROOTFS_DIR };
  if (process.getuid?.() !== 0) return { reason: 'debootstrap needs root' };
  if ((await runCommand('sh', ['-c', 'command -v debootstrap'])).code !== 0) return { reason: 'debootstrap is not installed' };
  mkdirSync(dirname(ROOTFS_DIR), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // Someone else is building it: wait for the marker, or take over a stale lock.
      if (existsSync(MARKER)) return { dir: ROOTFS_DIR };
      if (Date.now() - statSync(LOCK).mtimeMs > 20 * 60_000) rmSync(LOCK, { recursive: true, force: true });
      await sleep(1000);
    }
  }
  try {
    if (existsSync(MARKER)) return { dir: ROOTFS_DIR };
    const tmp = `${ROOTFS_DIR}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    const r = await runCommand('debootstrap', ['--variant=minbase', 'bookworm', tmp, MIRROR], { timeoutMs: 15 * 60_000 });
    if (r.code !== 0) {
      rmSync(tmp, { recursive: true, force: true });
      return { reason: `debootstrap failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}` };
    }
    rmSync(ROOTFS_DIR, { recursive: true, force: true });
    renameSync(tmp, ROOTFS_DIR);
    writeFileSync(MARKER, `${new Date().toISOString()}\n`);
    return { dir: ROOTFS_DIR };
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
