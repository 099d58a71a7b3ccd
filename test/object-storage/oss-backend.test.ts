// The oss backend's read path against the real S3-compatible server: OSS addresses a
// bucket as a virtual host (`<bucket>.<endpoint>`), which loopback cannot resolve, so the
// backend reaches it through its `proxy` setting. The proxy here is the test's OSS front:
// it checks each request's `OSS <id>:<signature>` Authorization with its own rendering of
// Alibaba's scheme (independent of src/storage/backend/oss.ts), answers a bad one with
// OSS's 403 SignatureDoesNotMatch, and serves good ones from s3rver's copy of the bucket.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { normalizeConfig } from '../../src/config/parse.js';
import { createStorage } from '../../src/storage/factory.js';
import type { OssBackend } from '../../src/storage/backend/oss.js';
import { startS3 } from '../helpers/s3-server.js';
import { buildBlob, compressible, tmpDir } from '../storage/helpers.js';

const ENDPOINT = 'oss-test.example';
const KEYS = new Map([['OSSKEY1', 'oss-secret-1'], ['OSSKEY2', 'oss-secret-2']]);

/** Alibaba's string to sign, written out for a request as received (GET/HEAD, no body). */
function expectedSignature(secret: string, req: IncomingMessage, bucket: string, key: string): string {
  const h = (n: string): string => String(req.headers[n] ?? '');
  const oss = Object.keys(req.headers).filter((n) => n.startsWith('x-oss-')).sort().map((n) => `${n}:${h(n)}\n`).join('');
  const text = [req.method, h('content-md5'), h('content-type'), h('date')].join('\n') + '\n' + oss + `/${bucket}/${decodeURIComponent(key)}`;
  return createHmac('sha1', secret).update(text).digest('base64');
}

async function startOssFront(t: TestContext, s3Port: number, stats: { ok: number; refused: number; anonymous: number; hosts: string[] }): Promise<string> {
  const front = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    stats.hosts.push(url.host);
    const bucket = url.hostname.slice(0, -(ENDPOINT.length + 1));
    const key = url.pathname.slice(1);
    const auth = /^OSS ([^:]+):(.+)$/.exec(req.headers.authorization ?? '');
    if (req.headers.authorization === undefined) stats.anonymous++;
    else if (auth === null || !KEYS.has(auth[1]) || expectedSignature(KEYS.get(auth[1])!, req, bucket, key) !== auth[2]) {
      stats.refused++;
      const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code></Error>';
      res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
      return;
    } else stats.ok++;
    const headers = { ...req.headers };
    delete headers.authorization;
    const up = request({ host: '127.0.0.1', port: s3Port, method: req.method, path: `/${bucket}/${key}`, headers: { ...headers, host: `127.0.0.1:${s3Port}` } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    up.end();
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  t.after(() => {
    front.closeAllConnections();
    front.close();
  });
  return `http://127.0.0.1:${(front.address() as { port: number }).port}`;
}

test('oss: virtual-host URLs, signed range reads the independent check accepts, a wrong secret refused, keys replaced, anonymous reads', async (t) => {
  const s3 = await startS3(t);
  const dir = tmpDir(t, 'oss-backend');
  const tb = buildBlob(dir, Array.from({ length: 4 }, (_, i) => compressible(50_000, i + 11)), { compressor: 'zstd', digester: 'sha256' });
  await s3.put(`oss/${tb.blob.blobId}`, tb.bytes);
  const stats = { ok: 0, refused: 0, anonymous: 0, hosts: [] as string[] };
  const proxy = await startOssFront(t, s3.port, stats);
  let n = 0;
  const open = async (keys: Record<string, string>) => {
    const config = normalizeConfig({
      version: 2,
      backend: { type: 'oss', oss: { scheme: 'http', endpoint: ENDPOINT, bucket_name: s3.bucket, object_prefix: 'oss/', proxy: { url: proxy, fallback: false }, ...keys } },
      cache: { type: 'blobcache', filecache: { work_dir: `${dir}/cache-${n++}` } },
      rafs: { validate: true, batch_size: 0 },
    });
    const storage = await createStorage(config, { blobs: [tb.blob], blobChunks: () => tb.chunks });
    t.after(() => storage.close());
    return storage;
  };

  const signed = await open({ access_key_id: 'OSSKEY1', access_key_secret: 'oss-secret-1' });
  assert.equal(signed.backend.type, 'oss');
  assert.deepEqual(await signed.reader.readChunk(tb.chunks[2]), tb.data[2]);
  assert.equal(await signed.backend.blobSize(tb.blob.blobId), tb.bytes.length);
  assert.equal(stats.ok, 2);
  assert.deepEqual([...new Set(stats.hosts)], [`${s3.bucket}.${ENDPOINT}`]);

  const wrong = await open({ access_key_id: 'OSSKEY1', access_key_secret: 'not-it' });
  await assert.rejects(wrong.reader.readChunk(tb.chunks[0]), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_STORAGE_AUTH');
    assert.match(err.message, new RegExp(`object oss/${tb.blob.blobId} in bucket ${s3.bucket}: access denied: HTTP status 403, SignatureDoesNotMatch`));
    assert.ok(!err.message.includes('not-it'));
    return true;
  });
  (wrong.backend as OssBackend).setAuth(Buffer.from('OSSKEY2:oss-secret-2').toString('base64'));
  assert.deepEqual(await wrong.reader.readChunk(tb.chunks[0]), tb.data[0]);

  const anonymous = await open({});
  assert.deepEqual(await anonymous.reader.readChunk(tb.chunks[3]), tb.data[3]);
  assert.equal(stats.anonymous, 1);
  assert.equal(stats.refused, 1);
});
