// What this build of the programs is: the fields of upstream's BuildTimeInfo, read from
// dist/build-info.json (written by `npm run build`), "unknown" when running from sources.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Upstream's `BuildTimeInfo` (DaemonInfo.version); `rustc` carries the Node version here. */
export interface BuildInfo {
  package_ver: string;
  git_commit: string;
  build_time: string;
  profile: string;
  rustc: string;
}

let cached: BuildInfo | undefined;

/** The build info of the running programs (read once). */
export function buildInfo(): BuildInfo {
  if (cached) return cached;
  const fallback: BuildInfo = {
    package_ver: 'unknown',
    git_commit: 'unknown',
    build_time: 'unknown',
    profile: 'debug',
    rustc: `node ${process.version}`,
  };
  // dist/src/util/build-info.js -> dist/build-info.json
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build-info.json');
  try {
    cached = { ...fallback, ...(JSON.parse(readFileSync(file, 'utf8')) as Partial<BuildInfo>) };
  } catch {
    cached = fallback;
  }
  return cached;
}

/** The `--version` text, in upstream's layout (snapshotter parses `Git Commit:`). */
export function versionText(program: string): string {
  const b = buildInfo();
  return (
    `${program}\rVersion: \t${b.package_ver}\nGit Commit: \t${b.git_commit}\n` +
    `Build Time: \t${b.build_time}\nProfile: \t${b.profile}\nNode: \t\t${process.version}\n`
  );
}
