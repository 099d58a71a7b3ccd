// The daemon state handed over on sendfd/takeover, without a kernel: what it holds, how
// versions are read (a frozen version-1 state keeps decoding; a newer writer's state is
// read when it says an older reader may; one that needs a newer reader is refused with a
// clear error), and hostile bytes of every kind end in a clear error, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NydusError } from '../../src/errors.js';
import { decodeDaemonState, encodeDaemonState, STATE_COMPAT, STATE_FORMAT, STATE_VERSION, type DaemonState } from '../../src/daemon/upgrade-state.js';

const INIT = {
  major: 7, minor: 45, kernelMinor: 45, kernelFlags: 0x7fffffff, flags: 0x40e46021, maxReadahead: 131072,
  maxBackground: 64, congestionThreshold: 48, maxWrite: 131072, timeGran: 1, maxPages: 256,
};

const BODY: Omit<DaemonState, 'format' | 'version' | 'compat'> = {
  daemon: { id: 'd1', pid: 4242, build: '0.1.0 (abc)', savedAt: '2026-01-01T00:00:00.000Z' },
  fuse: { version: 1, mountpoint: '/mnt/x', connId: 41, init: INIT },
  mounts: [
    { mountpoint: '/v5', source: '/img/v5.boot', config: '{"version":2}', fsType: 'rafs', prefetchFiles: null, index: 1 },
    { mountpoint: '/snap/7', source: '/img/v6.boot', config: '{"id":"/snap/7"}', fsType: 'rafs', prefetchFiles: ['/usr/bin'], index: 9 },
  ],
  nextIndex: 10,
  journal: { dir: '/run/nydusd/d1', seq: 77 },
};

function code(e: unknown): string | undefined {
  return e instanceof NydusError ? e.code : undefined;
}

function expectRefused(bytes: Uint8Array | string, errCode: string, message: RegExp): void {
  assert.throws(
    () => decodeDaemonState(typeof bytes === 'string' ? Buffer.from(bytes) : bytes),
    (e: unknown) => code(e) === errCode && message.test((e as Error).message),
  );
}

test('encode then decode gives the same state, with format, version and compat', () => {
  const bytes = encodeDaemonState(BODY);
  assert.deepEqual(decodeDaemonState(bytes), { format: STATE_FORMAT, version: STATE_VERSION, compat: STATE_COMPAT, ...BODY });
  const journalUnknown = { ...BODY, journal: { dir: '/s', seq: null } };
  assert.equal(decodeDaemonState(encodeDaemonState(journalUnknown)).journal.seq, null);
});

test('a version-1 state as version 1 wrote it stays readable (frozen bytes)', () => {
  // Do not edit: these are the bytes a version-1 daemon sends. A change that breaks them
  // needs a new version and a reader for this one.
  const v1 =
    '{"format":"nydus-ts/daemon-state","version":1,"compat":1,' +
    '"daemon":{"id":null,"pid":17,"build":"0.1.0 (f8c5419)","savedAt":"2026-11-28T00:35:41.761Z"},' +
    '"fuse":{"version":1,"mountpoint":"/tmp/m","connId":39,"init":{"major":7,"minor":45,"kernelMinor":45,"kernelFlags":8589934591,' +
    '"flags":1088708641,"maxReadahead":131072,"maxBackground":64,"congestionThreshold":48,"maxWrite":131072,"timeGran":1,"maxPages":256}},' +
    '"mounts":[{"mountpoint":"/v5","source":"/f/v5/bootstrap","config":"{\\"version\\":2}","fsType":"rafs","prefetchFiles":null,"index":1},' +
    '{"mountpoint":"/v6","source":"/f/v6/bootstrap","config":"{}","fsType":"rafs","prefetchFiles":["/a"],"index":2}],' +
    '"nextIndex":3,"journal":{"dir":"/s","seq":120}}';
  const s = decodeDaemonState(Buffer.from(v1));
  assert.equal(s.daemon.id, null);
  assert.deepEqual([s.fuse.mountpoint, s.fuse.connId, s.fuse.init.kernelFlags, s.fuse.init.maxWrite], ['/tmp/m', 39, 8589934591, 131072]);
  assert.deepEqual(s.mounts.map((m) => [m.mountpoint, m.index, m.prefetchFiles]), [['/v5', 1, null], ['/v6', 2, ['/a']]]);
  assert.deepEqual([s.nextIndex, s.journal], [3, { dir: '/s', seq: 120 }]);
});

test("a newer writer's state that an older reader may read is read; unknown fields are ignored", () => {
  const newer = {
    ...JSON.parse(encodeDaemonState(BODY).toString()),
    version: STATE_VERSION + 3,
    compat: STATE_VERSION,
    futureField: { anything: [1, 2, 3] },
    mounts: BODY.mounts.map((m) => ({ ...m, futureMountField: true })),
  };
  const s = decodeDaemonState(Buffer.from(JSON.stringify(newer)));
  assert.equal(s.version, STATE_VERSION + 3);
  assert.deepEqual(s.mounts, BODY.mounts);
  assert.equal('futureField' in s, false);
});

test('a state that needs a newer reader is refused with both versions named', () => {
  const needsNewer = { ...JSON.parse(encodeDaemonState(BODY).toString()), version: STATE_VERSION + 1, compat: STATE_VERSION + 1 };
  expectRefused(
    JSON.stringify(needsNewer),
    'ERR_DAEMON_STATE_VERSION',
    new RegExp(`format version ${STATE_VERSION + 1} and needs a reader of version ${STATE_VERSION + 1} or newer; this nydusd reads version ${STATE_VERSION}`),
  );
  const badSession = { ...JSON.parse(encodeDaemonState(BODY).toString()), fuse: { ...BODY.fuse, version: 2 } };
  expectRefused(JSON.stringify(badSession), 'ERR_DAEMON_STATE_VERSION', /FUSE session state version 2 is not 1/);
});

