// The machine as data: pure `initialTransition`/`transition` over every leaf state ×
// every event, held against the hand-written spec; refused events change nothing;
// tags, reported state, error recording, guards, and the composite triggers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialTransition, transition } from 'xstate';
import {
  ACTOR_DEFAULT_CODES,
  DAEMON_ACTORS,
  DAEMON_EVENT_TYPES,
  daemonMachine,
  initialContext,
  reportedState,
  stateKey,
  toErrorInfo,
} from '../../machines/daemon.js';
import type { DaemonEvent, DaemonSnapshot } from '../../machines/daemon.js';
import { DAEMON_STATE_KEYS, accepts, eventOutcome, invokedActor, lifecycleTable, snapshotAt, triggerPath } from '../../machines/daemon-table.js';
import { ACTOR_STATES, EXPECTED, REPORTED, TAGS } from './daemon-spec.js';
import { DaemonError } from '../../src/errors.js';

const done = (actor: string, output: unknown = { connId: 7 }) => ({ type: `xstate.done.actor.${actor}`, output }) as unknown as DaemonEvent;
const failed = (actor: string, error: unknown) => ({ type: `xstate.error.actor.${actor}`, error }) as unknown as DaemonEvent;

test('the machine starts resting in INIT with an empty, JSON-clean context', () => {
  const [s, actions] = initialTransition(daemonMachine);
  assert.equal(stateKey(s), 'INIT.idle');
  assert.equal(reportedState(s), 'INIT');
  assert.deepEqual(s.context, {
    connId: null,
    lastError: null,
    reason: null,
    endReason: null,
    restored: false,
    awaitingTakeover: false,
    journalDeferred: false,
    pending: null,
    config: {},
  });
  assert.deepEqual(initialTransition(daemonMachine, { awaitingTakeover: true, journalDeferred: true })[0].context, initialContext({ awaitingTakeover: true, journalDeferred: true }));
  assert.deepEqual(actions, []);
  assert.deepEqual(JSON.parse(JSON.stringify(s.context)), s.context);
});

test('the leaf states are exactly the spec, with the upstream state names on top', () => {
  assert.deepEqual([...DAEMON_STATE_KEYS].sort(), Object.keys(EXPECTED).sort());
  const tops = new Set(DAEMON_STATE_KEYS.map((k) => k.split('.')[0]));
  assert.deepEqual([...tops].sort(), ['INIT', 'INTERRUPTED', 'READY', 'RUNNING', 'STOPPED', 'UPGRADING']);
});

for (const key of Object.keys(EXPECTED)) {
  test(`${key}: every event goes where the spec says, refused ones change nothing`, () => {
    const from = snapshotAt(key, { connId: 3, lastError: { code: 'ERR_OLD', message: 'old', actor: 'startService' } });
    assert.equal(stateKey(from), key);
    assert.equal(reportedState(from), REPORTED(key));
    assert.deepEqual([...from.tags].sort(), TAGS[key]);
    for (const type of DAEMON_EVENT_TYPES) {
      const want = EXPECTED[key][type];
      const ev: DaemonEvent = { type, reason: 'signal', mountpoint: '/sub', id: 'snap', values: { proxy_url: 'http://proxy' } };
      const [next, actions] = transition(daemonMachine, from, ev);
      assert.equal(accepts(from, type), want !== null, `${key} accepts ${type}`);
      assert.equal(accepts(key, type), want !== null);
      if (want === null) {
        assert.equal(stateKey(next), key, `${key} refuses ${type}`);
        // A stopped machine's actor drops every event; the pure function still folds root handlers.
        if (from.status === 'done') continue;
        assert.deepEqual(next.context, from.context, `${key} refusing ${type} keeps context`);
        assert.deepEqual(actions, []);
        continue;
      }
      assert.equal(stateKey(next), want.next, `${key} + ${type}`);
      if (type === 'SET_CONFIG') {
        assert.deepEqual(next.context.config, { 'snap:proxy_url': 'http://proxy' });
        assert.deepEqual(next.context.lastError, from.context.lastError, 'a config change keeps the last error');
        continue;
      }
      if (type === 'JOURNAL_ATTACHED') continue;
      assert.equal(next.context.lastError, null, 'an accepted event clears the last error');
      assert.equal(next.context.reason, 'signal');
      if (['STOP', 'EXIT', 'TRIGGER_STOP', 'TRIGGER_EXIT'].includes(type)) assert.equal(next.context.endReason, 'signal');
      if (want.actor === undefined) {
        assert.ok(!next.hasTag('busy'));
        continue;
      }
      assert.ok(next.hasTag('busy'));
      assert.ok(actions.some((a) => a.type === 'xstate.spawnChild'), 'entering an actor state starts its actor');
      assert.equal(reportedState(next), REPORTED(key) === 'INIT' && type === 'TAKEOVER' ? 'UPGRADING' : REPORTED(key), 'reported state holds while the actor runs');
      const [ok] = transition(daemonMachine, next, done(want.actor));
      assert.equal(stateKey(ok), want.onDone, `${want.actor} done`);
      const err = new DaemonError('ERR_DAEMON_UPGRADE', 'failed to restore: no fd');
      const [bad] = transition(daemonMachine, next, failed(want.actor, err));
      assert.equal(stateKey(bad), want.onError, `${want.actor} failed`);
      assert.deepEqual(bad.context.lastError, { code: 'ERR_DAEMON_UPGRADE', message: 'failed to restore: no fd', actor: want.actor });
      // Every other event, external or another actor's completion, leaves the state meanwhile.
      for (const other of DAEMON_EVENT_TYPES) assert.equal(stateKey(transition(daemonMachine, next, { type: other, reason: 'api' })[0]), want.next);
      for (const a of DAEMON_ACTORS.filter((x) => x !== want.actor)) {
        assert.equal(stateKey(transition(daemonMachine, next, done(a))[0]), want.next, `${a} done is ignored in ${want.next}`);
      }
    }
  });
}

