// The event journal: append + replay, fsync before acknowledgement, group commit,
// torn tails, corruption, compaction, the writer lock, reading and following.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, readRecords, reduce, emptyJournalState, replay, RECENT_TRANSITIONS } from '../../src/daemon/journal.js';
import type { JournalEntry, JournalRecord, JournalState, MountSpec } from '../../src/daemon/journal.js';
import { NydusError } from '../../src/errors.js';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const spec = (mountpoint: string, n: number, extra: Partial<MountSpec> = {}): MountSpec => ({
  mountpoint,
  source: `/images/${n}/bootstrap`,
  config: JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: `/blobs/${n}` } } }, auth: 'c2VjcmV0' }),
  fsType: 'rafs',
  prefetchFiles: n % 2 === 0 ? null : ['/usr/bin', '/etc'],
  index: n,
  ...extra,
});

/** Plain comparable form of a state (Maps are not deep-equal friendly across runs). */
const plain = (s: JournalState) => ({ ...s, mounts: [...s.mounts].sort(([a], [b]) => a.localeCompare(b)) });

const segments = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
const dirBytes = (dir: string) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

test('append then replay rebuilds mounts, log level, last state and transitions', async (t) => {
  const dir = tmp(t);
  const j = await Journal.open(dir);
  const ev = await j.append({ type: 'event', event: 'MOUNT', reason: 'startup', state: 'INIT.idle' });
  await j.append({ type: 'transition', from: 'INIT.idle', to: 'INIT.mounting', event: 'MOUNT' });
  await j.append({ type: 'transition', from: 'INIT.mounting', to: 'READY.idle', event: 'xstate.done.actor.mountSession' });
  await j.append({ type: 'outcome', of: ev.seq, event: 'MOUNT', ok: true });
  await j.append({ type: 'mount', ...spec('/', 0) });
  await j.append({ type: 'mount', ...spec('/snap1', 1) });
  await j.append({ type: 'remount', ...spec('/snap1', 3, { index: 1 }) });
  await j.append({ type: 'mount', ...spec('/snap2', 2) });
  await j.append({ type: 'umount', mountpoint: '/snap2' });
  await j.append({ type: 'log-level', level: 'debug' });
  const failed = await j.append({ type: 'outcome', of: ev.seq, event: 'START', ok: false, error: { code: 'ERR_FUSE_SESSION', message: 'boom' } });
  assert.equal(failed.seq, 11);
  assert.equal(ev.seq, 1);
  assert.match(ev.time, /^\d{4}-\d\d-\d\dT/);
  await j.close();

  const s = await replay(dir);
  assert.equal(s.lastSeq, 11);
  assert.equal(s.logLevel, 'debug');
  assert.equal(s.lastState, 'READY');
  assert.deepEqual([...s.mounts.keys()].sort(), ['/', '/snap1']);
  const snap1 = s.mounts.get('/snap1')!;
  assert.equal(snap1.source, '/images/3/bootstrap');
  assert.equal(snap1.config, spec('/snap1', 3).config);
  assert.deepEqual(snap1.prefetchFiles, ['/usr/bin', '/etc']);
  assert.equal(snap1.index, 1);
  assert.equal(snap1.mountedAt, (await readRecords(dir)).find((r) => r.type === 'mount' && r.mountpoint === '/snap1')!.time, 'a remount keeps the mount time');
  assert.deepEqual(
    s.transitions.map((x) => [x.from, x.to]),
    [
      ['INIT.idle', 'INIT.mounting'],
      ['INIT.mounting', 'READY.idle'],
    ],
  );
  // The live state of a reopened journal is the replay.
  const j2 = await Journal.open(dir);
  assert.deepEqual(plain(j2.state), plain(s));
  await j2.close();
});

