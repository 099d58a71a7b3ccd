// nydusctl as a subprocess against the admin API served (over a real unix socket) from a
// FakeControl in this process: tables and --json for every command, mount with a config
// file, the journal timeline (with --follow), the lifecycle drawing, and the one-line
// failure for a dead or missing socket.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serveFakeWithJournal, tmpDir } from '../api/helpers.js';
import type { Served } from '../api/helpers.js';
import { programArgv } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';

const ctl = (sock: string, ...args: string[]) => runProgram('nydusctl', ['--sock', sock, ...args], { timeoutMs: 30_000 });

describe('nydusctl against a served daemon', () => {
  let s: Served;
  before(async () => {
    s = await serveFakeWithJournal('ctl-journal', { stateKey: 'READY.idle' });
  });
  after(() => s.close());

  test('info: a table by default, the API answer with --json', async () => {
    const human = await ctl(s.sock, 'info');
    assert.equal(human.code, 0, human.stderr);
    // Upstream's block first: values as JSON in a 24-column field.
    const info = s.control.info();
    assert.ok(
      human.stdout.startsWith(
        `\nVersion:                ${JSON.stringify(info.version.package_ver)}\nStatus:                 "READY"\n` +
          `Profile:                ${JSON.stringify(info.version.profile)}\nCommit:                 ${JSON.stringify(info.version.git_commit)}\n`,
      ),
      human.stdout,
    );
    assert.match(human.stdout, /^ID:\s+"fake"$/m);
    assert.match(human.stdout, /^Mounts:\s+0$/m);
    const js = await ctl(s.sock, '--json', 'info');
    assert.deepEqual(JSON.parse(js.stdout), JSON.parse(JSON.stringify(s.control.info())));
  });

  test('mount reads the config file; mounts lists it; umount removes it', async () => {
    const cfg = join(s.dir, 'config.json');
    const config = JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: '/blobs' } } } });
    writeFileSync(cfg, config);
    const m = await ctl(s.sock, 'mount', '--mountpoint', '/sub', '--bootstrap', '/img/bootstrap', '--config', cfg, '--prefetch-files', '/etc', '/bin');
    assert.equal(m.code, 0, m.stderr);
    assert.equal(m.stdout, 'mounted /img/bootstrap at /sub\n');
    assert.deepEqual(s.control.mounts.get('/sub')?.cmd, { source: '/img/bootstrap', fs_type: 'rafs', config, prefetch_files: ['/etc', '/bin'] });
    const list = await ctl(s.sock, 'mounts');
    assert.match(list.stdout, /^MOUNTPOINT\s+TYPE\s+BACKEND\s+MOUNTED$/m);
    assert.match(list.stdout, /^\/sub\s+Rafs\s+localfs\s+2024-01-02 03:04:05\.000000006 \+00:00:00$/m);
    const again = await ctl(s.sock, 'mount', '--mountpoint', '/sub', '--bootstrap', '/img/bootstrap', '--config', cfg);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^nydusctl: ERR_DAEMON_MOUNT_EXISTS: .*object or filesystem already exists.*\n$/);
    const missing = await ctl(s.sock, 'mount', '--mountpoint', '/x', '--bootstrap', '/b', '--config', join(s.dir, 'none.json'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^nydusctl: ERR_CONFIG_INVALID: failed to read config/);
    const u = await ctl(s.sock, 'umount', '--mountpoint', '/sub');
    assert.equal(u.code, 0, u.stderr);
    assert.equal(s.control.mounts.size, 0);
    assert.equal((await ctl(s.sock, 'mounts')).stdout, 'no mounts\n');
  });

  test('set log-level; an unknown setting is a usage error (exit 2)', async () => {
    const r = await ctl(s.sock, 'set', 'log-level', 'DEBUG');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(s.control.logLevel, 'debug');
    const bad = await ctl(s.sock, 'set', 'colour', 'red');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^nydusctl: ERR_CLI_USAGE: /);
  });

  test('metrics: tables per kind, JSON equal to the API answer, NoCounter is one line', async () => {
    const none = await ctl(s.sock, 'metrics');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^nydusctl: ERR_API_NO_COUNTER: .*GlobalMetrics\(Metrics\(Stats\(NoCounter\)\)\).*\n$/);
    await s.client.mount('/m', { source: '/b', fs_type: 'rafs', config: '{}', prefetch_files: null });
    s.control.reads = 2;
    const fs = await ctl(s.sock, 'metrics', '--kind', 'fs');
    assert.equal(fs.code, 0, fs.stderr);
    assert.match(fs.stdout, /^read\s+2\s+0\s+0$/m);
    assert.match(fs.stdout, /^data_read:\s+8192 \(8\.0 KiB\)$/m);
    for (const kind of ['fs', 'files', 'pattern', 'backend', 'blobcache'] as const) {
      const js = await ctl(s.sock, '--json', 'metrics', '--kind', kind, '--id', '/m');
      assert.equal(js.code, 0, js.stderr);
      assert.deepEqual(JSON.parse(js.stdout), s.control.metrics(kind, { id: '/m' }));
      const human = await ctl(s.sock, 'metrics', '--kind', kind, '--id', '/m');
      assert.equal(human.code, 0, human.stderr);
      assert.ok(human.stdout.length > 0);
    }
    assert.equal((await ctl(s.sock, 'metrics', '--kind', 'inflight')).stdout, 'no requests in flight\n');
    s.control.inflightList = [{ inode: 9, opcode: 15, unique: 77, timestamp_secs: Math.floor(Date.now() / 1000) }];
    assert.match((await ctl(s.sock, 'metrics', '--kind', 'inflight')).stdout, /^9\s+15\s+77\s+\d+$/m);
    s.control.inflightList = [];
    const bad = await ctl(s.sock, 'metrics', '--kind', 'disk');
    assert.equal(bad.code, 2);
    await s.client.umount('/m');
  });

  test('events prints the journal as a timeline; --json as JSON lines', async () => {
    const r = await ctl(s.sock, 'events');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const page = await s.client.journal(0);
    assert.equal(lines.length, page.records.length);
    assert.match(lines[0], /^#1  \S+  mount \/sub <- \/img\/bootstrap \(rafs\)$/);
    assert.ok(lines.some((l) => /  log level debug$/.test(l)));
    const js = await ctl(s.sock, '--json', 'events', '--since', '1');
    const recs = js.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number });
    assert.deepEqual(recs.map((x) => x.seq), page.records.slice(1).map((x) => x.seq));
  });

  test('machine draws the running definition with the current state and the path taken', async () => {
    await s.client.start();
    const mmd = await ctl(s.sock, 'machine');
    assert.equal(mmd.code, 0, mmd.stderr);
    assert.match(mmd.stdout, /^stateDiagram-v2\n/);
    assert.match(mmd.stdout, /^  class RUNNING_idle current$/m);
    assert.match(mmd.stdout, /READY_idle --> READY_starting : START #1/);
    const dot = await ctl(s.sock, 'machine', '--format', 'dot');
    assert.match(dot.stdout, /^digraph "daemon" \{/);
    assert.match(dot.stdout, /"RUNNING\.idle" \[label="idle", style="rounded,filled", fillcolor="#ffd8a8", penwidth=3\]/);
    const svg = spawnSync('dot', ['-Tsvg'], { input: dot.stdout });
    assert.equal(svg.status, 0, String(svg.stderr));
    assert.match(String(svg.stdout), /<svg/);
    const js = JSON.parse((await ctl(s.sock, 'machine', '--format', 'json')).stdout) as { stateKey: string; path: unknown[] };
    assert.equal(js.stateKey, 'RUNNING.idle');
    assert.equal(js.path.length, 2);
    assert.equal((await ctl(s.sock, 'machine', '--format', 'png')).code, 2);
  });

  test("upstream's syntax: -r/--raw, mount -s -c -m -t, umount -m, metrics CATEGORY in upstream's layout", async () => {
    const raw = await ctl(s.sock, '-r', 'info');
    assert.equal(raw.code, 0, raw.stderr);
    assert.equal(raw.stdout, JSON.stringify(JSON.parse(JSON.stringify(s.control.info()))) + '\n');
    const cfg = join(s.dir, 'config-up.json');
    writeFileSync(cfg, JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: '/blobs' } } } }));
    const m = await runProgram('nydusctl', ['-S', s.sock, 'mount', '-s', '/img/b2', '-c', cfg, '-m', '/up', '-t', 'rafs']);
    assert.equal(m.code, 0, m.stderr);
    assert.equal(s.control.mounts.get('/up')?.cmd.source, '/img/b2');
    assert.match((await ctl(s.sock, 'info')).stdout, /^Backend list:\n  \/up\n    type: +Rafs\n    mountpoint: +\/up\n/m);
    const noSource = await ctl(s.sock, 'mount', '-c', cfg, '-m', '/x');
    assert.equal(noSource.code, 2);
    assert.match(noSource.stderr, /-s\/--source/);

    s.control.reads = 3;
    const backend = await ctl(s.sock, 'metrics', 'backend');
    assert.equal(backend.code, 0, backend.stderr);
    const b = s.control.metrics('backend', {}) as Record<string, unknown>;
    assert.ok(backend.stdout.startsWith(`\nBackend Type:       ${JSON.stringify(b.backend_type)}\nRead Amount:        ${JSON.stringify(b.read_amount_total)} Bytes (`));
    assert.match(backend.stdout, /^Block Sizes:             <1K     1K~     4K~     16K~    64K~    128K~   512K~   1M~     $/m);
    assert.match(backend.stdout, /^Request Count:           (\d+ +){8}$/m);
    const rawBackend = await ctl(s.sock, '--raw', 'metrics', 'backend');
    assert.deepEqual(JSON.parse(rawBackend.stdout), b);
    assert.equal(rawBackend.stdout.trimEnd().split('\n').length, 1);
    const cache = await ctl(s.sock, 'metrics', 'cache');
    assert.equal(cache.code, 0, cache.stderr);
    assert.match(cache.stdout, /^Partial Hits:           \d+\nWhole Hits:             \d+\nTotal Read:             \d+\nDirectory:              /m);
    assert.match(cache.stdout, /^Prefetch Amount:        \d+ = \d+ KB$/m);
    const fsstats = await ctl(s.sock, 'metrics', 'fsstats');
    assert.equal(fsstats.code, 0, fsstats.stderr);
    assert.match(fsstats.stdout, /^Read Latency:   <1ms    ~20ms   ~50ms   ~100ms  ~500ms  ~1s     ~2s     2s~     $/m);
    assert.match(fsstats.stdout, /^FOP Counters:\nGetattr\(\d+\) Readlink\(\d+\) Open\(\d+\) Release\(\d+\) Read\(3\) /m);
    assert.equal((await ctl(s.sock, 'metrics', 'disk')).code, 2);
    assert.equal((await ctl(s.sock, 'metrics', 'fsstats', '-I', '1')).code, 2);

    // -I SECS: upstream's delta report every SECS seconds until interrupted.
    const [cmd, ...pre] = programArgv('nydusctl');
    const child = spawn(cmd, [...pre, '-S', s.sock, 'metrics', 'backend', '-I', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no report: ${out}`)), 20_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('<<< <<< <<< <<< <<<\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGINT');
    assert.match(out, /^>>> >>> >>> >>> >>>\nBackend Read Bandwidth:     \d+ KB\/S\nBackend Average IO Size:    \d+ Bytes\nBackend Average Latency:    \d+ millis\n/m);

    const u = await runProgram('nydusctl', ['--sock', s.sock, 'umount', '-m', '/up']);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(s.control.mounts.has('/up'), false);
    await s.client.mount('/up2', { source: '/b', fs_type: 'rafs', config: '{}', prefetch_files: null });
    assert.equal((await ctl(s.sock, 'umount', '/up2')).code, 0);
    assert.equal(s.control.mounts.has('/up2'), false);
  });

  test('exit stops the daemon', async () => {
    const r = await ctl(s.sock, 'exit');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(s.control.state, 'STOPPED');
  });
});

describe('nydusctl events --follow', () => {
  test('prints new records as they come and ends when the daemon goes away', async () => {
    const s = await serveFakeWithJournal('ctl-follow');
    const [cmd, ...pre] = programArgv('nydusctl');
    const child = spawn(cmd, [...pre, '--sock', s.sock, 'events', '--follow', '--interval', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 400 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 25));
      assert.match(out, re);
    };
    try {
      await s.client.mount('/f1', { source: '/b1', fs_type: 'rafs', config: '{}', prefetch_files: null });
      await waitFor(/mount \/f1 <- \/b1/);
      await s.client.umount('/f1');
      await waitFor(/umount \/f1/);
    } finally {
      await s.close();
    }
    assert.equal(await exited, 0, err);
    assert.equal(err, 'nydusctl: the daemon is gone; stopped following\n');
  });
});

describe('nydusctl without a daemon', () => {
  test('a missing socket or a dead one is one line and exit 1', async () => {
    const dir = tmpDir('ctl-dead');
    try {
      const missing = await ctl(join(dir, 'none.sock'), 'info');
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^nydusctl: ERR_API_UNAVAILABLE: failed to reach the daemon at .*none\.sock: .*ENOENT.*\n$/);
      assert.equal(missing.stdout, '');
      const dead = join(dir, 'dead.sock');
      const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(dead)}, () => process.kill(process.pid, 'SIGKILL'))`]);
      assert.equal(r.signal, 'SIGKILL');
      const refused = await ctl(dead, 'mounts');
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^nydusctl: ERR_API_UNAVAILABLE: .*ECONNREFUSED.*\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
