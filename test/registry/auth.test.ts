// Registry authentication: the challenge parser and credential helpers, then the three
// distribution auth flows (anonymous, htpasswd Basic, token via a realm) against real
// docker-registry instances, token refresh, refused credentials, IMAGE_PULL_AUTH, and
// that no secret reaches an error message, a backend event or the metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseChallenges, pickChallenge } from '../../src/http/challenge.js';
import { decodeAuth, encodeAuth } from '../../src/http/auth.js';
import { DistributionClient } from '../../src/registry/distribution.js';
import { RegistryBackend } from '../../src/storage/backend/registry.js';
import { applyPullAuth, createStorage } from '../../src/storage/factory.js';
import { need } from '../helpers/env.js';
import { collectEvents, random, registryConfig } from '../helpers/registry-images.js';
import { haveRegistry, startRegistry } from '../helpers/registry-server.js';
import { startTokenIssuer } from '../helpers/registry-token-issuer.js';

const USER = 'alice';
const PASSWORD = 'p@ss:word with spaces';
const AUTH = encodeAuth(USER, PASSWORD);

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

/** Uploads `data` as a blob of `repo` and returns its id (hex). */
async function seedBlob(host: string, repo: string, data: Buffer, auth?: string): Promise<string> {
  const hex = createHash('sha256').update(data).digest('hex');
  const client = new DistributionClient({ host, repo, scheme: 'http', auth, retryLimit: 0 });
  try {
    await client.pushBlob(`sha256:${hex}`, data.length, () => data);
  } finally {
    await client.close();
  }
  return hex;
}

function backendFor(host: string, repo: string, registry: Record<string, unknown> = {}, now?: () => number): RegistryBackend {
  const c = registryConfig(host, repo, registry);
  if (c.backend?.type !== 'registry') throw new Error('not a registry config');
  return new RegistryBackend(c.backend.registry, { id: 'test', now });
}