test('the computed table (docs, API) equals the spec', () => {
  for (const row of lifecycleTable()) {
    assert.equal(row.reported, REPORTED(row.state));
    assert.deepEqual(row.tags, TAGS[row.state]);
    for (const type of DAEMON_EVENT_TYPES) {
      const want = EXPECTED[row.state][type];
      assert.deepEqual(row.events[type], want === null ? { accepted: false } : { accepted: true, ...want }, `${row.state} ${type}`);
      assert.deepEqual(eventOutcome(row.state, type), row.events[type]);
    }
  }
});

test('actor completions carry data into context: connection id, restored flag', () => {
  let s: DaemonSnapshot = initialTransition(daemonMachine)[0];
  s = transition(daemonMachine, s, { type: 'TAKEOVER', reason: 'api' })[0];
  s = transition(daemonMachine, s, done('restoreState', { connId: 48 }))[0];
  assert.equal(reportedState(s), 'READY');
  assert.equal(s.context.connId, 48);
  assert.equal(s.context.restored, true);
  s = transition(daemonMachine, s, { type: 'TRIGGER_EXIT', reason: 'api' })[0];
  assert.equal(s.status, 'done');
  assert.deepEqual(s.output, { endReason: 'exit', lastError: null }, 'the API exit is the end reason `exit`');
});

test('a failed takeover returns to INIT and may be retried (unlike upstream, which answers 400)', () => {
  let s: DaemonSnapshot = initialTransition(daemonMachine)[0];
  s = transition(daemonMachine, s, { type: 'TAKEOVER', reason: 'api' })[0];
  s = transition(daemonMachine, s, failed('restoreState', Object.assign(new Error('connect ECONNREFUSED /run/sup.sock'), { code: 'ECONNREFUSED' })))[0];
  assert.equal(stateKey(s), 'INIT.idle');
  assert.deepEqual(s.context.lastError, {
    code: 'ERR_DAEMON_UPGRADE',
    message: 'connect ECONNREFUSED /run/sup.sock',
    actor: 'restoreState',
  });
  assert.ok(accepts(s, 'TAKEOVER'));
});

test('toErrorInfo keeps catalogue codes and maps anything else to the actor default', () => {
  assert.deepEqual(toErrorInfo('startService', new DaemonError('ERR_DAEMON_NOT_READY', 'x')), { code: 'ERR_DAEMON_NOT_READY', message: 'x', actor: 'startService' });
  assert.deepEqual(toErrorInfo('mountSession', Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })), {
    code: 'ERR_FUSE_MOUNT',
    message: 'EACCES: permission denied',
    actor: 'mountSession',
  });
  assert.deepEqual(toErrorInfo('unmountSession', 'plain string'), { code: ACTOR_DEFAULT_CODES.unmountSession, message: 'plain string', actor: 'unmountSession' });
  assert.deepEqual(toErrorInfo('stopService', undefined), { code: 'ERR_FUSE_SESSION', message: 'undefined', actor: 'stopService' });
});

