// Upstream's v2 endpoints: daemon info without the mount table, log level, and the
// blob cache entries of fscache-style daemons (docs/contract.md §2.3, §2.6).
// GET /api/v2/blobs is `todo!()` upstream (it panics the API thread); here it lists the
// blob views of an image served with the erofs fs driver, and answers 501 on a fusedev
// daemon (docs/api.md).
import type { BlobCacheEntry, DaemonControl } from '../../daemon/control.js';
import { V2 } from '../paths.js';
import { parseBlobCacheEntry } from '../parse-body.js';
import { badRequest, queryParam } from '../request.js';
import { sendJson, sendNoContent } from './endpoint.js';
import type { Endpoint } from './endpoint.js';
import { setLogLevelHandler } from './v1.js';

const BLOB_TYPES: ReadonlySet<string> = new Set(['bootstrap', 'datablob']);

/** Upstream's BlobCacheEntry check before the daemon sees it: a known type and a config. */
function checkEntry(entry: BlobCacheEntry): void {
  if (!BLOB_TYPES.has(entry.type)) {
    throw badRequest(`failed to add blob cache entry ${entry.id}: type ${JSON.stringify(entry.type)} is not bootstrap or datablob`);
  }
  if (entry.config === undefined && entry.config_v2 === undefined) {
    throw badRequest(`failed to add blob cache entry ${entry.id}: neither config nor config_v2 is given`);
  }
}

/** The v2 endpoints served from `control`. */
export function v2Endpoints(control: DaemonControl): Endpoint[] {
  return [
    {
      path: V2.daemon,
      methods: {
        GET: { wrapper: 'DaemonInfo', body: 'none', run: (ctx) => sendJson(ctx, { ...control.info(), backend_collection: null }) },
        PUT: setLogLevelHandler(control),
      },
    },
    {
      path: V2.blobs,
      methods: {
        GET: {
          wrapper: 'GetBlobObjects',
          body: 'none',
          async run(ctx) {
            const domain_id = queryParam(ctx, 'domain_id');
            if (domain_id === undefined) throw badRequest('failed to list blob objects: the domain_id query parameter is required');
            sendJson(ctx, await control.blobObjects({ domain_id, blob_id: queryParam(ctx, 'blob_id') }));
          },
        },
        PUT: {
          wrapper: 'CreateBlobObject',
          body: 'json',
          async run(ctx) {
            const entry = parseBlobCacheEntry(ctx.state.body!);
            checkEntry(entry);
            await control.addBlob(entry);
            sendNoContent(ctx);
          },
        },
        DELETE: {
          wrapper: 'DeleteBlobObject',
          body: 'none',
          async run(ctx) {
            const domain_id = queryParam(ctx, 'domain_id');
            const blob_id = queryParam(ctx, 'blob_id');
            if (domain_id === undefined && blob_id === undefined) {
              throw badRequest('failed to delete blob cache entries: give domain_id, blob_id or both');
            }
            // A blob id alone culls the cache file: upstream's DeleteBlobFile request.
            if (domain_id === undefined) ctx.state.wrapper = 'DeleteBlobFile';
            await control.deleteBlobs({ domain_id, blob_id });
            sendNoContent(ctx);
          },
        },
      },
    },
  ];
}
