// Runs the example against a real nydusd that went INIT -> READY -> RUNNING: the drawings
// come from the daemon's own definition and mark RUNNING.idle and the path to it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FROM_SOURCE, haveFixtures, isRoot, need, REPO_ROOT, V6_FIXTURE } from '../../test/helpers/env.js';
import { runCommand } from '../../test/helpers/run.js';
import { haveNydusd, startNydusd } from '../../test/api/nydusd-process.js';

const MAIN = FROM_SOURCE
  ? ['--import', 'tsx', join(REPO_ROOT, 'examples', 'lifecycle-diagram', 'main.ts')]
  : [join(REPO_ROOT, 'dist', 'examples', 'lifecycle-diagram', 'main.js')];

test('lifecycle-diagram draws the running daemon with its current state and path', async (t) => {
  if (!need(t, haveNydusd() && isRoot() && existsSync('/dev/fuse') && haveFixtures(), 'needs nydusd, root, /dev/fuse and the fixtures')) return;
  if (!need(t, spawnSync('dot', ['-V']).status === 0, 'needs Graphviz dot')) return;
  const d = await startNydusd(V6_FIXTURE);
  try {
    const out = join(d.dir, 'drawing');
    const r = await runCommand(process.execPath, [...MAIN, '--sock', d.sock, '--out', out], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const view = await d.client.machine();
    assert.match(r.stdout, /^state RUNNING \(RUNNING\.idle\), \d+ transitions so far:$/m);
    for (const t of view.transitions) assert.ok(r.stdout.includes(`  #${t.seq} ${t.from} -> ${t.to} on ${t.event}\n`));
    const mmd = readFileSync(join(out, 'lifecycle.mmd'), 'utf8');
    assert.match(mmd, /^ {2}class RUNNING_idle current$/m);
    // The --bootstrap image is mounted first (an image change), then the session (MOUNT).
    assert.match(mmd, /INIT_idle --> INIT_changingImage : MOUNT_IMAGE #1\n/);
    assert.match(mmd, /INIT_idle --> INIT_mounting : MOUNT #3\n/);
    const svg = readFileSync(join(out, 'lifecycle.svg'), 'utf8');
    assert.match(svg, /<svg/);
    assert.match(svg, /#ffd8a8/, 'the current state is filled');
  } finally {
    await d.stop();
  }
});