test('bytes that are not a state of ours are refused, naming their first bytes', () => {
  expectRefused('', 'ERR_DAEMON_UPGRADE', /not a nydus-ts daemon state \(0 bytes/);
  expectRefused(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x01]), 'ERR_DAEMON_UPGRADE', /not a nydus-ts daemon state \(5 bytes, starting deadbeef01\)/);
  expectRefused(Buffer.from([0x7b, 0xff, 0x7d]), 'ERR_DAEMON_UPGRADE', /not a nydus-ts daemon state/); // not UTF-8
  expectRefused('{}', 'ERR_DAEMON_UPGRADE', /not a nydus-ts daemon state/);
  expectRefused('[1,2]', 'ERR_DAEMON_UPGRADE', /not a nydus-ts daemon state/);
  expectRefused('{"format":"nydus-ts/daemon-state"', 'ERR_DAEMON_UPGRADE', /not a nydus-ts daemon state/);
  // A session state alone (what test/fuse/serve-child.ts sends) is not a daemon state.
  expectRefused(JSON.stringify(BODY.fuse), 'ERR_DAEMON_UPGRADE', /not a nydus-ts daemon state/);
  // Upstream nydusd's versionize bytes start with a u64 version, not JSON.
  expectRefused(Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(40)]), 'ERR_DAEMON_UPGRADE', /starting 0100000000000000/);
  expectRefused(Buffer.alloc(64 * 1024 * 1024 + 1), 'ERR_DAEMON_UPGRADE', /more than the 67108864 a state may have/);
});

test('each malformed field is refused by name', () => {
  const base = JSON.parse(encodeDaemonState(BODY).toString()) as Record<string, unknown>;
  const m0 = BODY.mounts[0];
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['version 0', { version: 0 }, /version is 0/],
    ['compat above version', { compat: 2, version: 1 }, /compat is 2/],
    ['daemon missing', { daemon: null }, /daemon is not an object/],
    ['daemon id number', { daemon: { ...BODY.daemon, id: 5 } }, /daemon\.id is neither null nor a string/],
    ['mounts object', { mounts: {} }, /mounts is not a list/],
    ['index 0', { mounts: [{ ...m0, index: 0 }] }, /mounts\[0\]\.index is 0/],
    ['index too large', { mounts: [{ ...m0, index: 2 ** 20 }] }, /mounts\[0\]\.index is 1048576/],
    ['index fraction', { mounts: [{ ...m0, index: 1.5 }] }, /mounts\[0\]\.index is 1\.5/],
    ['relative mountpoint', { mounts: [{ ...m0, mountpoint: 'v5' }] }, /mounts\[0\]\.mountpoint "v5" is not an absolute path/],
    ['NUL in mountpoint', { mounts: [{ ...m0, mountpoint: '/a\0b' }] }, /is not an absolute path/],
    ['prefetch not a list', { mounts: [{ ...m0, prefetchFiles: '/a' }] }, /prefetchFiles is neither null nor a list of strings/],
    ['config object', { mounts: [{ ...m0, config: {} }] }, /mounts\[0\]\.config is not a string/],
    ['duplicate mountpoint', { mounts: [m0, { ...m0, index: 2 }] }, /mountpoint \/v5 appears twice/],
    ['duplicate index', { mounts: [m0, { ...m0, mountpoint: '/w' }] }, /index 1 appears twice/],
    ['nextIndex 0', { nextIndex: 0 }, /nextIndex is 0/],
    ['connId negative', { fuse: { ...BODY.fuse, connId: -1 } }, /fuse\.connId is -1/],
    ['init missing field', { fuse: { ...BODY.fuse, init: { ...INIT, maxWrite: undefined } } }, /fuse\.init: .*maxWrite/],
    ['init newer protocol', { fuse: { ...BODY.fuse, init: { ...INIT, minor: 99 } } }, /fuse\.init: .*7\.99 is not supported/],
    ['journal seq text', { journal: { dir: '/s', seq: '5' } }, /journal\.seq is "5"/],
  ];
  for (const [what, patch, message] of cases) {
    assert.throws(
      () => decodeDaemonState(Buffer.from(JSON.stringify({ ...base, ...patch }))),
      (e: unknown) => code(e) === 'ERR_DAEMON_UPGRADE' && message.test((e as Error).message),
      what,
    );
  }
});

test('arbitrary bytes and arbitrary JSON end in a state or a clear error, never anything else', () => {
  const ok = (bytes: Uint8Array) => {
    try {
      decodeDaemonState(bytes);
    } catch (e) {
      assert.ok(code(e) === 'ERR_DAEMON_UPGRADE' || code(e) === 'ERR_DAEMON_STATE_VERSION', String(e));
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), ok), { numRuns: 500 });
  const base = JSON.parse(encodeDaemonState(BODY).toString()) as Record<string, unknown>;
  const field = fc.constantFrom(...Object.keys(base), 'mounts', 'fuse', 'daemon');
  fc.assert(
    fc.property(field, fc.jsonValue(), (k, v) => ok(Buffer.from(JSON.stringify({ ...base, [k]: v })))),
    { numRuns: 500 },
  );
});
