// A second, independent AWS Signature V4 implementation for the tests, written from AWS's
// specification with node:crypto only, so a request the backend signed with
// @smithy/signature-v4 is checked by code that shares nothing with it. It verifies the
// Authorization header of a request as a server receives it.
import { createHash, createHmac } from 'node:crypto';

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** A request as received: method, raw path with query, lower-case headers. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export type SigV4Verdict =
  | { ok: true; accessKeyId: string }
  | { ok: false; accessKeyId?: string; reason: string };

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 encoding as SigV4 wants it for query names and values. */
function encode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .map((p) => {
      const i = p.indexOf('=');
      const [k, v] = i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
      return [encode(decodeURIComponent(k)), encode(decodeURIComponent(v))] as const;
    })
    .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** The signature of a canonical request for `secret` (exported for the published-vector test). */
export function sigV4Signature(secret: string, date: string, region: string, service: string, amzDate: string, canonicalRequest: string): string {
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')}`;
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
}

/** Checks `req`'s SigV4 Authorization against `secretOf(accessKeyId)`; `now` bounds the clock skew (15 min, as S3). */
export function verifySigV4(req: ReceivedRequest, secretOf: (id: string) => string | undefined, now = Date.now()): SigV4Verdict {
  const header = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const m = AUTH.exec(header('authorization') ?? '');
  if (m === null) return { ok: false, reason: 'malformed Authorization' };
  const [, id, date, region, service, signedHeaders, signature] = m;
  const secret = secretOf(id);
  if (secret === undefined) return { ok: false, accessKeyId: id, reason: 'unknown access key' };
  const amzDate = header('x-amz-date') ?? '';
  const t = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (t === null || amzDate.slice(0, 8) !== date) return { ok: false, accessKeyId: id, reason: 'bad x-amz-date' };
  const when = Date.UTC(+t[1], +t[2] - 1, +t[3], +t[4], +t[5], +t[6]);
  if (Math.abs(now - when) > 15 * 60_000) return { ok: false, accessKeyId: id, reason: 'request time too skewed' };
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return { ok: false, accessKeyId: id, reason: 'host is not signed' };
  const payload = header('x-amz-content-sha256');
  if (payload === undefined) return { ok: false, accessKeyId: id, reason: 'no x-amz-content-sha256' };
  const q = req.path.indexOf('?');
  const path = q < 0 ? req.path : req.path.slice(0, q);
  const query = q < 0 ? '' : req.path.slice(q + 1);
  const headers = names.map((n) => `${n}:${(header(n) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonical = `${req.method}\n${path}\n${canonicalQuery(query)}\n${headers}\n${signedHeaders}\n${payload}`;
  const expected = sigV4Signature(secret, date, region, service, amzDate, canonical);
  return expected === signature ? { ok: true, accessKeyId: id } : { ok: false, accessKeyId: id, reason: 'signature does not match' };
}