test('reduce is pure and lenient about meaning', () => {
  const s0 = emptyJournalState();
  const mount: JournalRecord = { seq: 1, time: 't1', type: 'mount', ...spec('/a', 1) };
  const s1 = reduce(s0, mount);
  assert.equal(s0.mounts.size, 0, 'input state unchanged');
  assert.equal(s1.mounts.size, 1);
  const s2 = reduce(s1, { seq: 2, time: 't2', type: 'umount', mountpoint: '/nope' });
  assert.equal(s2.mounts, s1.mounts, 'umount of an unknown mountpoint changes nothing');
  const s3 = reduce(s2, { seq: 3, time: 't3', type: 'remount', ...spec('/nope', 2) });
  assert.equal(s3.mounts.size, 1);
  const s4 = reduce(s3, { seq: 4, time: 't4', type: 'mount', ...spec('/a', 5) });
  assert.equal(s4.mounts.get('/a')!.source, '/images/5/bootstrap', 'mount over an existing mountpoint replaces it');
  assert.equal(s4.lastSeq, 4);
  let s = s4;
  for (let i = 0; i < RECENT_TRANSITIONS + 10; i++) s = reduce(s, { seq: 10 + i, time: 't', type: 'transition', from: 'A', to: `B.x${i}`, event: 'E' });
  assert.equal(s.transitions.length, RECENT_TRANSITIONS);
  assert.equal(s.transitions.at(-1)!.to, `B.x${RECENT_TRANSITIONS + 9}`);
  assert.equal(s.transitions[0].to, 'B.x10');
  assert.equal(s.lastState, 'B');
});

test('an append resolves only after fdatasync, and concurrent appends share one', async (t) => {
  const dir = tmp(t);
  const j = await Journal.open(dir);
  // Spy on node's FileHandle class (the journal's handles are instances of it): log each
  // write with the seqs it carries, each completed sync, and each resolved append.
  const probe = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const { write, datasync } = proto;
  const log: Array<{ kind: 'write'; seqs: number[] } | { kind: 'synced' } | { kind: 'resolved'; seq: number }> = [];
  proto.write = function (this: FileHandle, ...args: unknown[]) {
    const buf = args[0] as Buffer;
    const seqs = buf.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l).seq as number);
    log.push({ kind: 'write', seqs });
    return (write as (...a: unknown[]) => Promise<unknown>).apply(this, args);
  } as typeof proto.write;
  proto.datasync = async function (this: FileHandle) {
    await datasync.call(this);
    log.push({ kind: 'synced' });
  };
  t.after(() => {
    Object.assign(proto, { write, datasync });
  });
  const N = 50;
  const recs = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      j.append({ type: 'mount', ...spec(`/m${i}`, i) }).then((r) => {
        log.push({ kind: 'resolved', seq: r.seq });
        return r;
      }),
    ),
  );
  Object.assign(proto, { write, datasync });
  await j.close();
  for (const r of recs) {
    const w = log.findIndex((e) => e.kind === 'write' && e.seqs.includes(r.seq));
    const done = log.findIndex((e) => e.kind === 'resolved' && e.seq === r.seq);
    assert.ok(w >= 0, `seq ${r.seq} was written`);
    assert.ok(log.slice(w, done).some((e) => e.kind === 'synced'), `seq ${r.seq} resolved before a sync covered its write`);
  }
  const syncs = log.filter((e) => e.kind === 'synced').length;
  assert.ok(syncs >= 1 && syncs < N / 2, `expected group commit: ${syncs} syncs for ${N} appends`);
  assert.deepEqual(recs.map((r) => r.seq), Array.from({ length: N }, (_, i) => i + 1), 'seqs follow call order');
  const resolvedOrder = log.flatMap((e) => (e.kind === 'resolved' ? [e.seq] : []));
  assert.deepEqual(resolvedOrder, recs.map((r) => r.seq), 'appends resolve in order');
  assert.equal((await replay(dir)).mounts.size, N);
});

test('a failed fsync fails the journal: pending and later appends reject', async (t) => {
  const dir = tmp(t);
  const j = await Journal.open(dir);
  await j.append({ type: 'log-level', level: 'info' });
  const probe = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const original = proto.datasync;
  proto.datasync = async () => {
    throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
  };
  t.after(() => {
    proto.datasync = original;
  });
  const a = j.append({ type: 'log-level', level: 'debug' });
  const b = j.append({ type: 'log-level', level: 'warn' });
  await assert.rejects(a, (e: NydusError) => e.code === 'ERR_DAEMON_JOURNAL' && /EIO/.test(e.message));
  await assert.rejects(b, (e: NydusError) => e.code === 'ERR_DAEMON_JOURNAL');
  proto.datasync = original;
  await assert.rejects(j.append({ type: 'log-level', level: 'off' }), (e: NydusError) => e.code === 'ERR_DAEMON_JOURNAL');
  assert.equal(j.state.logLevel, 'info', 'the live state holds only durable records');
  await j.close();
});

