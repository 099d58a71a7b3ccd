// `--version` of the three programs in upstream's layout: the release number on the
// Version line (not a commit), the full commit on its own line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

for (const program of ['nydusd', 'nydus-image', 'nydusctl'] as const) {
  test(`${program} --version: Version, Git Commit, Build Time, Profile lines`, async () => {
    const r = await runProgram(program, ['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`${program}\rVersion: \tv${pkg.version}\n`), JSON.stringify(r.stdout));
    assert.match(r.stdout, /^Git Commit: \t[0-9a-f]{40}$/m);
    assert.match(r.stdout, /^Build Time: \t\S+$/m);
    assert.match(r.stdout, /^Profile: \trelease$/m);
  });
}
