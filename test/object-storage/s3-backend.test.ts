// The s3 backend against a real S3-compatible server (s3rver, behind the tests' SigV4
// verifier): signed and anonymous range reads through the chunk reader and cache, the
// object name `object_prefix + blob id`, clear errors for refused keys, a missing bucket,
// a missing object and a dead server (never naming a secret), faults injected by the
// tests' TCP proxy (5xx, resets, stalls) retried with backoff up to `retry_limit` and
// bounded by `timeout`, and keys replaced at run time. Timings are printed, never asserted.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeConfig } from '../../src/config/parse.js';
import { redact } from '../../src/config/derive.js';
import { toErrno } from '../../src/errors.js';
import { createStorage, openBackend, type Storage } from '../../src/storage/factory.js';
import { S3Backend } from '../../src/storage/backend/s3.js';
import { timed } from '../helpers/timed.js';
import { clientConnectionsClosed, startFaultProxy, type FaultProxy } from '../helpers/registry-fault-proxy.js';
import { collectEvents } from '../helpers/registry-images.js';
import { freePort } from '../helpers/registry-server.js';
import { startS3, S3RVER_KEYS, type S3Server } from '../helpers/s3-server.js';
import { makeCerts } from '../helpers/tls-certs.js';
import { buildBlob, compressible, tmpDir, type TestBlob } from '../storage/helpers.js';

const EIO = 5;
const PREFIX = 'nydus/blobs/';
const b64 = (id: string, secret: string): string => Buffer.from(`${id}:${secret}`).toString('base64');

function s3Config(endpoint: string, s3: Record<string, unknown>, dir: string) {
  return normalizeConfig({
    version: 2,
    backend: { type: 's3', s3: { scheme: 'http', endpoint, bucket_name: 'nydus-blobs', object_prefix: PREFIX, region: 'us-east-1', timeout: 5, connect_timeout: 2, ...s3 } },
    cache: { type: 'blobcache', filecache: { work_dir: `${dir}/cache` } },
    rafs: { validate: true, batch_size: 0 },
  });
}

interface Rig {
  s3: S3Server;
  tb: TestBlob;
  dir: string;
  open(s3: Record<string, unknown>, endpoint?: string): Promise<Storage>;
}

/** s3rver holding one 8-chunk blob at `nydus/blobs/<blob id>`. */
async function rig(t: TestContext): Promise<Rig> {
  const s3 = await startS3(t);
  const dir = tmpDir(t, 's3-backend');
  const tb = buildBlob(dir, Array.from({ length: 8 }, (_, i) => compressible(60_000, i + 1)), { compressor: 'zstd', digester: 'sha256' });
  await s3.put(PREFIX + tb.blob.blobId, tb.bytes);
  let n = 0;
  return {
    s3,
    tb,
    dir,
    async open(cfg, endpoint = s3.endpoint) {
      const storage = await createStorage(s3Config(endpoint, cfg, `${dir}/${n++}`), { blobs: [tb.blob], blobChunks: () => tb.chunks });
      t.after(() => storage.close());
      return storage;
    },
  };
}

const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code;
const messageOf = (err: unknown): string => (err as Error).message;

test('signed range reads of object_prefix + blob id, verified by the independent SigV4 check, through reader and cache', async (t) => {
  const r = await rig(t);
  const storage = await r.open({ access_key_id: S3RVER_KEYS.id, access_key_secret: S3RVER_KEYS.secret });
  assert.equal(storage.backend.type, 's3');
  for (const i of [5, 0, 7]) assert.deepEqual(await storage.reader.readChunk(r.tb.chunks[i]), r.tb.data[i]);
  assert.equal(await storage.backend.blobSize(r.tb.blob.blobId), r.tb.bytes.length);
  const gets = r.s3.stats.requests.filter((q) => q.method === 'GET');
  assert.equal(gets.length, 3, 'one ranged GET per chunk');
  for (const g of gets) {
    assert.equal(g.path, `/nydus-blobs/${PREFIX}${r.tb.blob.blobId}`);
    assert.match(g.range ?? '', /^bytes=\d+-\d+$/);
  }
  assert.equal(r.s3.stats.verified, 4, 'every request carried a valid SigV4 signature');
  assert.equal(r.s3.stats.anonymous, 0);
  const m = storage.backend.metrics.toJSON();
  assert.equal(m.backend_type, 's3');
  assert.equal(m.read_count, 3);
  assert.equal(m.read_amount_total, [5, 0, 7].reduce((s, i) => s + r.tb.chunks[i].compressedSize, 0));
  // Cached now: no more requests.
  await storage.cache!.flush();
  assert.deepEqual(await storage.reader.readChunk(r.tb.chunks[5]), r.tb.data[5]);
  assert.equal(storage.backend.metrics.readCount, 3);
});

