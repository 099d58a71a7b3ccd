// No secret leaves the real daemon: credentials are set every way it takes them (PUT
// /api/v1/config, a mount config's registry auth, token, proxy and mirror URLs and
// headers, a refused mount), its failing reads are provoked, then every GET route of the
// API table, every error body, the log file at trace level and stderr are searched for
// each secret, also in its decoded and encoded forms.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROUTES, V1 } from '../../src/api/paths.js';
import { haveFixtures, isRoot, need, V6_FIXTURE } from '../helpers/env.js';
import { haveNydusd, startNydusd } from '../api/nydusd-process.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

test('secrets never appear in API answers, error bodies, logs or stderr', async (t) => {
  if (!(need(t, haveNydusd(), 'no nydusd') && need(t, isRoot() && existsSync('/dev/fuse'), 'needs root and /dev/fuse') && need(t, haveFixtures(), 'needs ../shared/fixtures'))) return;
  const secret = {
    storeAuth: 'Sx-store-auth-pw',
    storeProxy: 'Sx-store-proxy-pw',
    storeScheduler: 'Sx-store-sched-pw',
    mountAuth: 'Sx-mount-auth-pw',
    mountToken: 'Sx-mount-token',
    mountProxy: 'Sx-mount-proxy-pw',
    mirror: 'Sx-mirror-pw',
    mirrorHeader: 'Sx-mirror-header',
    refusedAuth: 'Sx-refused-auth-pw',
  };
  // Forms a secret may travel in: as set, and the base64 the auth fields carry.
  const forms = Object.values(secret).flatMap((s) => [s, b64(`user:${s}`)]);

  const dir = mkdtempSync('/tmp/nydusd-secrets-');
  const log = join(dir, 'nydusd.log');
  const d = await startNydusd(V6_FIXTURE, ['--virtual-mountpoint', '/base', '--log-level', 'trace', '--log-file', log], dir);
  t.after(() => d.stop());
  const answers: string[] = [];
  const call = async (method: string, path: string, opts: { query?: Record<string, string>; body?: unknown } = {}) => {
    const r = await d.client.request(method, path, opts);
    answers.push(`${method} ${path} ${JSON.stringify(opts.query ?? {})} -> ${r.status} ${r.text}`);
    return r;
  };

  // The config store, for the root mount and for /reg.
  for (const id of ['/', '/reg']) {
    const r = await call('PUT', V1.config, {
      query: { id },
      body: {
        registry_auth: b64(`user:${secret.storeAuth}`),
        proxy_url: `http://proxyuser:${secret.storeProxy}@127.0.0.1:9/`,
        dragonfly_scheduler_endpoint: `http://sched:${secret.storeScheduler}@127.0.0.1:9`,
      },
    });
    assert.equal(r.status, 204, r.text);
  }

  // Registry-backed mounts (a proxy cannot go with mirrors: one of each) whose every
  // request fails fast (nothing listens on port 9).
  const registry = {
    scheme: 'http',
    host: '127.0.0.1:9',
    repo: 'library/secret',
    auth: b64(`user:${secret.mountAuth}`),
    registry_token: secret.mountToken,
    retry_limit: 0,
    timeout: 2,
    connect_timeout: 1,
  };
  const viaProxy = { ...registry, proxy: { url: `http://proxyuser:${secret.mountProxy}@127.0.0.1:9`, fallback: true } };
  const viaMirror = { ...registry, mirrors: [{ host: `http://mirroruser:${secret.mirror}@127.0.0.1:9`, headers: { Authorization: `Bearer ${secret.mirrorHeader}` } }] };
  const mountCmd = (id: string, reg: object) => ({
    source: join(V6_FIXTURE, 'bootstrap'),
    fs_type: 'rafs',
    config: JSON.stringify({ version: 2, id, backend: { type: 'registry', registry: reg }, cache: { type: '' } }),
  });
  for (const [at, reg] of [['/reg', viaProxy], ['/mir', viaMirror]] as const) {
    const r = await call('POST', V1.mount, { query: { mountpoint: at }, body: mountCmd(at, reg) });
    assert.equal(r.status, 204, r.text);
  }
  const refused = await call('POST', V1.mount, { query: { mountpoint: '/refused' }, body: mountCmd('/refused', { ...viaMirror, proxy: viaProxy.proxy, auth: b64(`user:${secret.refusedAuth}`) }) });
  assert.ok(refused.status >= 400, refused.text);

  // Reads that fail in the backend, so that its errors are logged and kept as events.
  for (const at of ['reg', 'mir']) {
    const read = spawnSync('sh', ['-c', 'find "$1" -type f -exec cat {} + >/dev/null', 'sh', join(d.mnt, at)], { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(read.status, 0, `reads through an unreachable registry fail (${at})`);
    answers.push(read.stderr);
  }

  // Every GET route, without and with the mount's id / mountpoint.
  for (const route of ROUTES.filter((r) => r.methods.includes('GET'))) {
    const queries: Record<string, string>[] = [{}, ...['/reg', '/mir'].flatMap((at): Record<string, string>[] => [{ id: at }, { mountpoint: at }])];
    for (const query of queries) await call('GET', route.path, { query });
  }

  // Stopped by hand: stop() removes the dir, log included.
  d.child.kill('SIGTERM');
  await d.exited;
  const logged = readFileSync(log, 'utf8');
  assert.match(logged, /registry/, 'the backend errors were logged');
  const places = { answers: answers.join('\n'), log: logged, stderr: d.stderr() };
  for (const [where, text] of Object.entries(places)) {
    for (const s of forms) {
      const at = text.indexOf(s);
      assert.equal(at, -1, `${where} holds a secret: ...${text.slice(Math.max(0, at - 200), at + 60)}...`);
    }
  }
});
