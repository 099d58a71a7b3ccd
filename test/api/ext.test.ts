// The project's extensions over the real unix socket: the machine view, the journal in
// pages (a real Journal in a temp dir, mount configs redacted) and the Prometheus text.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EXT, V1 } from '../../src/api/paths.js';
import { REDACTED } from '../../src/api/redact.js';
import { machineGraph } from '../../src/daemon/diagram.js';
import { checked, failed, serveFakeWithJournal } from './helpers.js';
import type { Served } from './helpers.js';
import { assertSchema } from './schema.js';

const SECRET_CONFIG = JSON.stringify({
  device: { id: '/snap', backend: { type: 'registry', config: { host: 'r.io', auth: 'dXNlcjpzZWNyZXQ=', registry_token: 'tok' } } },
});

describe('extensions', () => {
  let s: Served;
  before(async () => {
    s = await serveFakeWithJournal('journal', { stateKey: 'READY.idle' });
  });
  after(() => s.close());

  test('GET /api/v1/daemon/machine: the definition the daemon runs, its state and the path taken', async () => {
    await s.client.start();
    const view = checked(await s.client.request('GET', EXT.machine), 200) as { definition: unknown; state: string; stateKey: string; transitions: unknown[] };
    assertSchema('ext', 'MachineView', view);
    assert.deepEqual(view.definition, JSON.parse(JSON.stringify(machineGraph())));
    assert.equal(view.state, 'RUNNING');
    assert.equal(view.stateKey, 'RUNNING.idle');
    assert.deepEqual(
      view.transitions.map((t) => (t as { to: string }).to),
      ['READY.starting', 'RUNNING.idle'],
    );
    failed(await s.client.request('PUT', EXT.machine), 400, 'BadRequest');
  });

  test('GET /api/v1/daemon/journal pages through the records, configs redacted', async () => {
    await s.client.mount('/snap', { source: '/boot', fs_type: 'rafs', config: SECRET_CONFIG, prefetch_files: null });
    await s.client.setLogLevel('warn');
    await s.client.umount('/snap');
    const all = checked(await s.client.request('GET', EXT.journal), 200) as { records: Array<{ seq: number; type: string; config?: string }>; next_since: number; more: boolean };
    assertSchema('ext', 'JournalPage', all);
    assert.deepEqual(
      all.records.map((r) => r.type),
      ['event', 'transition', 'transition', 'mount', 'log-level', 'umount'],
    );
    assert.deepEqual(all.records.map((r) => r.seq), [1, 2, 3, 4, 5, 6]);
    assert.equal(all.next_since, 6);
    assert.equal(all.more, false);
    const mount = all.records[3];
    const config = JSON.parse(mount.config!);
    assert.equal(config.device.backend.config.auth, REDACTED);
    assert.equal(config.device.backend.config.registry_token, REDACTED);
    assert.equal(config.device.backend.config.host, 'r.io');
    assert.doesNotMatch(JSON.stringify(all), /dXNlcjpzZWNyZXQ=|"tok"/);

    const page1 = await s.client.journal(0, 4);
    assert.deepEqual(page1.records.map((r) => r.seq), [1, 2, 3, 4]);
    assert.equal(page1.more, true);
    const page2 = await s.client.journal(page1.next_since, 4);
    assert.deepEqual(page2.records.map((r) => r.seq), [5, 6]);
    assert.equal(page2.more, false);
    const empty = await s.client.journal(6);
    assert.deepEqual(empty, { records: [], next_since: 6, more: false });
  });

  test('journal query parameters are checked', async () => {
    failed(await s.client.request('GET', EXT.journal, { query: { since: '-1' } }), 400, 'BadRequest');
    failed(await s.client.request('GET', EXT.journal, { query: { since: 'x' } }), 400, 'BadRequest');
    failed(await s.client.request('GET', EXT.journal, { query: { limit: 0 } }), 400, 'BadRequest');
    failed(await s.client.request('GET', EXT.journal, { query: { limit: 10001 } }), 400, 'BadRequest');
  });

  test('GET /api/v1/metrics/prometheus renders every instance from the metrics JSON', async () => {
    await s.client.mount('/a', { source: '/b', fs_type: 'rafs', config: '{}', prefetch_files: null });
    await s.client.mount('/b"q', { source: '/b', fs_type: 'rafs', config: '{}', prefetch_files: null });
    s.control.reads = 3;
    const res = await s.client.request('GET', EXT.prometheus);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(res.headers.server, 'Nydus API');
    const lines = res.text.trimEnd().split('\n');
    // Every family announced once, before its samples; every sample line is `name{labels} number`.
    const seen = new Set<string>();
    for (const l of lines) {
      const m = /^# TYPE (\S+) (counter|gauge)$/.exec(l);
      if (m) {
        assert.ok(!seen.has(m[1]), `family ${m[1]} twice`);
        seen.add(m[1]);
      } else if (!l.startsWith('# HELP ')) {
        assert.match(l, /^[a-z_]+(\{[^}]*\})? -?\d+(\.\d+)?(e[+-]?\d+)?$/);
        assert.ok(seen.has(l.split(/[{ ]/)[0]), `sample before its TYPE: ${l}`);
      }
    }
    const fs = (await s.client.metrics('fs', { id: '/a' })) as { data_read: number; fop_hits: number[] };
    assert.ok(lines.includes(`nydusd_fs_read_bytes_total{id="/a"} ${fs.data_read}`));
    assert.ok(lines.includes(`nydusd_fs_fop_total{id="/a",op="read"} ${fs.fop_hits[4]}`));
    assert.ok(lines.includes('nydusd_fs_read_bytes_total{id="/b\\"q"} 12288'));
    const be = (await s.client.metrics('backend', { id: '/a' })) as { read_count: number };
    assert.ok(lines.includes(`nydusd_backend_reads_total{id="/a",backend_type="localfs"} ${be.read_count}`));
    assert.ok(lines.includes('nydusd_blobcache_data_all_ready{id="/a"} 0'));
    assert.ok(lines.some((l) => /^nydusd_info\{id="fake",state="RUNNING",/.test(l)));
    assert.equal(lines.filter((l) => l.startsWith('nydusd_backend_reads_by_size_latency_total{id="/a"')).length, 64);
    assert.equal(await s.client.prometheus(), res.text);
    checked(await s.client.request('DELETE', V1.mount, { query: { mountpoint: '/a' } }), 204);
  });
});
