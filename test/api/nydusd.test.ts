// The real nydusd driven through its API socket as a supervisor drives it: wait for the
// socket and RUNNING, mount a second image at /sub, read its files through the kernel
// mount from a child process, read metrics, journal and machine, umount, then stop with
// SIGTERM (unmounts) or PUT /daemon/exit (keeps the mount). Needs root, /dev/fuse and the
// shared fixtures.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { replayDaemon, type ReplayRecord } from '../../machines/daemon-replay.js';
import { stateKey, type DaemonContext } from '../../machines/daemon.js';
import { V1, V2, EXT } from '../../src/api/paths.js';
import { haveFixtures, isRoot, need, V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';
import { checked, failed, RawConnection } from './helpers.js';
import { isMounted } from '../helpers/env.js';
import { haveNydusd, linkBlobs, startNydusd } from './nydusd-process.js';
import { assertSchema } from './schema.js';

function prerequisites(t: TestContext): boolean {
  return (
    need(t, haveNydusd(), 'src/cli/nydusd.ts is missing') &&
    need(t, isRoot() && existsSync('/dev/fuse'), 'needs root and /dev/fuse') &&
    need(t, haveFixtures(), 'needs ../shared/fixtures')
  );
}

/** Reads every regular file under `dir` in a child process (never touch a FUSE mount from the daemon's parent): path → size and sha256. */
function readTree(dir: string): Record<string, { size: number; sha256: string }> {
  const code = `
    const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto');
    const out = {};
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) { const b = fs.readFileSync(p); out[path.relative(${JSON.stringify(dir)}, p)] = { size: b.length, sha256: crypto.createHash('sha256').update(b).digest('hex') }; }
    } };
    walk(${JSON.stringify(dir)});
    process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, { size: number; sha256: string }>;
}

describe('real nydusd over its API socket', () => {
  test('a supervisor session: poll, mount /sub, read, metrics, journal, umount, SIGTERM', async (t) => {
    if (!prerequisites(t)) return;
    const d = await startNydusd(V5_FIXTURE, ['--virtual-mountpoint', '/base']);
    // A supervisor's idle liveness connection, held for the whole session.
    const idle = await RawConnection.open(d.sock);
    try {
      assert.equal(statSync(d.sock).mode & 0o777, 0o600);
      const info = checked(await d.client.request('GET', V1.daemon), 200) as { state: string; backend_collection: Record<string, unknown>; version: { git_commit: string } };
      assertSchema('v1', 'DaemonInfo', info);
      assert.equal(info.state, 'RUNNING');
      assert.deepEqual(Object.keys(info.backend_collection), ['/base']);
      const version = await runProgram('nydusd', ['--version']);
      assert.match(version.stdout, new RegExp(`^Git Commit: \\t${info.version.git_commit}$`, 'm'));
      assertSchema('v2', 'DaemonInfo', checked(await d.client.request('GET', V2.daemon), 200));

      // Mount the v6 image at /sub with its own blob links and cache dir.
      const blobs = linkBlobs(V6_FIXTURE, join(d.dir, 'blobs-sub'));
      const config = JSON.stringify({
        version: 2,
        id: '/sub',
        backend: { type: 'localfs', localfs: { dir: blobs } },
        cache: { type: 'blobcache', filecache: { work_dir: join(d.dir, 'cache-sub') } },
      });
      const cmd = { source: join(V6_FIXTURE, 'bootstrap'), fs_type: 'rafs', config, prefetch_files: null };
      checked(await d.client.request('POST', V1.mount, { query: { mountpoint: '/sub' }, body: cmd }), 204);
      failed(
        await d.client.request('POST', V1.mount, { query: { mountpoint: '/sub' }, body: cmd }),
        500,
        'Mount(MountFilesystem(Other("object or filesystem already exists")))',
      );

      const files = readTree(join(d.mnt, 'sub'));
      const sizes = Object.fromEntries(Object.entries(files).map(([p, f]) => [p.split('/').pop(), f.size]));
      assert.deepEqual(sizes, { 'lib.rs': 16931, 'sync_io.rs': 13400 });
      const again = readTree(join(d.mnt, 'sub'));
      assert.deepEqual(again, files, 'a second read (from the cache) gives the same bytes');
      assert.ok(Object.keys(readTree(join(d.mnt, 'base'))).length > 0);

      const fs = checked(await d.client.request('GET', V1.metrics, { query: { id: '/sub' } }), 200) as { data_read: number; fop_hits: number[] };
      assertSchema('v1', 'FsIoStats', fs);
      assert.ok(fs.data_read >= 16931 + 13400, `data_read ${fs.data_read}`);
      assert.ok(fs.fop_hits[4] > 0, 'reads counted');
      failed(await d.client.request('GET', V1.metrics), 404, 'GlobalMetrics(Metrics(Stats(NoCounter)))');
      const backend = checked(await d.client.request('GET', V1.metricsBackend, { query: { id: '/sub' } }), 200) as { read_count: number };
      assertSchema('v1', 'BackendMetrics', backend);
      assert.ok(backend.read_count > 0);
      assertSchema('v1', 'BlobcacheMetrics', checked(await d.client.request('GET', V1.metricsBlobcache, { query: { id: '/sub' } }), 200));
      assertSchema('v1', 'FilesMetrics', checked(await d.client.request('GET', V1.metricsFiles, { query: { id: '/sub' } }), 200));
      assertSchema('v1', 'AccessPatterns', checked(await d.client.request('GET', V1.metricsPattern, { query: { id: '/sub' } }), 200));
      checked(await d.client.request('GET', V1.metricsInflight), 204);
      assertSchema('v1', 'Events', checked(await d.client.request('GET', V1.events), 200));
      assertSchema('v1', 'RafsSuperMeta', checked(await d.client.request('GET', V1.backend, { query: { mountpoint: '/sub' } }), 200));
      const prom = await d.client.prometheus();
      const bytesLine = prom.split('\n').find((l) => l.startsWith('nydusd_fs_read_bytes_total{id="/sub"} '));
      assert.ok(bytesLine !== undefined && Number(bytesLine.split(' ')[1]) >= 16931 + 13400, bytesLine);

      checked(await d.client.request('PUT', V1.config, { query: { id: '/sub' }, body: { registry_auth: 'dXNlcjpwYXNz' } }), 204);
      assert.deepEqual(await d.client.getConfig('/sub'), { registry_auth: '<redacted>' });
      failed(await d.client.request('PUT', V1.start), 400, 'Configure(DaemonAbnormal(UnexpectedEvent("Start")))');

      const view = checked(await d.client.request('GET', EXT.machine), 200) as { stateKey: string; context: DaemonContext };
      assertSchema('ext', 'MachineView', view);
      assert.equal(view.stateKey, 'RUNNING.idle');
      assert.deepEqual(view.context.config, { '/sub:registry_auth': '<redacted>' });
      const page = checked(await d.client.request('GET', EXT.journal), 200) as { records: Array<{ type: string; mountpoint?: string }>; more: boolean };
      assertSchema('ext', 'JournalPage', page);
      assert.ok(page.records.some((r) => r.type === 'mount' && r.mountpoint === '/sub'));
      // Event sourcing, checked from outside: the journal the API hands out replays, through
      // the pure machine, to the state and context the daemon reports (secrets redacted in both).
      assert.equal(page.more, false);
      const replayed = replayDaemon(page.records as ReplayRecord[]);
      assert.equal(stateKey(replayed), view.stateKey);
      assert.deepEqual(replayed.context, view.context);
      assert.doesNotMatch(JSON.stringify(page) + JSON.stringify(view), /dXNlcjpwYXNz/, 'the API never hands out the credentials');
      // The journal keeps them (mode 0600), so a failover can restore them.
      const segment = readdirSync(join(d.dir, 'state')).find((f) => f.endsWith('.jsonl'))!;
      assert.equal(statSync(join(d.dir, 'state', segment)).mode & 0o777, 0o600);
      assert.match(readFileSync(join(d.dir, 'state', segment), 'utf8'), /"values":\{"registry_auth":"dXNlcjpwYXNz"\}/);

      // nydusctl against the same daemon.
      const ctlInfo = await runProgram('nydusctl', ['--sock', d.sock, '--json', 'info']);
      assert.equal(ctlInfo.code, 0, ctlInfo.stderr);
      assert.deepEqual(Object.keys(JSON.parse(ctlInfo.stdout).backend_collection).sort(), ['/base', '/sub']);
      const ctlEvents = await runProgram('nydusctl', ['--sock', d.sock, 'events']);
      assert.match(ctlEvents.stdout, /mount \/sub <- .*v6-zstd\/bootstrap \(rafs\)/);
      const ctlMachine = await runProgram('nydusctl', ['--sock', d.sock, 'machine']);
      assert.match(ctlMachine.stdout, /^ {2}class RUNNING_idle current$/m);

      checked(await d.client.request('DELETE', V1.mount, { query: { mountpoint: '/sub' } }), 204);
      assert.deepEqual(Object.keys((await d.client.info()).backend_collection ?? {}), ['/base']);
      const gone = spawnSync('ls', [join(d.mnt, 'sub')]);
      assert.notEqual(gone.status, 0);

      assert.equal(idle.closed, false, 'the idle connection stayed open');
      d.child.kill('SIGTERM');
      assert.equal(await d.exited, 0, d.stderr());
      assert.equal(await idle.waitClosed(2000), true, 'the idle connection is closed when the daemon stops');
      assert.equal(existsSync(d.sock), false, 'the socket file is removed');
      assert.equal(isMounted(d.mnt), false, 'SIGTERM unmounts');
    } finally {
      idle.close();
      await d.stop();
    }
  });

  test('PUT /api/v1/daemon/exit answers 204, the process exits 0 and the FUSE mount stays', async (t) => {
    if (!prerequisites(t)) return;
    const d = await startNydusd(V6_FIXTURE);
    try {
      checked(await d.client.request('PUT', V1.exit), 204);
      assert.equal(await d.exited, 0, d.stderr());
      assert.equal(existsSync(d.sock), false);
      assert.equal(isMounted(d.mnt), true, 'exit keeps the mount for a successor');
    } finally {
      await d.stop();
    }
  });
});
