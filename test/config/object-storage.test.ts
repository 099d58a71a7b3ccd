// The s3 and oss backend sections: upstream's keys and defaults in both layouts, the
// checks on endpoint, bucket and key pairs, and the two secret-free views of a config
// (redact() for the API and logs, withoutObjectStorageKeys() for the journal).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeConfig, parseConfig, backendOnlyConfig } from '../../src/config/parse.js';
import { redact, withoutObjectStorageKeys } from '../../src/config/derive.js';

const v1 = (type: string, config: Record<string, unknown>) => ({ device: { backend: { type, config }, cache: { type: '' } } });

test('s3 in a v1 config: upstream keys, defaults filled in (https, AWS endpoint left empty, us-east-1, timeouts 5, no retries)', () => {
  const c = normalizeConfig(v1('s3', { bucket_name: 'my-bucket', object_prefix: 'nydus/' }));
  assert.deepEqual(c.backend, {
    type: 's3',
    s3: {
      scheme: 'https',
      endpoint: '',
      bucket_name: 'my-bucket',
      object_prefix: 'nydus/',
      access_key_id: '',
      access_key_secret: '',
      region: 'us-east-1',
      skip_verify: false,
      ca_cert_files: [],
      timeout: 5,
      connect_timeout: 5,
      retry_limit: 0,
      proxy: { url: '', ping_url: '', fallback: true, check_interval: 5, use_http: false },
      mirrors: [],
    },
  });
});

test('oss in a v2 config keeps every key; it needs an endpoint', () => {
  const c = normalizeConfig({
    version: 2,
    backend: { type: 'oss', oss: { scheme: 'http', endpoint: 'oss-cn-hangzhou.aliyuncs.com', bucket_name: 'images', object_prefix: 'p/', access_key_id: 'id', access_key_secret: 's', retry_limit: 3, timeout: 9 } },
  });
  assert.equal(c.backend?.type, 'oss');
  if (c.backend?.type !== 'oss') return;
  assert.equal(c.backend.oss.endpoint, 'oss-cn-hangzhou.aliyuncs.com');
  assert.equal(c.backend.oss.retry_limit, 3);
  assert.equal(c.backend.oss.timeout, 9);
  assert.throws(() => normalizeConfig(v1('oss', { bucket_name: 'images' })), /device\.backend\.config\.endpoint: missing or empty/);
});

test('bad values are refused naming the field', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ endpoint: 'http://host:9000', bucket_name: 'b-1' }, /config\.endpoint: expected host\[:port\] without scheme or path/],
    [{ endpoint: 'host/path', bucket_name: 'b-1' }, /config\.endpoint/],
    [{ bucket_name: 'Bad_Bucket' }, /config\.bucket_name: invalid bucket name/],
    [{}, /config\.bucket_name: missing or empty/],
    [{ bucket_name: 'b-1', access_key_id: 'only-id' }, /config\.access_key_secret: give both/],
    [{ bucket_name: 'b-1', access_key_secret: 'only-secret' }, /config\.access_key_id: give both/],
    [{ bucket_name: 'b-1', scheme: 'ftp' }, /config\.scheme: expected one of/],
    [{ bucket_name: 'b-1', retry_limit: 256 }, /config\.retry_limit: 256 exceeds the maximum 255/],
  ];
  for (const [cfg, re] of bad) assert.throws(() => normalizeConfig(v1('s3', cfg)), re, JSON.stringify(cfg));
  // The error never repeats a secret value.
  assert.throws(
    () => normalizeConfig(v1('s3', { bucket_name: 'b-1', access_key_secret: 'hush-hush' })),
    (err: Error) => !err.message.includes('hush-hush'),
  );
});

test('--backend-type with --backend-config: the backend keys alone make a config; errors name the flag', () => {
  const c = backendOnlyConfig('s3', '{"bucket_name":"b-1","endpoint":"127.0.0.1:9000","scheme":"http"}');
  assert.equal(c.backend?.type, 's3');
  assert.throws(() => backendOnlyConfig('s3', '{'), /invalid --backend-config JSON/);
  assert.throws(() => backendOnlyConfig('s3', '{}'), /--backend-config: backend\.s3\.bucket_name: missing or empty/);
  assert.throws(() => backendOnlyConfig('nope', '{}'), /unknown backend "nope"/);
});

test('redact masks the keys; the journal view drops them; other configs pass unchanged', () => {
  const text = JSON.stringify(v1('s3', { bucket_name: 'b-1', access_key_id: 'AKID', access_key_secret: 'sekrit' }));
  const shown = JSON.stringify(redact(parseConfig(text)));
  assert.ok(!shown.includes('sekrit') && !shown.includes('AKID'));
  assert.match(shown, /"access_key_id":"<redacted>","access_key_secret":"<redacted>"/);
  const journaled = withoutObjectStorageKeys(text);
  assert.ok(!journaled.includes('sekrit') && !journaled.includes('AKID'));
  assert.equal(parseConfig(journaled).backend?.type, 's3', 'still a valid (anonymous) config');
  const v2 = JSON.stringify({ version: 2, backend: { type: 'oss', oss: { endpoint: 'e', bucket_name: 'b-1', access_key_id: 'AKID', access_key_secret: 'sekrit' } } });
  assert.ok(!withoutObjectStorageKeys(v2).includes('sekrit'));
  const registry = JSON.stringify(v1('registry', { host: 'h', repo: 'r', auth: 'dXNlcjpwdw==' }));
  assert.equal(withoutObjectStorageKeys(registry), registry);
  assert.equal(withoutObjectStorageKeys('not json'), 'not json');
});