test('an entry replay would refuse is rejected alone, nothing is written', async (t) => {
  const dir = tmp(t);
  const j = await Journal.open(dir);
  const bad = [
    { type: 'mount', mountpoint: '/x', source: '/b', config: '{}', fsType: 'rafs', prefetchFiles: null } as unknown as JournalEntry, // no index
    { type: 'umount' } as unknown as JournalEntry,
    { type: 'nonsense' } as unknown as JournalEntry,
    { type: 'snapshot', state: { mounts: [], logLevel: null, lastState: null, lastSeq: 0, transitions: [] } } as JournalEntry,
  ];
  const good = j.append({ type: 'log-level', level: 'info' });
  const results = await Promise.allSettled(bad.map((e) => j.append(e)));
  for (const r of results) assert.equal(r.status, 'rejected');
  assert.equal((await good).seq, 1);
  assert.equal((await j.append({ type: 'umount', mountpoint: '/x' })).seq, 2, 'rejected entries take no seq');
  await j.close();
  assert.deepEqual((await readRecords(dir)).map((r) => r.type), ['log-level', 'umount']);
});

test('a torn last line is ignored by replay and cut off before the next append', async (t) => {
  const dir = tmp(t);
  const j = await Journal.open(dir);
  for (let i = 0; i < 3; i++) await j.append({ type: 'mount', ...spec(`/m${i}`, i) });
  await j.close();
  const [seg] = segments(dir);
  const full = JSON.stringify({ seq: 4, time: 'x', type: 'umount', mountpoint: '/m0' });
  for (const torn of [full.slice(0, 17), full, '\0\0\0\0', full.slice(0, 30) + '\n']) {
    const path = join(dir, seg);
    const good = readFileSync(path);
    appendFileSync(path, torn);
    const s = await replay(dir);
    assert.equal(s.lastSeq, 3, `torn tail ${JSON.stringify(torn)} ignored`);
    assert.equal(s.mounts.size, 3);
    const j2 = await Journal.open(dir);
    const r = await j2.append({ type: 'log-level', level: 'warn' });
    assert.equal(r.seq, 4);
    await j2.close();
    const text = readFileSync(path, 'utf8');
    assert.ok(text.startsWith(good.toString()) && text.endsWith('"level":"warn"}\n'), 'torn bytes were truncated');
    assert.equal((await replay(dir)).logLevel, 'warn');
    writeFileSync(path, good); // back to three records for the next case
  }
});

test('garbage before a good line is a clear error, not a silent skip', async (t) => {
  const dir = tmp(t);
  const j = await Journal.open(dir);
  for (let i = 0; i < 3; i++) await j.append({ type: 'mount', ...spec(`/m${i}`, i) });
  await j.close();
  const path = join(dir, segments(dir)[0]);
  const lines = readFileSync(path, 'utf8').split('\n');
  writeFileSync(path, [lines[0], '{"seq":2,"time":"x","type":"mount"', lines[2], ''].join('\n'));
  await assert.rejects(replay(dir), (e: NydusError) => e.code === 'ERR_DAEMON_JOURNAL' && /line 2 is corrupt/.test(e.message));
  await assert.rejects(Journal.open(dir), (e: NydusError) => e.code === 'ERR_DAEMON_JOURNAL');
  writeFileSync(path, [lines[1], lines[0], lines[2], ''].join('\n'));
  await assert.rejects(replay(dir), (e: NydusError) => e.code === 'ERR_DAEMON_JOURNAL' && /seq 1 after 2/.test(e.message));
});

test('compaction keeps replay identical, bounds the size, and 300 mount/umount cycles stay small', async (t) => {
  const dir = tmp(t);
  const compactBytes = 8 * 1024;
  const j = await Journal.open(dir, { compactBytes });
  let maxBytes = 0;
  for (let i = 0; i < 300; i++) {
    const mp = `/pseudo_fs_${i % 7}`;
    await j.append({ type: 'event', event: 'MOUNT', reason: 'api', state: 'RUNNING.idle' });
    await j.append({ type: 'mount', ...spec(mp, i) });
    if (i % 3 !== 0) await j.append({ type: 'umount', mountpoint: mp });
    await j.append({ type: 'transition', from: 'RUNNING.idle', to: 'RUNNING.idle', event: `cycle${i}` });
    maxBytes = Math.max(maxBytes, dirBytes(dir));
  }
  const live = j.state;
  await j.close();
  assert.equal(segments(dir).length, 1, 'old segments are removed');
  assert.ok(!segments(dir).includes('journal.000001.jsonl'), 'compaction happened');
  const first = (await readRecords(dir))[0];
  assert.equal(first.type, 'snapshot');
  assert.ok(maxBytes < compactBytes * 3, `journal stayed bounded: ${maxBytes} bytes`);
  const replayed = await replay(dir);
  assert.deepEqual(plain(replayed), plain(live), 'replay after compaction equals the live state');
  assert.equal(replayed.transitions.length, RECENT_TRANSITIONS);
  assert.equal(replayed.transitions.at(-1)!.event, 'cycle299');
  // The table itself, computed the plain way: mountpoints whose last record was a mount.
  const expected = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    if (i % 3 !== 0) expected.delete(`/pseudo_fs_${i % 7}`);
    else expected.set(`/pseudo_fs_${i % 7}`, i);
  }
  assert.deepEqual(
    [...replayed.mounts].map(([mp, m]) => [mp, m.source]).sort(),
    [...expected].map(([mp, i]) => [mp, `/images/${i}/bootstrap`]).sort(),
  );
  // Seqs keep growing across segments, and a forced compaction changes nothing either.
  const j2 = await Journal.open(dir, { compactBytes });
  const before = plain(j2.state);
  await j2.compact();
  assert.deepEqual({ ...plain(j2.state), lastSeq: 0 }, { ...before, lastSeq: 0 });
  assert.equal(j2.lastSeq, before.lastSeq + 1, 'the snapshot record takes the next seq');
  await j2.close();
  assert.deepEqual(plain(await replay(dir)), plain(j2.state));
});

