// The `s3` backend (upstream storage/src/backend/s3.rs): blobs are objects of an S3 (or
// S3-compatible) bucket, addressed path style as upstream does,
// `<scheme>://<endpoint>/<bucket_name>/<object_prefix><blob id>`, and signed with AWS
// Signature V4 by AWS's own signer (@smithy/signature-v4; decision 0012). GET and HEAD
// carry the hash of the empty payload; uploads are signed UNSIGNED-PAYLOAD so a blob
// streams from disk without being read twice.
import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';
import type { S3Config } from '../../config/types.js';
import { ObjectStorageBackend, encodeKey, type AccessKeys, type ObjectRequest } from './object-storage.js';

/** AWS's endpoint when the config gives none (upstream's default). */
export const S3_DEFAULT_ENDPOINT = 's3.amazonaws.com';
/** SHA-256 of the empty payload, the `x-amz-content-sha256` of GET and HEAD. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const sha256 = Hash.bind(null, 'sha256');

/** A SigV4 signer for S3 in `region` with `keys`. */
export function s3Signer(keys: AccessKeys, region: string): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: keys.id, secretAccessKey: keys.secret },
    region,
    service: 's3',
    sha256,
    // S3 signs the path as sent (object keys are escaped once, not twice).
    uriEscapePath: false,
    applyChecksum: false,
  });
}

/** Headers of `req` signed with `signer` at `date` (now by default). */
export async function signS3(signer: SignatureV4, req: ObjectRequest, date?: Date): Promise<Record<string, string>> {
  const headers = req.headers['x-amz-content-sha256'] === undefined ? { ...req.headers, 'x-amz-content-sha256': EMPTY_SHA256 } : req.headers;
  const query: Record<string, string> = {};
  for (const [k, v] of req.url.searchParams) query[k] = v;
  const signed = await signer.sign(
    {
      method: req.method,
      protocol: req.url.protocol,
      hostname: req.url.hostname,
      port: req.url.port === '' ? undefined : Number(req.url.port),
      path: req.url.pathname,
      query,
      headers,
    },
    { signingDate: date },
  );
  return signed.headers;
}

/** Reads blobs from an S3 bucket. */
export class S3Backend extends ObjectStorageBackend {
  readonly type = 's3';
  readonly #origin: string;
  readonly #region: string;
  #signer: SignatureV4 | undefined;

  constructor(config: S3Config, options: { id?: string; ca?: string[] } = {}) {
    super('s3', config, options);
    this.#origin = `${config.scheme}://${config.endpoint || S3_DEFAULT_ENDPOINT}`;
    this.#region = config.region;
  }

  objectUrl(key: string): URL {
    return new URL(`${this.#origin}/${encodeKey(this.config.bucket_name)}/${encodeKey(key)}`);
  }

  protected sign(req: ObjectRequest, keys: AccessKeys): Promise<Record<string, string>> {
    this.#signer ??= s3Signer(keys, this.#region);
    return signS3(this.#signer, req);
  }

  protected override uploadHeaders(): Record<string, string> {
    return { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
  }

  protected override keysChanged(): void {
    this.#signer = undefined;
  }
}
