// A registry front that redirects blob requests to blob storage, as registries backed by
// S3 or OSS do (docker-registry's filesystem driver never redirects, so this cannot be
// caused for real here). `/v2/<repo>/blobs/sha256:<hex>` requires Basic auth and answers
// 307 to `/store/<hex>?sig=<generation>`; the store serves byte ranges of the blob files
// in a directory and answers 403 once expire() has moved the generation on (a signed URL
// that expired). It records whether the store ever saw an Authorization header.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Owner } from './registry-server.js';

export interface BlobStore {
  host: string;
  port: number;
  stats: { registryHits: number; storeHits: number; forbidden: number; storeSawAuthorization: boolean };
  /** Makes every URL handed out so far invalid. */
  expire(): void;
}

/** Starts the front on loopback serving blobs of `dir`; `credentials` is the expected base64 auth. */
export async function startBlobStore(t: Owner, dir: string, credentials: string): Promise<BlobStore> {
  let generation = 1;
  const stats = { registryHits: 0, storeHits: 0, forbidden: 0, storeSawAuthorization: false };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const blob = /^\/v2\/.+\/blobs\/sha256:([0-9a-f]{64})$/.exec(url.pathname);
    if (blob !== null) {
      stats.registryHits++;
      if (req.headers.authorization !== `Basic ${credentials}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="blobstore"', 'content-length': 0 }).end();
        return;
      }
      res.writeHead(307, { location: `/store/${blob[1]}?sig=${generation}`, 'content-length': 0 }).end();
      return;
    }
    const store = /^\/store\/([0-9a-f]{64})$/.exec(url.pathname);
    if (store === null || !existsSync(join(dir, store[1]))) {
      res.writeHead(404, { 'content-length': 0 }).end();
      return;
    }
    stats.storeHits++;
    if (req.headers.authorization !== undefined) stats.storeSawAuthorization = true;
    if (url.searchParams.get('sig') !== String(generation)) {
      stats.forbidden++;
      res.writeHead(403, { 'content-length': 0 }).end();
      return;
    }
    const path = join(dir, store[1]);
    const size = statSync(path).size;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m === null) {
      res.writeHead(200, { 'content-length': size });
      if (req.method === 'HEAD') res.end();
      else createReadStream(path).pipe(res);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), size - 1);
    res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}` });
    createReadStream(path, { start, end }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    host: `127.0.0.1:${port}`,
    port,
    stats,
    expire() {
      generation++;
    },
  };
}
