// The machine as data: pure `initialTransition`/`transition` over every leaf state ×
// every event, held against the hand-written spec; refused events change nothing;
// tags, reported state, error recording, and the composite-trigger plans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialTransition, transition } from 'xstate';
import {
  ACTOR_DEFAULT_CODES,
  DAEMON_ACTORS,
  DAEMON_EVENT_TYPES,
  daemonMachine,
  reportedState,
  stateKey,
  toErrorInfo,
} from '../../machines/daemon.js';
import type { DaemonEvent, DaemonSnapshot } from '../../machines/daemon.js';
import { DAEMON_STATE_KEYS, accepts, eventOutcome, lifecycleTable, planTrigger, snapshotAt } from '../../machines/daemon-table.js';
import { ACTOR_STATE, EXPECTED, REPORTED, TAGS } from './daemon-spec.js';
import { DaemonError } from '../../src/errors.js';

const done = (actor: string, output: unknown = { connId: 7 }) => ({ type: `xstate.done.actor.${actor}`, output }) as unknown as DaemonEvent;
const failed = (actor: string, error: unknown) => ({ type: `xstate.error.actor.${actor}`, error }) as unknown as DaemonEvent;

test('the machine starts resting in INIT with an empty, JSON-clean context', () => {
  const [s, actions] = initialTransition(daemonMachine);
  assert.equal(stateKey(s), 'INIT.idle');
  assert.equal(reportedState(s), 'INIT');
  assert.deepEqual(s.context, { connId: null, lastError: null, stopReason: null, restored: false });
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
      const ev: DaemonEvent = { type, reason: 'signal' };
      const [next, actions] = transition(daemonMachine, from, ev);
      assert.equal(accepts(from, type), want !== null, `${key} accepts ${type}`);
      assert.equal(accepts(key, type), want !== null);
      if (want === null) {
        assert.equal(stateKey(next), key, `${key} refuses ${type}`);
        assert.deepEqual(next.context, from.context, `${key} refusing ${type} keeps context`);
        assert.deepEqual(actions, []);
        continue;
      }
      assert.equal(stateKey(next), want.next, `${key} + ${type}`);
      assert.equal(next.context.lastError, null, 'an accepted event clears the last error');
      if (type === 'STOP' || type === 'EXIT') assert.equal(next.context.stopReason, 'signal');
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
      // Every other event, external or another actor's completion, is refused meanwhile.
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
  s = transition(daemonMachine, s, { type: 'EXIT', reason: 'api' })[0];
  assert.equal(s.status, 'done');
  assert.deepEqual(s.output, { stopReason: 'api', lastError: null });
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

test('every actor runs in the leaf the spec names', () => {
  for (const [actor, key] of Object.entries(ACTOR_STATE)) {
    assert.ok(snapshotAt(key)._nodes.some((n) => n.invoke.some((i) => i.id === actor && i.src === actor)), `${actor} in ${key}`);
  }
});

test('composite triggers: API exit never unmounts, SIGTERM unmounts; nothing is planned while busy', () => {
  const plan = (trigger: 'exit' | 'stop', key: string) => planTrigger(trigger, snapshotAt(key), 'signal')?.map((e) => e.type) ?? null;
  assert.deepEqual(plan('exit', 'INIT.idle'), ['STOP']);
  assert.deepEqual(plan('exit', 'READY.idle'), ['EXIT']);
  assert.deepEqual(plan('exit', 'RUNNING.idle'), ['EXIT', 'EXIT']);
  assert.deepEqual(plan('exit', 'INTERRUPTED'), ['EXIT']);
  assert.deepEqual(plan('exit', 'STOPPED'), []);
  assert.deepEqual(plan('stop', 'INIT.idle'), ['STOP']);
  assert.deepEqual(plan('stop', 'READY.idle'), ['STOP']);
  assert.deepEqual(plan('stop', 'RUNNING.idle'), ['STOP', 'STOP']);
  assert.deepEqual(plan('stop', 'INTERRUPTED'), ['STOP']);
  assert.deepEqual(plan('stop', 'STOPPED'), []);
  for (const key of Object.keys(EXPECTED).filter((k) => TAGS[k].includes('busy'))) {
    assert.equal(plan('exit', key), null, key);
    assert.equal(plan('stop', key), null, key);
  }
  assert.deepEqual(planTrigger('stop', snapshotAt('RUNNING.idle'), 'connection-lost'), [
    { type: 'STOP', reason: 'connection-lost' },
    { type: 'STOP', reason: 'connection-lost' },
  ]);
  // Walking each plan purely (actors succeeding) ends in STOPPED, through the unmount only for SIGTERM.
  for (const trigger of ['exit', 'stop'] as const) {
    for (const key of ['INIT.idle', 'READY.idle', 'RUNNING.idle', 'INTERRUPTED']) {
      let s = snapshotAt(key);
      const actors: string[] = [];
      for (const ev of planTrigger(trigger, s, 'api')!) {
        s = transition(daemonMachine, s, ev)[0];
        const actor = Object.entries(ACTOR_STATE).find(([, k]) => k === stateKey(s))?.[0];
        if (actor) {
          actors.push(actor);
          s = transition(daemonMachine, s, done(actor))[0];
        }
      }
      assert.equal(stateKey(s), 'STOPPED', `${trigger} from ${key}`);
      assert.equal(actors.includes('unmountSession'), trigger === 'stop' && key.startsWith('R'), `${trigger} from ${key}: ${actors}`);
    }
  }
});