test('every actor runs in the leaves the spec names', () => {
  for (const key of DAEMON_STATE_KEYS) {
    const want = Object.entries(ACTOR_STATES).find(([, keys]) => keys.includes(key))?.[0];
    assert.equal(invokedActor(snapshotAt(key)), want, key);
  }
});

test('image changes are refused while awaiting a takeover or while the predecessor holds the journal', () => {
  for (const parent of ['INIT', 'READY', 'RUNNING']) {
    for (const type of ['MOUNT_IMAGE', 'REMOUNT_IMAGE', 'UMOUNT_IMAGE'] as const) {
      assert.ok(accepts(snapshotAt(`${parent}.idle`), type));
      assert.ok(!accepts(snapshotAt(`${parent}.idle`, { awaitingTakeover: true }), type), `${parent} ${type} awaiting`);
      assert.ok(!accepts(snapshotAt(`${parent}.idle`, { journalDeferred: true }), type), `${parent} ${type} deferred`);
    }
  }
  // A takeover ends the wait; the journal's release ends the other.
  let s: DaemonSnapshot = initialTransition(daemonMachine, { awaitingTakeover: true, journalDeferred: true })[0];
  s = transition(daemonMachine, s, { type: 'TAKEOVER', reason: 'api' })[0];
  s = transition(daemonMachine, s, { type: 'JOURNAL_ATTACHED', reason: 'startup' })[0];
  assert.equal(stateKey(s), 'UPGRADING', 'the journal may be released while restoreState runs');
  s = transition(daemonMachine, s, done('restoreState', { connId: 5, config: { '/:registry_auth': 'dTpw' } }))[0];
  assert.deepEqual([s.context.awaitingTakeover, s.context.journalDeferred, s.context.config], [false, false, { '/:registry_auth': 'dTpw' }]);
  assert.ok(accepts(s, 'MOUNT_IMAGE'));
});

test('composite triggers: API exit never unmounts, SIGTERM unmounts; refused while an actor runs', () => {
  const path = (trigger: 'TRIGGER_EXIT' | 'TRIGGER_STOP', key: string) => triggerPath(trigger, key)?.map((p) => (p.actor ? `${p.state}:${p.actor}` : p.state)) ?? null;
  assert.deepEqual(path('TRIGGER_EXIT', 'INIT.idle'), ['STOPPED']);
  assert.deepEqual(path('TRIGGER_EXIT', 'READY.idle'), ['STOPPED']);
  assert.deepEqual(path('TRIGGER_EXIT', 'RUNNING.idle'), ['RUNNING.interrupting:interruptService', 'STOPPED']);
  assert.deepEqual(path('TRIGGER_EXIT', 'INTERRUPTED.idle'), ['STOPPED']);
  assert.deepEqual(path('TRIGGER_STOP', 'INIT.idle'), ['STOPPED']);
  assert.deepEqual(path('TRIGGER_STOP', 'READY.idle'), ['READY.unmounting:unmountSession', 'STOPPED']);
  assert.deepEqual(path('TRIGGER_STOP', 'RUNNING.idle'), ['RUNNING.stopping:stopService', 'READY.unmounting:unmountSession', 'STOPPED']);
  assert.deepEqual(path('TRIGGER_STOP', 'INTERRUPTED.idle'), ['STOPPED']);
  for (const key of Object.keys(EXPECTED).filter((k) => TAGS[k].includes('busy'))) {
    assert.equal(path('TRIGGER_EXIT', key), null, key);
    assert.equal(path('TRIGGER_STOP', key), null, key);
  }
  // A failing actor ends the trigger where its onError leads, nothing pending.
  let s = transition(daemonMachine, snapshotAt('RUNNING.idle'), { type: 'TRIGGER_STOP', reason: 'connection-lost' })[0];
  assert.equal(s.context.pending, 'stop');
  s = transition(daemonMachine, s, failed('stopService', new Error('x')))[0];
  assert.deepEqual([stateKey(s), s.context.pending, s.context.endReason], ['RUNNING.idle', null, 'connection-lost']);
  // A plain STOP after it is one step again.
  s = transition(daemonMachine, s, { type: 'STOP', reason: 'api' })[0];
  s = transition(daemonMachine, s, done('stopService'))[0];
  assert.equal(stateKey(s), 'READY.idle');
});
