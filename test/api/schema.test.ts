// The schema check itself: every definition of every schema file compiles under Ajv's
// strict mode, a body that matches passes, and each kind of mismatch is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { definitionNames, FILES, schemaErrors } from './schema.js';

const version = { package_ver: '0.1.0', git_commit: 'abc', build_time: 'now', profile: 'release', rustc: 'none' };
const info = { version, id: null, supervisor: null, state: 'RUNNING', backend_collection: null };

test('every definition compiles under strict mode', () => {
  for (const file of Object.keys(FILES) as (keyof typeof FILES)[]) {
    const names = definitionNames(file);
    assert.ok(names.length > 0, file);
    for (const name of names) assert.doesNotThrow(() => schemaErrors(file, name, null), `${file}#${name}`);
  }
});

test('a body that matches its definition has no errors', () => {
  assert.deepEqual(schemaErrors('v1', 'DaemonInfo', info), []);
  assert.deepEqual(schemaErrors('v1', 'ErrorMsg', { code: 'UNDEFINED', message: 'm', error_code: 'ERR_X', description: 'd' }), []);
});

test('a wrong enum value, a missing field, a wrong type and a bad pattern are each reported', () => {
  assert.match(schemaErrors('v1', 'DaemonInfo', { ...info, state: 'DANCING' }).join('\n'), /\/state: must be equal to one of the allowed values/);
  assert.match(schemaErrors('v1', 'DaemonInfo', { ...info, id: undefined }).join('\n'), /must have required property 'id'/);
  assert.match(schemaErrors('v1', 'DaemonInfo', { ...info, version: { ...version, rustc: 1 } }).join('\n'), /\/version\/rustc: must be string/);
  assert.match(schemaErrors('v1', 'ErrorMsg', { code: 'UNDEFINED', message: 'm', error_code: 'nope', description: 'd' }).join('\n'), /\/error_code: must match pattern/);
});

test('an unknown definition is an error, not a pass', () => {
  assert.throws(() => schemaErrors('v2', 'NoSuchThing', {}), /has no definition NoSuchThing/);
});