test('without keys the requests are anonymous and still read the object', async (t) => {
  const r = await rig(t);
  const storage = await r.open({});
  assert.deepEqual(await storage.reader.readChunk(r.tb.chunks[2]), r.tb.data[2]);
  assert.equal(r.s3.stats.anonymous, 1);
  assert.equal(r.s3.stats.verified, 0);
});

test('refused keys, a missing bucket and a missing object are clear, final errors that name bucket and object, never a secret', async (t) => {
  const r = await rig(t);
  const events = collectEvents(t);
  const secret = 'the-wrong-secret-value';
  // A known key id with the wrong secret: the signature check refuses it (SignatureDoesNotMatch).
  const wrongSecret = await r.open({ access_key_id: S3RVER_KEYS.id, access_key_secret: secret, retry_limit: 3 });
  const a = await timed(wrongSecret.reader.readChunk(r.tb.chunks[0]));
  assert.equal(codeOf(a.err), 'ERR_STORAGE_AUTH');
  assert.equal(toErrno(a.err), EIO);
  assert.match(messageOf(a.err), new RegExp(`object ${PREFIX}${r.tb.blob.blobId} in bucket nydus-blobs: access denied: HTTP status 403, SignatureDoesNotMatch`));
  assert.equal(r.s3.stats.refused, 1, 'a refusal is final: not retried');
  // An unknown key id: s3rver itself refuses it.
  const unknown = await r.open({ access_key_id: 'NOSUCHKEY', access_key_secret: secret });
  const b = await timed(unknown.reader.readChunk(r.tb.chunks[0]));
  assert.equal(codeOf(b.err), 'ERR_STORAGE_AUTH');
  assert.match(messageOf(b.err), /HTTP status 403, InvalidAccessKeyId \(check access_key_id, access_key_secret and region\)/);
  // A bucket that does not exist.
  const noBucket = await r.open({ bucket_name: 'no-such-bucket', access_key_id: S3RVER_KEYS.id, access_key_secret: S3RVER_KEYS.secret });
  const c = await timed(noBucket.reader.readChunk(r.tb.chunks[0]));
  assert.equal(codeOf(c.err), 'ERR_STORAGE_BLOB_NOT_FOUND');
  assert.match(messageOf(c.err), /bucket no-such-bucket does not exist/);
  const size = await timed(noBucket.backend.blobSize(r.tb.blob.blobId));
  assert.equal(codeOf(size.err), 'ERR_STORAGE_BLOB_NOT_FOUND');
  // An object that does not exist (wrong prefix).
  const noObject = await r.open({ object_prefix: 'elsewhere/', access_key_id: S3RVER_KEYS.id, access_key_secret: S3RVER_KEYS.secret });
  const d = await timed(noObject.reader.readChunk(r.tb.chunks[0]));
  assert.equal(codeOf(d.err), 'ERR_STORAGE_BLOB_NOT_FOUND');
  assert.match(messageOf(d.err), new RegExp(`object elsewhere/${r.tb.blob.blobId} in bucket nydus-blobs: no such object \\(HTTP status 404, NoSuchKey\\)`));
  t.diagnostic(`wrong secret: ${a.ms} ms; unknown key: ${b.ms} ms; no bucket: ${c.ms} ms; no object: ${d.ms} ms`);
  // No secret anywhere: errors, events, metrics, the config as the API shows it.
  const shown = [a, b, c, d].map((x) => messageOf(x.err)).join('\n') + JSON.stringify(events) + JSON.stringify(wrongSecret.backend.metrics.toJSON());
  for (const s of [secret, S3RVER_KEYS.secret + ':', 'NOSUCHKEY']) assert.ok(!shown.includes(s), `${s} leaked`);
  const apiView = JSON.stringify(redact(s3Config(r.s3.endpoint, { access_key_id: 'AKIDVISIBLE', access_key_secret: secret }, r.dir)));
  assert.ok(!apiView.includes(secret) && !apiView.includes('AKIDVISIBLE'));
  assert.match(apiView, /"access_key_secret":"<redacted>"/);
});

