// Checks API bodies against the JSON schemas in test/api/schemas (derived from upstream's
// OpenAPI files, corrected per nydusd-contract.md §2.7). A small validator for the
// draft-07 subset those files use: type, enum, properties, required,
// additionalProperties, propertyNames, items, minItems/maxItems, minimum, pattern,
// oneOf and local $ref.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/env.js';

type Schema = Record<string, unknown>;

const FILES = {
  v1: 'nydus-api-v1.schema.json',
  v2: 'nydus-api-v2.schema.json',
  ext: 'extensions.schema.json',
} as const;

const cache = new Map<string, Schema>();
function load(file: string): Schema {
  let s = cache.get(file);
  if (s === undefined) {
    s = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'api', 'schemas', file), 'utf8')) as Schema;
    cache.set(file, s);
  }
  return s;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function validate(root: Schema, schema: Schema, v: unknown, path: string, errors: string[]): void {
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace(/^#\/definitions\//, '');
    const target = (root.definitions as Record<string, Schema>)[name];
    if (target === undefined) throw new Error(`schema: unknown $ref ${schema.$ref}`);
    validate(root, target, v, path, errors);
    return;
  }
  if (schema.oneOf) {
    const matches = (schema.oneOf as Schema[]).filter((s) => {
      const e: string[] = [];
      validate(root, s, v, path, e);
      return e.length === 0;
    });
    if (matches.length !== 1) errors.push(`${path}: matches ${matches.length} of oneOf`);
    return;
  }
  if (schema.enum && !(schema.enum as unknown[]).includes(v)) errors.push(`${path}: ${JSON.stringify(v)} not in ${JSON.stringify(schema.enum)}`);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    const t = typeOf(v);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) {
      errors.push(`${path}: type ${t}, expected ${types.join('|')}`);
      return;
    }
  }
  if (typeof v === 'number' && typeof schema.minimum === 'number' && v < schema.minimum) errors.push(`${path}: ${v} < ${schema.minimum}`);
  if (typeof v === 'string' && typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(v)) errors.push(`${path}: ${JSON.stringify(v)} !~ ${schema.pattern}`);
  if (Array.isArray(v)) {
    if (typeof schema.minItems === 'number' && v.length < schema.minItems) errors.push(`${path}: ${v.length} items < ${schema.minItems}`);
    if (typeof schema.maxItems === 'number' && v.length > schema.maxItems) errors.push(`${path}: ${v.length} items > ${schema.maxItems}`);
    if (schema.items) v.forEach((x, i) => validate(root, schema.items as Schema, x, `${path}[${i}]`, errors));
  }
  if (typeOf(v) === 'object') {
    const o = v as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const k of (schema.required ?? []) as string[]) if (!Object.hasOwn(o, k)) errors.push(`${path}: missing ${k}`);
    for (const [k, x] of Object.entries(o)) {
      if (schema.propertyNames) validate(root, schema.propertyNames as Schema, k, `${path} key ${k}`, errors);
      if (props[k]) validate(root, props[k], x, `${path}.${k}`, errors);
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property ${k}`);
      else if (typeof schema.additionalProperties === 'object') validate(root, schema.additionalProperties as Schema, x, `${path}.${k}`, errors);
    }
  }
}

/** The problems of `value` against definition `name` of schema file `file` (empty when valid). */
export function schemaErrors(file: keyof typeof FILES, name: string, value: unknown): string[] {
  const root = load(FILES[file]);
  const def = (root.definitions as Record<string, Schema>)[name];
  if (def === undefined) throw new Error(`schema ${file} has no definition ${name}`);
  const errors: string[] = [];
  validate(root, def, value, name, errors);
  return errors;
}

/** Asserts that `value` matches definition `name` of schema file `file`. */
export function assertSchema(file: keyof typeof FILES, name: string, value: unknown): void {
  assert.deepEqual(schemaErrors(file, name, value), [], `body does not match ${file}#${name}: ${JSON.stringify(value).slice(0, 400)}`);
}
