// Typed field access over untrusted JSON, for the config parser: every read knows the
// dotted path of the field it reads, so every rejection names that path
// (`device.backend.type: unknown backend "foo"`). `null` counts as absent, like serde's
// Option. Every key read is recorded, so that the parser can name the keys it never read
// (upstream options this project does not implement, typos) instead of dropping them
// silently; serde without deny_unknown_fields would just ignore them.
import { ConfigError } from '../errors.js';

/** A ConfigError whose message starts with the offending field's path. */
export function invalid(path: string, detail: string): ConfigError {
  return new ConfigError('ERR_CONFIG_INVALID', `failed to parse config: ${path}: ${detail}`);
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** A JSON object being read, with its path. */
export class Fields {
  /** Keys of this object that were read. */
  readonly #used = new Set<string>();

  /** `opened`: every Fields of one document, shared with the nested objects read from it. */
  constructor(
    readonly obj: Readonly<Record<string, unknown>>,
    readonly path: string,
    private readonly opened: Fields[] = [],
  ) {
    opened.push(this);
  }

  /** Wraps `value` read at `path`, which must be a JSON object. */
  static of(value: unknown, path: string, opened?: Fields[]): Fields {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw invalid(path || '(root)', `expected an object, got ${describe(value)}`);
    }
    return new Fields(value as Record<string, unknown>, path, opened);
  }

  /** Dotted paths of the keys (with a value) of this document that nothing read. */
  unread(): string[] {
    const out: string[] = [];
    for (const f of this.opened) {
      for (const [k, v] of Object.entries(f.obj)) if (v !== null && v !== undefined && !f.#used.has(k)) out.push(f.at(k));
    }
    return out;
  }

  /** Dotted path of a key of this object. */
  at(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  has(key: string): boolean {
    this.#used.add(key);
    const v = this.obj[key];
    return v !== undefined && v !== null;
  }

  raw(key: string): unknown {
    this.#used.add(key);
    const v = this.obj[key];
    return v === null ? undefined : v;
  }

  /** A nested object, or undefined when absent. */
  optObject(key: string): Fields | undefined {
    return this.has(key) ? Fields.of(this.obj[key], this.at(key), this.opened) : undefined;
  }

  /** A nested object that must be present. */
  object(key: string): Fields {
    const f = this.optObject(key);
    if (f === undefined) throw invalid(this.at(key), 'missing');
    return f;
  }

  optString(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalid(this.at(key), `expected a string, got ${describe(v)}`);
    return v;
  }

  string(key: string, def: string): string {
    return this.optString(key) ?? def;
  }

  /** A string that must be present and non-empty. */
  required(key: string): string {
    const v = this.optString(key);
    if (v === undefined || v === '') throw invalid(this.at(key), 'missing or empty');
    return v;
  }

  /** A string from a fixed set. */
  oneOf<T extends string>(key: string, allowed: readonly T[], def: T): T {
    const v = this.string(key, def);
    if (!(allowed as readonly string[]).includes(v)) {
      throw invalid(this.at(key), `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(v)}`);
    }
    return v as T;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') throw invalid(this.at(key), `expected a boolean, got ${describe(v)}`);
    return v;
  }

  /** A non-negative integer no larger than `max` (upstream's u8/u32/usize fields). */
  uint(key: string, def: number, max: number): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw invalid(this.at(key), `expected a non-negative integer, got ${describe(v)}`);
    }
    if (v > max) throw invalid(this.at(key), `${v} exceeds the maximum ${max}`);
    return v;
  }

  stringArray(key: string): string[] {
    const v = this.raw(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw invalid(this.at(key), `expected an array of strings, got ${describe(v)}`);
    return v.map((item, i) => {
      if (typeof item !== 'string') throw invalid(`${this.at(key)}[${i}]`, `expected a string, got ${describe(item)}`);
      return item;
    });
  }

  /** An array of objects, each read by `read`. */
  objectArray<T>(key: string, read: (f: Fields) => T): T[] {
    const v = this.raw(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw invalid(this.at(key), `expected an array, got ${describe(v)}`);
    return v.map((item, i) => read(Fields.of(item, `${this.at(key)}[${i}]`, this.opened)));
  }

  /** An object whose values are all strings (HTTP headers). */
  stringMap(key: string): Record<string, string> {
    const f = this.optObject(key);
    const out: Record<string, string> = {};
    if (f === undefined) return out;
    for (const [k, v] of Object.entries(f.obj)) {
      f.#used.add(k);
      if (typeof v !== 'string') throw invalid(f.at(k), `expected a string, got ${describe(v)}`);
      out[k] = v;
    }
    return out;
  }
}

/** Largest u8, u32 and the size limit upstream puts on byte counts (0x10000000). */
export const U8_MAX = 0xff;
export const U32_MAX = 0xffff_ffff;
export const SIZE_MAX = 0x1000_0000;
