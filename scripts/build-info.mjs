#!/usr/bin/env node
// Records what `--version` and the API's DaemonInfo.version report: the package version
// (`v` + package.json's, as upstream prints its release number), the commit, the build
// time. Run by `npm run build`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const git = (...args) => {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
};
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const info = {
  package_ver: `v${pkg.version}`,
  git_commit: git('rev-parse', 'HEAD') || 'unknown',
  build_time: new Date().toISOString(),
  profile: 'release',
  rustc: `node ${process.version}`,
};
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'build-info.json'), JSON.stringify(info, null, 2) + '\n');
