// Decodes request bodies into the typed requests of DaemonControl the way upstream's
// serde structs do: required fields, defaults, type checks, unknown fields ignored
// (serde's default; upstream never denies them). Failures are 400 `ParseBody(Error(..))`
// naming the field and the problem, in serde_json's wording.
import type { BlobCacheEntry, MountCmd } from '../daemon/control.js';
import { requestError } from './request.js';
import { rustDebugString } from './upstream-errors.js';

/** Where a parse error is reported: serde_json's 1-based line and column. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: Math.min(offset, text.length) - lineStart };
}

function parseBodyError(text: string, problem: string, offset: number): Error {
  const { line, column } = lineColumn(text, offset);
  const short = problem.length > 200 ? problem.slice(0, 200) + '...' : problem;
  return requestError(
    'ERR_API_BAD_REQUEST',
    `ParseBody(Error(${rustDebugString(short)}, line: ${line}, column: ${column}))`,
    `failed to parse request body: ${short} at line ${line} column ${column}`,
  );
}

/** serde's name for what a JSON value is: `integer \`1\``, `string "x"`, `map`, ... */
function unexpected(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return `boolean \`${v}\``;
  if (typeof v === 'number') return Number.isInteger(v) ? `integer \`${v}\`` : `floating point \`${v}\``;
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (Array.isArray(v)) return 'sequence';
  return 'map';
}

/** A parsed body with the text it came from, for error positions. */
interface Json {
  text: string;
  value: unknown;
}

function parseJson(body: Buffer): Json {
  const text = body.toString('utf8');
  try {
    return { text, value: JSON.parse(text) };
  } catch (err) {
    const msg = (err as Error).message;
    const at = /at position (\d+)/.exec(msg);
    const offset = at ? Number(at[1]) : text.trimEnd().length;
    throw parseBodyError(text, msg.replace(/ in JSON at position \d+.*$/, ''), offset);
  }
}

/** Field readers over one JSON object, reporting problems as serde would. */
class Fields {
  readonly #json: Json;
  readonly #obj: Record<string, unknown>;
  constructor(json: Json, expected: string) {
    this.#json = json;
    const v = json.value;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw this.fail(`invalid type: ${unexpected(v)}, expected ${expected}`);
    }
    this.#obj = v as Record<string, unknown>;
  }
  fail(problem: string): Error {
    return parseBodyError(this.#json.text, problem, this.#json.text.trimEnd().length);
  }
  has(key: string): boolean {
    return Object.hasOwn(this.#obj, key);
  }
  get(key: string): unknown {
    return this.#obj[key];
  }
  string(key: string): string {
    if (!this.has(key)) throw this.fail(`missing field \`${key}\``);
    return this.stringValue(this.#obj[key]);
  }
  stringOr(key: string, fallback: string): string {
    return this.has(key) ? this.stringValue(this.#obj[key]) : fallback;
  }
  stringValue(v: unknown): string {
    if (typeof v !== 'string') throw this.fail(`invalid type: ${unexpected(v)}, expected a string`);
    return v;
  }
  /** `Option<Vec<String>>` with `#[serde(default)]`: absent or null is None. */
  stringListOrNull(key: string): string[] | null {
    const v = this.#obj[key];
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v)) throw this.fail(`invalid type: ${unexpected(v)}, expected a sequence`);
    return v.map((x) => this.stringValue(x));
  }
  /** `Option<T>` of a struct: absent or null is None, otherwise a JSON object. */
  objectOrUndefined(key: string, what: string): Record<string, unknown> | undefined {
    const v = this.#obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw this.fail(`invalid type: ${unexpected(v)}, expected ${what}`);
    return v as Record<string, unknown>;
  }
  entries(): Array<[string, unknown]> {
    return Object.entries(this.#obj);
  }
}

/** PUT /api/{v1,v2}/daemon: upstream `DaemonConf { log_level }`. */
export function parseDaemonConf(body: Buffer): { log_level: string } {
  const f = new Fields(parseJson(body), 'struct DaemonConf');
  return { log_level: f.string('log_level') };
}

/** POST/PUT /api/v1/mount: upstream `ApiMountCmd` (fs_type defaults to "", prefetch_files to null). */
export function parseMountCmd(body: Buffer): MountCmd {
  const f = new Fields(parseJson(body), 'struct ApiMountCmd');
  const source = f.string('source');
  const fs_type = f.stringOr('fs_type', '');
  const config = f.string('config');
  const prefetch_files = f.stringListOrNull('prefetch_files');
  return { source, fs_type, config, prefetch_files };
}

/** PUT /api/v1/config: a JSON object of strings (upstream `HashMap<String, String>`). */
export function parseConfigMap(body: Buffer): Record<string, string> {
  const f = new Fields(parseJson(body), 'a map');
  const out: Record<string, string> = {};
  for (const [k, v] of f.entries()) out[k] = f.stringValue(v);
  return out;
}

/** PUT /api/v2/blobs: upstream `BlobCacheEntry` (`type`, `id` required; `domain_id` defaults to ""). */
export function parseBlobCacheEntry(body: Buffer): BlobCacheEntry {
  const f = new Fields(parseJson(body), 'struct BlobCacheEntry');
  const type = f.string('type');
  const id = f.string('id');
  const config = f.objectOrUndefined('config', 'struct BlobCacheEntryConfig');
  const config_v2 = f.objectOrUndefined('config_v2', 'struct BlobCacheEntryConfigV2');
  const domain_id = f.stringOr('domain_id', '');
  const entry: BlobCacheEntry = { type: type as BlobCacheEntry['type'], id, domain_id };
  if (config !== undefined) entry.config = config;
  if (config_v2 !== undefined) entry.config_v2 = config_v2;
  return entry;
}