test('WWW-Authenticate challenges parse with quoted commas, escapes and several challenges', () => {
  const [bearer] = parseChallenges('Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push"');
  assert.deepEqual(bearer, {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'reg.example', scope: 'repository:a/b:pull,push' },
  });
  assert.deepEqual(parseChallenges('Basic realm="basic-realm"'), [{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
  const two = parseChallenges('Newauth realm="apps", title="Login to \\"apps\\"", Basic realm="simple"');
  assert.deepEqual(two.map((c) => c.scheme), ['newauth', 'basic']);
  assert.equal(two[0].params.title, 'Login to "apps"');
  assert.equal(pickChallenge(['Basic realm=x', 'Bearer realm="r"'])?.scheme, 'bearer');
  assert.equal(pickChallenge('Negotiate abc=='), undefined);
  assert.deepEqual(parseChallenges('Bearer realm="unterminated'), [{ scheme: 'bearer', params: {} }]);
  assert.deepEqual(parseChallenges('x'.repeat(20_000)), []);
});

test('auth strings decode as base64 user:password and malformed ones are refused without echoing them', () => {
  assert.deepEqual(decodeAuth(AUTH), { username: USER, password: PASSWORD });
  assert.deepEqual(decodeAuth(`  ${AUTH}\n`), { username: USER, password: PASSWORD });
  for (const bad of ['not base64 at all!', Buffer.from('nocolon').toString('base64'), Buffer.from(':pw').toString('base64')]) {
    assert.throws(() => decodeAuth(bad), (err) => codeOf(err) === 'ERR_STORAGE_AUTH' && !(err as Error).message.includes(bad));
  }
});

test('IMAGE_PULL_AUTH replaces the registry auth of a config, and only of registry configs', () => {
  const c = registryConfig('r.example', 'a/b', { auth: encodeAuth('x', 'y') });
  const replaced = applyPullAuth(c, { IMAGE_PULL_AUTH: AUTH });
  assert.equal(replaced.backend?.type === 'registry' && replaced.backend.registry.auth, AUTH);
  assert.equal(c.backend?.type === 'registry' && c.backend.registry.auth, encodeAuth('x', 'y'), 'the original is not modified');
  assert.equal(applyPullAuth(c, {}), c);
});

test('anonymous registry: range reads, sizes and metrics, no challenge', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const reg = await startRegistry(t);
  const data = random(300_000);
  const id = await seedBlob(reg.host, 'test/anon', data);
  const b = backendFor(reg.host, 'test/anon');
  t.after(() => b.close());
  assert.equal(await b.blobSize(id), data.length);
  const buf = Buffer.alloc(4096);
  await b.read(id, buf, 123_456);
  assert.deepEqual(buf, data.subarray(123_456, 123_456 + 4096));
  const tail = Buffer.alloc(1000);
  await b.read(id, tail, data.length - 1000);
  assert.deepEqual(tail, data.subarray(data.length - 1000));
  await assert.rejects(b.read(id, Buffer.alloc(10), data.length - 5), (err) => codeOf(err) === 'ERR_STORAGE_SHORT_READ');
  await assert.rejects(b.read('0'.repeat(64), Buffer.alloc(10), 0), (err) => codeOf(err) === 'ERR_STORAGE_BLOB_NOT_FOUND');
  await assert.rejects(b.read('../../etc/passwd', Buffer.alloc(10), 0), (err) => codeOf(err) === 'ERR_STORAGE_BLOB_NOT_FOUND');
  assert.equal(b.auth.stats.challenges, 0);
  // scheme "": https first; a plain-http registry answers TLS with garbage, so http from then on.
  const probing = backendFor(reg.host, 'test/anon', { scheme: '' });
  t.after(() => probing.close());
  await probing.read(id, buf, 0);
  await probing.read(id, buf, 4096);
  assert.deepEqual(buf, data.subarray(4096, 8192));
  assert.equal(probing.stats.schemeFallbacks, 1);
  assert.equal(probing.blobUrl(id).protocol, 'http:');
  const m = b.metrics.toJSON();
  assert.equal(m.backend_type, 'registry');
  assert.equal(m.read_count, 5);
  assert.equal(m.read_errors, 3);
  assert.equal(m.read_amount_total, 4096 + 1000);
});

test('htpasswd Basic auth: challenge answered with the credentials, cached afterwards; wrong ones refused', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const events = collectEvents(t);
  const reg = await startRegistry(t, { kind: 'basic', users: { [USER]: PASSWORD } });
  const data = random(200_000);
  const id = await seedBlob(reg.host, 'team/app', data, AUTH);
  const b = backendFor(reg.host, 'team/app', { auth: AUTH, retry_limit: 3 });
  t.after(() => b.close());
  const buf = Buffer.alloc(50_000);
  for (let i = 0; i < 4; i++) {
    await b.read(id, buf, i * 50_000);
    assert.deepEqual(buf, data.subarray(i * 50_000, (i + 1) * 50_000));
  }
  assert.equal(b.auth.stats.challenges, 1, 'one 401, then the Basic header is reused');
  assert.equal(b.auth.stats.tokenFetches, 0);

  const anon = backendFor(reg.host, 'team/app', { retry_limit: 3 });
  t.after(() => anon.close());
  await assert.rejects(anon.read(id, buf, 0), (err) => codeOf(err) === 'ERR_STORAGE_AUTH' && /requires credentials/.test((err as Error).message));
  const wrongAuth = encodeAuth(USER, 'not-the-password');
  const wrong = backendFor(reg.host, 'team/app', { auth: wrongAuth, retry_limit: 3 });
  t.after(() => wrong.close());
  const requestsBefore = wrong.connection.stats.requests;
  await assert.rejects(wrong.read(id, buf, 0), (err) => codeOf(err) === 'ERR_STORAGE_AUTH' && !(err as Error).message.includes('not-the-password'));
  assert.equal(wrong.connection.stats.requests - requestsBefore, 2, 'refused credentials are not retried');
  const text = JSON.stringify({ events, m: [b, anon, wrong].map((x) => x.metrics.toJSON()) });
  for (const secret of [PASSWORD, AUTH, wrongAuth, 'not-the-password']) assert.ok(!text.includes(secret), 'no secret in events or metrics');
});