test('a dead server: connection refused is retried with backoff up to retry_limit, then EIO within a bounded time', async (t) => {
  const r = await rig(t);
  const events = collectEvents(t);
  const port = await freePort();
  const storage = await r.open({ retry_limit: 2, connect_timeout: 1 }, `127.0.0.1:${port}`);
  const failed = await timed(storage.reader.readChunk(r.tb.chunks[1]));
  assert.equal(toErrno(failed.err), EIO);
  assert.match(messageOf(failed.err), /ECONNREFUSED/);
  assert.equal(events.filter((e) => e.level === 'warn' && e.backend === 's3').length, 2, 'two retries');
  assert.match(events.find((e) => e.level === 'error')!.message, /gave up after 3 attempts/);
  t.diagnostic(`dead server: EIO after ${failed.ms} ms and 3 attempts`);
});

/** The rig with the fault proxy between the backend and the server. */
async function faulty(t: TestContext, s3cfg: Record<string, unknown>): Promise<{ r: Rig; proxy: FaultProxy; storage: Storage; gets: () => number }> {
  const r = await rig(t);
  const frontPort = Number(r.s3.endpoint.split(':')[1]);
  let gets = 0;
  const proxy = await startFaultProxy(t, frontPort, (req) => {
    if (req.method === 'GET') gets++;
    return { kind: 'pass' };
  });
  const storage = await r.open({ access_key_id: S3RVER_KEYS.id, access_key_secret: S3RVER_KEYS.secret, ...s3cfg }, `${proxy.host}`);
  return { r, proxy, storage, gets: () => gets };
}

/** Faults GETs with `fault` for the first `times` of them, passes the rest; returns the count of GETs since. */
async function faultGets(
  proxy: FaultProxy,
  storage: Storage,
  fault: Parameters<FaultProxy['setPlan']>[0] extends (...a: never[]) => infer F ? F : never,
  times: number,
): Promise<() => number> {
  let n = 0;
  proxy.setPlan((req) => {
    if (req.method !== 'GET') return { kind: 'pass' };
    n++;
    return n <= times ? fault : { kind: 'pass' };
  });
  await clientConnectionsClosed((storage.backend as S3Backend).connection);
  return () => n;
}

test('5xx answers and resets are retried with backoff and then served; past retry_limit EIO; the same stack recovers', async (t) => {
  const { r, proxy, storage } = await faulty(t, { retry_limit: 2 });
  let seen = await faultGets(proxy, storage, { kind: 'status', status: 503 }, 2);
  const ok = await timed(storage.reader.readChunk(r.tb.chunks[0]));
  assert.deepEqual(ok.value, r.tb.data[0]);
  assert.equal(seen(), 3);
  seen = await faultGets(proxy, storage, { kind: 'reset' }, 1);
  assert.deepEqual(await storage.reader.readChunk(r.tb.chunks[1]), r.tb.data[1]);
  assert.equal(seen(), 2);
  seen = await faultGets(proxy, storage, { kind: 'status', status: 500 }, Infinity);
  const failed = await timed(storage.reader.readChunk(r.tb.chunks[2]));
  assert.equal(toErrno(failed.err), EIO);
  assert.equal(seen(), 3, 'retry_limit 2: three attempts');
  await faultGets(proxy, storage, { kind: 'pass' }, 0);
  assert.deepEqual(await storage.reader.readChunk(r.tb.chunks[2]), r.tb.data[2]);
  t.diagnostic(`503 x2 then ok: ${ok.ms} ms; 500 always: EIO after ${failed.ms} ms`);
});

