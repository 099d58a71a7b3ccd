// What the start-up benchmarks share: the Debian minbase root filesystem (debootstrap
// when missing), its start-up set (the regular files `/bin/sh -c 'ls /'` opens or
// executes inside it, traced with strace under chroot), and medians.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export function ensureRootfs(rootfs: string, log: (line: string) => void): void {
  if (existsSync(join(rootfs, 'usr/bin/ls'))) return;
  log(`creating ${rootfs} with debootstrap --variant=minbase bookworm (a few minutes)`);
  execFileSync('debootstrap', ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian'], { stdio: 'inherit' });
}

/** `path` inside the root, symlinks resolved against the root (not the host). */
function realpathIn(root: string, path: string): string | undefined {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const out: string[] = [];
  for (let hops = 0; parts.length > 0; ) {
    const part = parts.shift()!;
    if (part === '..') {
      out.pop();
      continue;
    }
    const here = join(root, ...out, part);
    let st;
    try {
      st = lstatSync(here);
    } catch {
      return undefined;
    }
    if (!st.isSymbolicLink()) {
      out.push(part);
      continue;
    }
    if (++hops > 40) return undefined;
    const target = readlinkSync(here);
    if (target.startsWith('/')) out.length = 0;
    parts.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return '/' + out.join('/');
}

/** Regular files `/bin/sh -c 'ls /'` opens or executes inside the root (after its chroot). */
export function startupSet(rootfs: string): string[] {
  const dir = mkdtempSync('/tmp/registry-bench-trace-');
  const trace = join(dir, 'trace');
  execFileSync('strace', ['-f', '-qq', '-e', 'trace=openat,execve,chroot', '-o', trace, 'chroot', rootfs, '/bin/sh', '-c', 'ls /'], { stdio: 'ignore' });
  const lines = readFileSync(trace, 'utf8').split('\n');
  rmSync(dir, { recursive: true, force: true });
  const start = lines.findIndex((l) => /chroot\(.*\) = 0/.test(l));
  const files = new Set<string>();
  for (const l of lines.slice(start + 1)) {
    const m = /(?:openat\([^,]+, |execve\()"([^"]+)".*\) = (-?\d+)/.exec(l);
    if (m === null || Number(m[2]) < 0 || !m[1].startsWith('/')) continue;
    const real = realpathIn(rootfs, m[1]);
    if (real !== undefined && lstatSync(join(rootfs, real)).isFile()) files.add(real);
  }
  return [...files];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