test('token auth: the Bearer token comes from the challenge realm with Basic credentials, is reused, and refreshed', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const events = collectEvents(t);
  const issuer = await startTokenIssuer(t, { [USER]: PASSWORD });
  const reg = await startRegistry(t, { kind: 'token', issuer });
  const data = random(100_000);
  const id = await seedBlob(reg.host, 'team/app', data, AUTH);
  const issuedBySeed = issuer.stats.issued;

  const b = backendFor(reg.host, 'team/app', { auth: AUTH });
  t.after(() => b.close());
  const buf = Buffer.alloc(10_000);
  for (let i = 0; i < 5; i++) {
    await b.read(id, buf, i * 10_000);
    assert.deepEqual(buf, data.subarray(i * 10_000, (i + 1) * 10_000));
  }
  assert.equal(issuer.stats.issued - issuedBySeed, 1, 'one token for five reads');
  assert.match(issuer.stats.lastQuery, /service=nydus-ts-test-registry/);
  assert.match(issuer.stats.lastQuery, /scope=repository%3Ateam%2Fapp%3Apull/);
  assert.equal(issuer.stats.sawPasswordInQuery, false, 'the password goes in the Authorization header, not the URL');
  const token = issuer.stats.lastToken;

  // A configured registry_token the registry refuses: the 401 challenge brings a fresh one.
  const stale = backendFor(reg.host, 'team/app', { auth: AUTH, registry_token: 'expired.token.value' });
  t.after(() => stale.close());
  await stale.read(id, buf, 0);
  assert.deepEqual(buf, data.subarray(0, 10_000));
  assert.equal(stale.auth.stats.challenges, 1);
  assert.equal(stale.auth.stats.tokenFetches, 1);

  // Short-lived tokens are refreshed before they expire (10 s ahead): the backend's clock
  // moves 2 s on, into that margin, while the registry still accepts the old token.
  issuer.expiresIn = 11;
  let now = Date.now();
  const short = backendFor(reg.host, 'team/app', { auth: AUTH }, () => now);
  t.after(() => short.close());
  await short.read(id, buf, 0);
  await short.read(id, buf, 10_000);
  assert.equal(short.auth.stats.tokenRefreshes, 0, 'not refreshed outside the margin');
  now += 2_000;
  await short.read(id, buf, 20_000);
  assert.deepEqual(buf, data.subarray(20_000, 30_000));
  assert.equal(short.auth.stats.tokenRefreshes, 1);
  issuer.expiresIn = 300;

  // Anonymous requests get a token without access; the registry then refuses.
  const anon = backendFor(reg.host, 'team/app');
  t.after(() => anon.close());
  await assert.rejects(anon.read(id, buf, 0), (err) => codeOf(err) === 'ERR_STORAGE_AUTH');
  // Wrong credentials: the token endpoint refuses them.
  const wrong = backendFor(reg.host, 'team/app', { auth: encodeAuth(USER, 'nope-nope') });
  t.after(() => wrong.close());
  await assert.rejects(wrong.read(id, buf, 0), (err) => codeOf(err) === 'ERR_STORAGE_AUTH' && /credentials rejected/.test((err as Error).message));

  const text = JSON.stringify({ events, m: [b, stale, short, anon, wrong].map((x) => x.metrics.toJSON()) });
  for (const secret of [PASSWORD, AUTH, token, 'nope-nope']) assert.ok(!text.includes(secret), 'no secret in events or metrics');
});

test('token auth with anonymous pull, and credentials from IMAGE_PULL_AUTH through the storage factory', async (t) => {
  if (!need(t, haveRegistry(), 'docker-registry is not installed')) return;
  const issuer = await startTokenIssuer(t, { [USER]: PASSWORD });
  const reg = await startRegistry(t, { kind: 'token', issuer });
  const data = random(64_000);
  const id = await seedBlob(reg.host, 'pub/app', data, AUTH);
  issuer.anonymousPull = true;
  const anon = backendFor(reg.host, 'pub/app');
  t.after(() => anon.close());
  const buf = Buffer.alloc(64_000);
  await anon.read(id, buf, 0);
  assert.deepEqual(buf, data);
  issuer.anonymousPull = false;

  const blob = { index: 0, blobId: id, chunkSize: 0x100000, chunkCount: 1, compressedSize: data.length, uncompressedSize: 65536 };
  const chunk = {
    digest: createHash('sha256').update(data).digest(),
    blobIndex: 0,
    index: 0,
    compressed: false,
    compressedOffset: 0,
    compressedSize: data.length,
    uncompressedOffset: 0,
    uncompressedSize: data.length,
    fileOffset: 0,
  };
  const image = {
    blobs: [{ ...blob, compressor: 'none', digester: 'sha256', features: 0, readaheadOffset: 0, readaheadSize: 0, metaCiCompressor: 'none', metaCiOffset: 0, metaCiCompressedSize: 0, metaCiUncompressedSize: 0, blobTocSize: 0 }] as const,
    blobChunks: () => [chunk],
  };
  const noAuth = registryConfig(reg.host, 'pub/app', {}, { rafs: { validate: true } });
  const storage = await createStorage(noAuth, image as never, { env: { IMAGE_PULL_AUTH: AUTH } });
  t.after(() => storage.close());
  assert.deepEqual(await storage.reader.readChunk(chunk), data);
  const without = await createStorage(noAuth, image as never, { env: {} });
  t.after(() => without.close());
  await assert.rejects(without.reader.readChunk(chunk), (err) => codeOf(err) === 'ERR_STORAGE_AUTH');
});
