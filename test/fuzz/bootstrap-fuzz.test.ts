// Seeded mutation fuzzing of bootstraps, a permanent test: 300 seeds on each of three
// images (900 cases) through the parser, the validator and the chunk reader with digest
// validation (test/fuzz/run-case.ts). Each case passes or fails with a typed one-line
// error; none crashes, none hangs (a worker thread, stopped when a case takes 10 s).
// Then the passing cases that differ from their image are mounted in one real nydusd and
// walked: every file reads either as `nydus-image unpack` of the same bytes says, or
// fails with EIO; never other bytes. Replay a case: bench/fuzz/bootstrap.fuzz.ts --seed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { V1 } from '../../src/api/paths.js';
import { haveFixtures, isRoot, need, V6_FIXTURE } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';
import { haveNydusd, startNydusd } from '../api/nydusd-process.js';
import { fuzzBases } from './bases.js';
import { runFuzz, type FuzzRun } from './drive.js';
import type { FuzzBase } from './fuzz-worker.js';
import { findTargets, mutate } from './mutate.js';

const SEEDS = 300;
const work = mkdtempSync(join(tmpdir(), 'bootstrap-fuzz-'));
after(() => rmSync(work, { recursive: true, force: true }));
let bases: FuzzBase[] = [];
let run: FuzzRun | undefined;

before(async () => {
  if (haveFixtures()) bases = await fuzzBases(work);
});

test(`${SEEDS * 3} mutated bootstraps: a pass or a typed error each, no crash, no hang`, { timeout: 240_000 }, async (t) => {
  if (!need(t, haveFixtures(), 'needs ../shared/fixtures')) return;
  run = await runFuzz({ bases, firstSeed: 1, cases: SEEDS });
  assert.equal(run.workerError, undefined, run.workerError);
  assert.equal(run.hang, undefined, `case hung: ${JSON.stringify(run.hang)}`);
  const crashes = run.reports.filter((r) => r.outcome.result === 'crash');
  assert.deepEqual(
    crashes.map((r) => `${r.base} seed ${r.seed} (${r.kind}: ${r.note}): ${(r.outcome as { error: string }).error}`),
    [],
  );
  assert.equal(run.reports.length, SEEDS * bases.length);
  const tally = new Map<string, number>();
  for (const r of run.reports) {
    const key = `${r.kind} ${r.outcome.result === 'error' ? r.outcome.code : r.outcome.result}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  t.diagnostic([...tally].sort().map(([k, n]) => `${k}: ${n}`).join(', '));
  // Not vacuous: mutations are refused, some pass, and some reach the chunk reader and fail there.
  assert.ok(run.reports.some((r) => r.outcome.result === 'error'));
  assert.ok(run.reports.some((r) => r.outcome.result === 'pass'));
  assert.ok(run.reports.some((r) => r.outcome.result === 'pass' && r.outcome.chunkFailures > 0));
  for (const kind of ['bitflip', 'truncate', 'size', 'cycle', 'chunk-offset', 'stomp']) {
    assert.ok(run.reports.some((r) => r.kind === kind), `${kind} mutations ran`);
  }
});

/** path -> sha256 of each regular file under `dir`, or the error `cat` met; read by a child process. */
function readFiles(dir: string): Map<string, string> {
  const script = 'cd "$1" && find . -type f | sort | while read -r f; do if out=$(sha256sum "$f" 2>&1); then echo "$f ${out%% *}"; else echo "$f ERROR ${out##*: }"; fi; done';
  const r = spawnSync('sh', ['-c', script, 'sh', dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.signal, null, `reading ${dir} hung`);
  const out = new Map<string, string>();
  for (const line of r.stdout.trim().split('\n').filter(Boolean)) {
    const i = line.indexOf(' ');
    out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

test('passing mutants mounted and walked: the unpacked bytes or EIO, never other bytes', { timeout: 240_000 }, async (t) => {
  if (!(need(t, haveNydusd(), 'no nydusd') && need(t, isRoot() && existsSync('/dev/fuse'), 'needs root and /dev/fuse') && need(t, haveFixtures(), 'needs ../shared/fixtures'))) return;
  assert.ok(run, 'the fuzz test ran first');
  const byName = new Map(bases.map((b) => [b.name, { ...b, bytes: readFileSync(b.bootstrap) }]));
  const chosen = run.reports
    .filter((r) => r.outcome.result === 'pass')
    .map((r) => ({ r, base: byName.get(r.base)! }))
    .map(({ r, base }) => ({ r, base, bytes: mutate(base.bytes, findTargets(base.bytes, base.blobSize), r.seed).bytes }))
    .filter(({ base, bytes }) => !bytes.equals(base.bytes))
    .slice(0, 12);
  assert.ok(chosen.length > 0, 'some mutants pass');

  const d = await startNydusd(V6_FIXTURE, ['--virtual-mountpoint', '/base']);
  t.after(() => d.stop());
  let compared = 0;
  for (const [k, { r, base, bytes }] of chosen.entries()) {
    const boot = join(work, `mutant-${k}.boot`);
    writeFileSync(boot, bytes);
    const config = JSON.stringify({ version: 2, backend: { type: 'localfs', localfs: { dir: base.blobDir } }, cache: { type: '' }, rafs: { validate: true } });
    const m = await d.client.request('POST', V1.mount, { query: { mountpoint: `/m${k}` }, body: { source: boot, fs_type: 'rafs', config } });
    const what = `${r.base} seed ${r.seed} (${r.kind}: ${r.note})`;
    if (m.status !== 204) {
      assert.equal(JSON.parse(m.text).error_code?.startsWith('ERR_'), true, `${what}: ${m.text}`);
      continue;
    }
    const tar = join(work, `mutant-${k}.tar`);
    const unpacked = join(work, `mutant-${k}`);
    mkdirSync(unpacked);
    const u = await runProgram('nydus-image', ['unpack', '--bootstrap', boot, '--blob-dir', base.blobDir, '--output', tar]);
    const x = u.code === 0 ? spawnSync('tar', ['-xf', tar, '-C', unpacked], { encoding: 'utf8' }) : undefined;
    const expected = x?.status === 0 ? readFiles(unpacked) : undefined;
    const seen = readFiles(join(d.mnt, `m${k}`));
    for (const [path, got] of seen) {
      if (got.startsWith('ERROR')) {
        assert.match(got, /Input\/output error/, `${what} ${path}: ${got}`);
        continue;
      }
      if (expected === undefined) continue;
      assert.equal(got, expected.get(path), `${what} ${path}: read bytes that unpack does not give`);
      compared++;
    }
    await d.client.request('DELETE', V1.mount, { query: { mountpoint: `/m${k}` } });
  }
  t.diagnostic(`${chosen.length} mutants mounted, ${compared} files compared`);
  assert.ok(compared > 0);
});
