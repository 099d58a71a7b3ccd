// Where tests find the repo, the shared fixtures and the built programs, and how
// a test states a prerequisite: outside CI a missing one skips with a reason,
// under CI=true it fails (CI installs everything the suite needs).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'nydus-ts') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('repo root not found above ' + import.meta.url);
    dir = up;
  }
}

export const REPO_ROOT = findRepoRoot();
export const SHARED_DIR = resolve(REPO_ROOT, '..', 'shared');
export const FIXTURES_DIR = join(SHARED_DIR, 'fixtures');
/** True when this file runs from TypeScript sources (tsx) rather than dist/. */
export const FROM_SOURCE = import.meta.url.endsWith('.ts');

export const V5_FIXTURE = join(FIXTURES_DIR, 'nydus', 'v5-sha256-none');
export const V6_FIXTURE = join(FIXTURES_DIR, 'nydus', 'v6-zstd');

/** The command line that runs one of the project's programs (nydusd, nydus-image, nydusctl). */
export function programArgv(name: 'nydusd' | 'nydus-image' | 'nydusctl'): string[] {
  if (FROM_SOURCE) return [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'src', 'cli', `${name}.ts`)];
  return [process.execPath, join(REPO_ROOT, 'dist', 'src', 'cli', `${name}.js`)];
}

/**
 * States a prerequisite. Returns true when it holds; otherwise skips the test with the
 * reason, except under CI=true, where a missing prerequisite is a failure.
 */
export function need(t: TestContext, ok: boolean, reason: string): boolean {
  if (ok) return true;
  if (process.env.CI === 'true') throw new Error(`prerequisite missing in CI: ${reason}`);
  t.skip(reason);
  return false;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function haveFixtures(): boolean {
  return existsSync(join(V5_FIXTURE, 'bootstrap')) && existsSync(join(V6_FIXTURE, 'bootstrap'));
}

/** Whether `path` is a mountpoint now (reads /proc/self/mounts only: never touches the mount). */
export function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === path);
}
