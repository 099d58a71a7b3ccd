// `ca_cert_files`: a registry behind nginx terminating TLS with a certificate signed by a
// private CA is read when the config names that CA, refused when it does not (the
// system's roots alone do not trust it), and a CA file that cannot be read is a config
// error naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { normalizeConfig } from '../../src/config/parse.js';
import { DistributionClient } from '../../src/registry/distribution.js';
import { openBackend } from '../../src/storage/factory.js';
import { need } from '../helpers/env.js';
import { random } from '../helpers/registry-images.js';
import { haveNginx, startTlsProxy } from '../helpers/registry-nginx.js';
import { haveRegistry, startRegistry } from '../helpers/registry-server.js';
import { makeCerts } from '../helpers/tls-certs.js';

const REPO = 'tls/app';

test('ca_cert_files: a registry behind TLS with a private CA', async (t) => {
  if (!need(t, haveRegistry() && haveNginx(), 'docker-registry and nginx are needed')) return;
  const dir = mkdtempSync('/tmp/registry-tls-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certs = makeCerts(dir);
  const reg = await startRegistry(t);
  const data = random(300_000);
  const id = createHash('sha256').update(data).digest('hex');
  const c = new DistributionClient({ host: reg.host, repo: REPO, scheme: 'http', retryLimit: 0 });
  await c.pushBlob(`sha256:${id}`, data.length, () => data);
  await c.close();
  const tls = await startTlsProxy(t, reg.port, certs.cert, certs.key);
  const config = (registry: Record<string, unknown>) =>
    normalizeConfig({ version: 2, backend: { type: 'registry', registry: { scheme: 'https', host: tls.tlsHost, repo: REPO, timeout: 5, connect_timeout: 2, ...registry } } }).backend;

  const trusted = await openBackend(config({ ca_cert_files: [certs.ca] }), 'tls');
  t.after(() => trusted.close());
  const buf = Buffer.alloc(100_000);
  await trusted.read(id, buf, 150_000);
  assert.deepEqual(buf, data.subarray(150_000, 250_000));

  const untrusted = await openBackend(config({}), 'tls-untrusted');
  t.after(() => untrusted.close());
  await assert.rejects(untrusted.read(id, Buffer.alloc(10), 0), (err: NodeJS.ErrnoException) => {
    assert.match(err.message, /certificate/i);
    return true;
  });

  await assert.rejects(openBackend(config({ ca_cert_files: [join(dir, 'missing.pem')] })), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    assert.match(err.message, /failed to read ca_cert_files entry .*missing\.pem/);
    return true;
  });
});
