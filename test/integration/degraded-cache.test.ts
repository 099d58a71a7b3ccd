// A cache that cannot write, for real: the blobcache work_dir is a 4 KiB tmpfs, so chunk
// writes fail with ENOSPC. The daemon keeps serving the right bytes from the backend,
// logs one WARN for the cause and blob, and says so in /api/v1/metrics/blobcache
// (write_errors, caching_degraded) and in the Prometheus output. The report's rate limit
// and recovery line are checked on WriteFailureReport itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { V1 } from '../../src/api/paths.js';
import { CACHE_CHANNEL } from '../../src/storage/cache/events.js';
import { WriteFailureReport } from '../../src/storage/cache/write-failures.js';
import type { BackendEvent } from '../../src/storage/backend/events.js';
import { V6_FIXTURE } from '../helpers/env.js';
import { waitUntil } from '../helpers/wait.js';
import { configJson } from '../fs/helpers.js';
import { canMount, expectedTree, Nydusd, workspace } from './nydusd-proc.js';

/** sha256 of every regular file under `dir`, by relative path, computed by a child process. */
function fileDigests(dir: string): Record<string, string> {
  const r = spawnSync('sh', ['-c', 'cd "$1" && find . -type f -exec sha256sum {} + | sort -k2', 'sh', dir], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/\s+/).reverse()));
}

test('a full cache filesystem: right bytes from the backend, one WARN, write_errors and caching_degraded reported', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'degraded');
  // Outside the workspace, whose cleanup cannot remove a mountpoint.
  const cache = mkdtempSync(join(tmpdir(), 'nydusd-full-cache-'));
  t.after(() => {
    spawnSync('umount', ['-l', cache]);
    rmSync(cache, { recursive: true, force: true });
  });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4k,mode=0700', 'tmpfs', cache], { encoding: 'utf8' });
  assert.equal(m.status, 0, m.stderr);
  const config = join(ws.dir, 'config.json');
  writeFileSync(config, configJson(join(V6_FIXTURE, 'blobs'), cache));
  const log = join(ws.dir, 'nydusd.log');
  const sock = join(ws.dir, 'api.sock');
  const d = ws.track(new Nydusd(['-M', ws.mnt, '-B', join(V6_FIXTURE, 'bootstrap'), '-C', config, '--state-dir', ws.state, '--apisock', sock, '--log-file', log], ws.mnt));
  await d.waitRunning();

  const want = fileDigests(expectedTree(V6_FIXTURE));
  assert.ok(Object.keys(want).length > 0);
  assert.deepEqual(fileDigests(ws.mnt), want, 'the right bytes while the cache cannot write');

  const api = d.api();
  t.after(() => api.close());
  // Writes are queued behind the reads: wait for the failure to be counted.
  let metrics: { write_errors: number; caching_degraded: boolean } = { write_errors: 0, caching_degraded: false };
  await waitUntil(async () => {
    metrics = (await api.metrics('blobcache', { id: '/' })) as typeof metrics;
    return metrics.write_errors > 0;
  }, 'the failed cache write is counted');
  assert.equal(metrics.caching_degraded, true);
  const prom = await api.prometheus();
  assert.match(prom, /^nydusd_blobcache_write_errors_total\{id="\/"\} [1-9]\d*$/m);
  assert.match(prom, /^nydusd_blobcache_caching_degraded\{id="\/"\} 1$/m);
  assert.deepEqual(fileDigests(ws.mnt), want, 'still right on a second pass');
  const raw = (await api.request('GET', V1.metricsBlobcache, { query: { id: '/' } })).text;
  assert.match(raw, /"caching_degraded":true/);

  assert.equal((await d.stop()).code, 0);
  const warns = readFileSync(log, 'utf8').split('\n').filter((l) => /WARN\] blobcache .*caching degraded for blob/.test(l));
  assert.equal(warns.length, 1, warns.join('\n'));
  assert.match(warns[0], /ENOSPC/);
  assert.match(warns[0], /reads are served from the backend/);
});

test('write failure report: one line per cause and blob within the interval, one when caching resumes', () => {
  const events: BackendEvent[] = [];
  const onEvent = (e: unknown): void => void events.push(e as BackendEvent);
  subscribe(CACHE_CHANNEL, onEvent);
  try {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const eio = Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
    const a = new WriteFailureReport('/cache', 'blob-a');
    const b = new WriteFailureReport('/cache', 'blob-b');
    for (let i = 0; i < 5; i++) a.failed(enospc, 'chunk data');
    a.failed(enospc, 'chunk map');
    a.failed(eio, 'chunk data');
    b.failed(enospc, 'chunk data');
    a.succeeded();
    a.succeeded();
    assert.deepEqual(
      events.map((e) => [e.level, e.blobId, /ENOSPC|EIO|resumed/.exec(e.message)?.[0]]),
      [
        ['warn', 'blob-a', 'ENOSPC'],
        ['warn', 'blob-a', 'EIO'],
        ['warn', 'blob-b', 'ENOSPC'],
        ['info', 'blob-a', 'resumed'],
      ],
    );
    assert.ok(events.every((e) => e.backend === 'blobcache' && e.id === '/cache'));
  } finally {
    unsubscribe(CACHE_CHANNEL, onEvent);
  }
});
