// Checks API bodies against the JSON schemas in test/api/schemas (draft-07, derived from
// upstream's OpenAPI files, corrected per docs/contract.md §2.7), with Ajv.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { REPO_ROOT } from '../helpers/env.js';

export const FILES = {
  v1: 'nydus-api-v1.schema.json',
  v2: 'nydus-api-v2.schema.json',
  ext: 'extensions.schema.json',
} as const;

// strict: a keyword Ajv does not know, or a typo in one, fails the schema's compilation
// instead of being ignored.
const ajv = new Ajv({ allErrors: true, strict: true });
for (const file of Object.values(FILES)) ajv.addSchema(JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'api', 'schemas', file), 'utf8')));

/** The definitions of schema file `file`, by name. */
export function definitionNames(file: keyof typeof FILES): string[] {
  return Object.keys((ajv.getSchema(FILES[file])!.schema as { definitions: Record<string, unknown> }).definitions);
}

function validator(file: keyof typeof FILES, name: string): ValidateFunction {
  if (!definitionNames(file).includes(name)) throw new Error(`schema ${file} has no definition ${name}`);
  return ajv.getSchema(`${FILES[file]}#/definitions/${name}`)!;
}

/** The problems of `value` against definition `name` of schema file `file` (empty when valid). */
export function schemaErrors(file: keyof typeof FILES, name: string, value: unknown): string[] {
  const v = validator(file, name);
  if (v(value)) return [];
  return (v.errors ?? []).map((e) => `${name}${e.instancePath}: ${e.message}${e.params ? ' ' + JSON.stringify(e.params) : ''}`);
}

/** Asserts that `value` matches definition `name` of schema file `file`. */
export function assertSchema(file: keyof typeof FILES, name: string, value: unknown): void {
  assert.deepEqual(schemaErrors(file, name, value), [], `body does not match ${file}#${name}: ${JSON.stringify(value).slice(0, 400)}`);
}
