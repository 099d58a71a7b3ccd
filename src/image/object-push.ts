// `nydus-image push --target s3://BUCKET[/PREFIX]`: uploads every data blob a bootstrap
// references to an S3 bucket as `<prefix><blob id>`, the object name the s3 backend
// reads, so nydusd mounts the bootstrap with an s3 config. Endpoint, scheme, region and
// keys come from the backend config (`--backend-config`, the s3 backend's keys); the
// target's bucket and prefix replace its `bucket_name` and `object_prefix`. Objects
// already present with the blob's size are not uploaded again. The bootstrap stays a
// local file: nydusd takes it as `--bootstrap`.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { backendOnlyConfig } from '../config/parse.js';
import { ConfigError, StorageError } from '../errors.js';
import { openBootstrap } from '../rafs/index.js';
import { S3Backend } from '../storage/backend/s3.js';

const TARGET = /^s3:\/\/([^/]+)(?:\/(.*))?$/;

export interface ObjectPushOptions {
  bootstrap: string;
  blobDir: string;
  /** `s3://bucket[/prefix]`. */
  target: string;
  /** The s3 backend's keys as JSON (endpoint, scheme, region, keys, timeouts). */
  backendConfig: string;
  retryLimit: number;
  onProgress?: (line: string) => void;
}

export interface ObjectPushResult {
  bucket: string;
  prefix: string;
  uploaded: number;
  skipped: number;
  uploadedBytes: number;
}

/** Whether `target` names an object store rather than a registry. */
export function isObjectTarget(target: string): boolean {
  return /^[a-z0-9]+:\/\//.test(target);
}

/** Uploads the blobs of `opts.bootstrap` to the bucket of `opts.target`. */
export async function pushBlobsToS3(opts: ObjectPushOptions): Promise<ObjectPushResult> {
  const m = TARGET.exec(opts.target);
  if (m === null) throw new ConfigError('ERR_CLI_USAGE', `invalid --target ${JSON.stringify(opts.target)}: expected s3://BUCKET[/PREFIX] or a registry reference`);
  const [, bucket, prefix = ''] = m;
  let body: Record<string, unknown>;
  try {
    body = opts.backendConfig.trim() === '' ? {} : (JSON.parse(opts.backendConfig) as Record<string, unknown>);
  } catch (err) {
    throw new ConfigError('ERR_CLI_USAGE', `invalid --backend-config JSON: ${(err as Error).message}`, { cause: err });
  }
  const config = backendOnlyConfig('s3', JSON.stringify({ retry_limit: opts.retryLimit, ...body, bucket_name: bucket, object_prefix: prefix }));
  if (config.backend?.type !== 's3') throw new ConfigError('ERR_CONFIG_INVALID', 'failed to push: not an s3 backend');
  const sb = await openBootstrap(opts.bootstrap);
  const backend = new S3Backend(config.backend.s3);
  const result: ObjectPushResult = { bucket, prefix, uploaded: 0, skipped: 0, uploadedBytes: 0 };
  try {
    for (const blob of sb.blobs) {
      const path = join(opts.blobDir, blob.blobId);
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch {
        throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to push: blob ${blob.blobId} is not in ${opts.blobDir}`);
      }
      const present = await backend.blobSize(blob.blobId).catch((err: unknown) => {
        if (err instanceof StorageError && err.code === 'ERR_STORAGE_BLOB_NOT_FOUND' && !/bucket .* does not exist/.test(err.message)) return -1;
        throw err;
      });
      const key = backend.objectKey(blob.blobId);
      if (present === size) {
        result.skipped++;
        opts.onProgress?.(`object ${key} already present (${size} bytes)`);
        continue;
      }
      await backend.upload(blob.blobId, () => createReadStream(path), size);
      result.uploaded++;
      result.uploadedBytes += size;
      opts.onProgress?.(`uploaded ${key} (${size} bytes)`);
    }
  } finally {
    await backend.close();
  }
  return result;
}