test('journal files are private: directory 0700, segments 0600', async (t) => {
  const parent = tmp(t);
  const dir = join(parent, 'state', 'journal');
  const j = await Journal.open(dir, { compactBytes: 256 });
  for (let i = 0; i < 5; i++) await j.append({ type: 'mount', ...spec(`/m${i}`, i) });
  await j.close();
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  for (const f of segments(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
});

test('one writer per directory: a live holder is refused, a dead one is taken over', async (t) => {
  const dir = tmp(t);
  const j = await Journal.open(dir);
  await assert.rejects(Journal.open(dir), (e: NydusError) => e.code === 'ERR_DAEMON_JOURNAL' && /in use by pid/.test(e.message));
  await j.close();
  // A pid that cannot be alive (beyond pid_max) stands for a crashed writer.
  writeFileSync(join(dir, 'journal.lock'), '2147483646\n');
  const j2 = await Journal.open(dir);
  await j2.append({ type: 'log-level', level: 'info' });
  await j2.close();
  await assert.rejects(j2.append({ type: 'log-level', level: 'x' }), (e: NydusError) => e.code === 'ERR_DAEMON_JOURNAL');
});

test('readRecords pages by seq; follow yields the backlog, then live records, until aborted', async (t) => {
  const dir = tmp(t);
  assert.deepEqual(await readRecords(join(dir, 'missing')), []);
  assert.equal((await replay(join(dir, 'missing'))).lastSeq, 0);
  const j = await Journal.open(dir, { compactBytes: 1024 });
  for (let i = 0; i < 3; i++) await j.append({ type: 'log-level', level: `l${i}` });
  assert.deepEqual((await readRecords(dir, { sinceSeq: 1 })).map((r) => r.seq), [2, 3]);
  assert.deepEqual((await readRecords(dir, { sinceSeq: 0, limit: 2 })).map((r) => r.seq), [1, 2]);

  const ac = new AbortController();
  const seen: JournalRecord[] = [];
  const done = (async () => {
    for await (const r of j.follow({ sinceSeq: 1, signal: ac.signal })) {
      seen.push(r);
      if (seen.length === 2) void j.append({ type: 'log-level', level: 'live' });
      // Enough live records to cross the compaction threshold while following.
      if (r.type === 'log-level' && r.level === 'live') for (let i = 0; i < 30; i++) await j.append({ type: 'mount', ...spec(`/f${i}`, i) });
      if (seen.filter((x) => x.type === 'mount').length === 30) ac.abort();
    }
  })();
  await done;
  const seqs = seen.map((r) => r.seq);
  assert.deepEqual(seqs.slice(0, 3), [2, 3, 4]);
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), 'strictly increasing, no duplicates');
  assert.ok(seen.some((r) => r.type === 'snapshot'), 'the compaction snapshot is yielded');
  assert.equal(seqs.length, seqs.at(-1)! - 1, 'no record missed');
  // A follower ends when the journal closes.
  const tail = (async () => {
    const got: number[] = [];
    for await (const r of j.follow({ sinceSeq: j.lastSeq })) got.push(r.seq);
    return got;
  })();
  await j.append({ type: 'log-level', level: 'last' });
  await j.close();
  assert.deepEqual(await tail, [j.lastSeq]);
});
