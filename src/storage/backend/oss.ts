// The `oss` backend (upstream storage/src/backend/oss.rs): blobs are objects of an
// Alibaba Cloud OSS bucket at `<scheme>://<bucket_name>.<endpoint>/<object_prefix><blob id>`,
// signed with OSS's header scheme (Authorization `OSS <id>:<signature>`, the signature
// an HMAC-SHA1 over the verb, Content-MD5, Content-Type, Date, the x-oss-* headers and
// the canonical resource `/<bucket>/<key>`). No maintained signer for it exists apart
// from Alibaba's whole SDK, so the canonical string is built here and the MAC comes from
// node:crypto (decision 0012); test/object-storage checks it against Alibaba's published examples.
import { createHmac } from 'node:crypto';
import type { OssConfig } from '../../config/types.js';
import { ObjectStorageBackend, encodeKey, type AccessKeys, type ObjectRequest } from './object-storage.js';

/** What an OSS signature covers. */
export interface OssStringToSign {
  method: string;
  contentMd5?: string;
  contentType?: string;
  /** RFC 1123 date, as sent in the Date header. */
  date: string;
  /** Request headers (any case); the x-oss-* ones are signed. */
  headers: Record<string, string>;
  /** `/<bucket>/<object key>` (plus signed sub-resources), unescaped. */
  resource: string;
}

/** The string OSS signs for a request. */
export function ossStringToSign(s: OssStringToSign): string {
  const oss = Object.entries(s.headers)
    .map(([k, v]) => [k.toLowerCase(), v.trim()] as const)
    .filter(([k]) => k.startsWith('x-oss-'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}:${v}\n`)
    .join('');
  return `${s.method}\n${s.contentMd5 ?? ''}\n${s.contentType ?? ''}\n${s.date}\n${oss}${s.resource}`;
}

/** The Authorization value of a request: `OSS <access key id>:<base64 HMAC-SHA1>`. */
export function ossAuthorization(keys: AccessKeys, s: OssStringToSign): string {
  const mac = createHmac('sha1', keys.secret).update(ossStringToSign(s), 'utf8').digest('base64');
  return `OSS ${keys.id}:${mac}`;
}

/** Reads blobs from an OSS bucket. */
export class OssBackend extends ObjectStorageBackend {
  readonly type = 'oss';
  readonly #origin: string;

  constructor(config: OssConfig, options: { id?: string; ca?: string[] } = {}) {
    super('oss', config, options);
    this.#origin = `${config.scheme}://${config.bucket_name}.${config.endpoint}`;
  }

  objectUrl(key: string): URL {
    return new URL(`${this.#origin}/${encodeKey(key)}`);
  }

  protected async sign(req: ObjectRequest, keys: AccessKeys): Promise<Record<string, string>> {
    const date = new Date().toUTCString();
    const key = decodeURIComponent(req.url.pathname.slice(1));
    const authorization = ossAuthorization(keys, {
      method: req.method,
      contentType: req.headers['content-type'],
      date,
      headers: req.headers,
      resource: `/${this.config.bucket_name}/${key}`,
    });
    return { ...req.headers, date, authorization };
  }
}
