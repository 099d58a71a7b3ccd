// Runs the example against a real nydusd (serving the v5 fixture at /base): it mounts the
// v6 fixture at /sub, reads both of its files through the kernel mount, prints metrics
// that count those reads, and unmounts it again.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FROM_SOURCE, haveFixtures, isRoot, need, REPO_ROOT, V5_FIXTURE, V6_FIXTURE } from '../../test/helpers/env.js';
import { runCommand } from '../../test/helpers/run.js';
import { haveNydusd, linkBlobs, startNydusd } from '../../test/api/nydusd-process.js';

const MAIN = FROM_SOURCE
  ? ['--import', 'tsx', join(REPO_ROOT, 'examples', 'mount-second-image', 'main.ts')]
  : [join(REPO_ROOT, 'dist', 'examples', 'mount-second-image', 'main.js')];

test('mount-second-image mounts /sub, reads it through FUSE and unmounts it', async (t) => {
  if (!need(t, haveNydusd() && isRoot() && existsSync('/dev/fuse') && haveFixtures(), 'needs nydusd, root, /dev/fuse and the fixtures')) return;
  const d = await startNydusd(V5_FIXTURE, ['--virtual-mountpoint', '/base']);
  try {
    const blobs = linkBlobs(V6_FIXTURE, join(d.dir, 'blobs-sub'));
    const r = await runCommand(process.execPath, [...MAIN, '--sock', d.sock, '--mnt', d.mnt, '--bootstrap', join(V6_FIXTURE, 'bootstrap'), '--blobs', blobs], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `mounted ${join(V6_FIXTURE, 'bootstrap')} at /sub`);
    const reads = lines.filter((l) => l.startsWith('read ')).map((l) => l.split(' ').slice(1, 3));
    assert.deepEqual(reads.map(([p, n]) => [p.split('/').pop(), n]).sort(), [['lib.rs', '16931'], ['sync_io.rs', '13400']]);
    const m = /^metrics \/sub: (\d+) bytes read through FUSE in (\d+) reads; backend: (\d+) reads, (\d+) bytes$/.exec(lines.at(-2)!);
    assert.ok(m, lines.at(-2));
    assert.ok(Number(m[1]) >= 16931 + 13400 && Number(m[2]) > 0 && Number(m[3]) > 0);
    assert.equal(lines.at(-1), 'unmounted /sub');
    assert.deepEqual(Object.keys((await d.client.info()).backend_collection ?? {}), ['/base']);
  } finally {
    await d.stop();
  }
});
