// A real S3-compatible server for the object-storage tests: s3rver (from npm) run by the
// test on a loopback port with its own directory, behind a front that checks every
// signed request with the tests' own SigV4 implementation (sigv4-check.ts), because
// s3rver checks only that the access key exists. The front answers a bad signature
// with S3's 403 SignatureDoesNotMatch and passes everything else, anonymous requests
// included, to s3rver unchanged. Access keys live in s3rver's key table and the front's
// secrets together, so adding or revoking one acts on both.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import S3rver from 's3rver';
import AWSAccount from 's3rver/lib/models/account.js';
import type { Owner } from './registry-server.js';
import { verifySigV4 } from './sigv4-check.js';

/** s3rver's built-in key pair. */
export const S3RVER_KEYS = { id: 'S3RVER', secret: 'S3RVER' };

export interface S3Server {
  /** `127.0.0.1:<port>` of the verifying front: the `endpoint` of an s3 config. */
  endpoint: string;
  /** Port of s3rver itself (for a fault proxy that should bypass nothing). */
  port: number;
  bucket: string;
  /** Requests seen by the front: signed and verified, refused, anonymous. */
  stats: { verified: number; refused: number; anonymous: number; requests: { method: string; path: string; range?: string }[] };
  addKey(id: string, secret: string): void;
  revokeKey(id: string): void;
  /** Stores an object through s3rver directly (test setup). */
  put(key: string, data: Buffer): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

/**
 * Starts s3rver with bucket `bucket` and its verifying front; both stop when `t` ends.
 * With `requireSignature` the front refuses unsigned requests (403 AccessDenied), as a
 * private bucket does; s3rver itself serves them. With `tls` (PEM files) the front speaks
 * https.
 */
export async function startS3(t: Owner, bucket = 'nydus-blobs', opts: { requireSignature?: boolean; tls?: { cert: string; key: string } } = {}): Promise<S3Server> {
  const dir = mkdtempSync('/tmp/s3rver-');
  const s3 = new S3rver({ address: '127.0.0.1', port: 0, directory: dir, silent: true, configureBuckets: [{ name: bucket }] });
  const { port } = await s3.run();
  const secrets = new Map<string, string>([[S3RVER_KEYS.id, S3RVER_KEYS.secret]]);
  const stats: S3Server['stats'] = { verified: 0, refused: 0, anonymous: 0, requests: [] };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '/';
    stats.requests.push({ method: req.method ?? '', path, range: req.headers.range });
    if (req.headers.authorization === undefined) {
      stats.anonymous++;
      if (opts.requireSignature === true) {
        stats.refused++;
        req.resume();
        const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>';
        res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(req.method === 'HEAD' ? undefined : body);
        return;
      }
    } else {
      const verdict = verifySigV4({ method: req.method ?? '', path, headers: req.headers }, (id) => secrets.get(id));
      // An unknown key is s3rver's to refuse (InvalidAccessKeyId); a bad signature is ours.
      if (!verdict.ok && verdict.reason !== 'unknown access key') {
        stats.refused++;
        req.resume();
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>${verdict.reason}</Message></Error>`;
        res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      if (verdict.ok) stats.verified++;
    }
    const upstream = request({ host: '127.0.0.1', port, method: req.method, path, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  };
  const front: Server =
    opts.tls === undefined ? createServer(handler) : createTlsServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, handler);
  front.keepAliveTimeout = 30_000;
  const frontPort = await listen(front);
  t.after(async () => {
    front.closeAllConnections();
    await new Promise((r) => front.close(r));
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    endpoint: `127.0.0.1:${frontPort}`,
    port,
    bucket,
    stats,
    addKey(id, secret) {
      AWSAccount.DUMMY_ACCOUNT.createKeyPair(id, secret);
      secrets.set(id, secret);
    },
    revokeKey(id) {
      AWSAccount.DUMMY_ACCOUNT.revokeAccessKey(id);
      secrets.delete(id);
    },
    async put(key, data) {
      const res = await fetch(`http://127.0.0.1:${port}/${bucket}/${key}`, { method: 'PUT', body: data });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`s3rver PUT ${key}: HTTP ${res.status}`);
    },
  };
}