test('a server that stalls (before answering or mid-body) each attempt ends by the timeout; the read ends, no hang', async (t) => {
  const { r, proxy, storage } = await faulty(t, { retry_limit: 1, timeout: 1 });
  const events = collectEvents(t);
  for (const fault of [{ kind: 'stall' as const }, { kind: 'stall-body' as const, after: 1000 }]) {
    const seen = await faultGets(proxy, storage, fault, Infinity);
    const from = events.length;
    const failed = await timed(storage.reader.readChunk(r.tb.chunks[3]));
    assert.equal(toErrno(failed.err), EIO, fault.kind);
    assert.equal(seen(), 2);
    // Both attempts ended by the timeout (what they took is printed, not asserted).
    const ended = events.slice(from).filter((e) => e.level !== 'info').map((e) => e.message);
    assert.equal(ended.length, 2, ended.join('\n'));
    for (const m of ended) assert.match(m, /timeout/i, fault.kind);
    t.diagnostic(`${fault.kind}: EIO after ${failed.ms} ms (timeout 1 s, 2 attempts)`);
  }
  await faultGets(proxy, storage, { kind: 'pass' }, 0);
  assert.deepEqual(await storage.reader.readChunk(r.tb.chunks[3]), r.tb.data[3]);
});

test('rotated keys: the old key is refused, setAuth with the new one serves again without a new backend', async (t) => {
  const r = await rig(t);
  r.s3.addKey('ROTATE1', 'first-secret');
  const storage = await r.open({ access_key_id: 'ROTATE1', access_key_secret: 'first-secret' });
  assert.deepEqual(await storage.reader.readChunk(r.tb.chunks[0]), r.tb.data[0]);
  r.s3.revokeKey('ROTATE1');
  r.s3.addKey('ROTATE2', 'second-secret');
  const refused = await timed(storage.reader.readChunk(r.tb.chunks[1]));
  assert.equal(codeOf(refused.err), 'ERR_STORAGE_AUTH');
  const backend = storage.backend as S3Backend;
  assert.throws(() => backend.setAuth('not base64 of a pair'), /access_key_id:access_key_secret/);
  backend.setAuth(b64('ROTATE2', 'second-secret'));
  assert.deepEqual(await storage.reader.readChunk(r.tb.chunks[1]), r.tb.data[1]);
  assert.equal(r.s3.stats.verified, 2);
  backend.setAuth('');
  assert.equal(backend.authenticated, false, 'an empty value means anonymous');
});

test('ca_cert_files: an https endpoint with a private CA is read when the config names the CA, refused when not', async (t) => {
  const dir = tmpDir(t, 's3-tls');
  const certs = makeCerts(dir);
  const s3 = await startS3(t, 'tls-bucket', { tls: certs });
  const data = compressible(200_000, 42);
  await s3.put('blob-tls', data);
  const config = (extra: Record<string, unknown>) =>
    normalizeConfig({
      version: 2,
      backend: { type: 's3', s3: { scheme: 'https', endpoint: s3.endpoint, bucket_name: 'tls-bucket', access_key_id: S3RVER_KEYS.id, access_key_secret: S3RVER_KEYS.secret, timeout: 5, ...extra } },
    }).backend;
  const trusted = await openBackend(config({ ca_cert_files: [certs.ca] }), 'tls');
  t.after(() => trusted.close());
  const buf = Buffer.alloc(50_000);
  await trusted.read('blob-tls', buf, 100_000);
  assert.deepEqual(buf, data.subarray(100_000, 150_000));
  assert.equal(s3.stats.verified, 1, 'signed over TLS and verified');
  const untrusted = await openBackend(config({}), 'tls-untrusted');
  t.after(() => untrusted.close());
  await assert.rejects(untrusted.read('blob-tls', Buffer.alloc(10), 0), /certificate/i);
});
