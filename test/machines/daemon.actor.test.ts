// The machine running as an actor with fake effects provided through `.provide()`:
// what each actor receives, what the reported state is while it runs, failures,
// the unprovided placeholders, abort on stop, and the composite triggers played out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, fromPromise, waitFor } from 'xstate';
import type { Actor } from 'xstate';
import { DAEMON_ACTORS, daemonMachine, initialContext, reportedState, stateKey } from '../../machines/daemon.js';
import type { DaemonActorInput, DaemonActorName, DaemonEvent, DaemonMachine, SessionOutput } from '../../machines/daemon.js';
import { FuseError } from '../../src/errors.js';

interface Call {
  actor: DaemonActorName;
  input: DaemonActorInput;
  signal: AbortSignal;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Fake actors that park each call until the test settles it (or settle at once with `auto`). */
function fakes(auto?: Partial<Record<DaemonActorName, 'ok' | Error | undefined>>) {
  const calls: Call[] = [];
  const make = (actor: DaemonActorName) =>
    fromPromise<SessionOutput & void, DaemonActorInput>(
      ({ input, signal }) =>
        new Promise((resolve, reject) => {
          calls.push({ actor, input, signal, resolve: resolve as (v: unknown) => void, reject });
          const a = auto?.[actor];
          if (a === 'ok') resolve({ connId: 41, config: {} } as unknown as SessionOutput & void);
          else if (a instanceof Error) reject(a);
        }),
    );
  const actors = Object.fromEntries(DAEMON_ACTORS.map((a) => [a, make(a)]));
  return { calls, machine: daemonMachine.provide({ actors: actors as never }) };
}

const allOk = Object.fromEntries(DAEMON_ACTORS.map((a) => [a, 'ok'])) as Record<DaemonActorName, 'ok'>;
const settled = (actor: Actor<DaemonMachine>) => waitFor(actor, (s) => !s.hasTag('busy'));

test('normal start: INIT until mounted, READY until serving, RUNNING after; SIGTERM unmounts', async () => {
  const { calls, machine } = fakes();
  const actor = createActor(machine).start();
  actor.send({ type: 'MOUNT', reason: 'startup' });
  assert.equal(stateKey(actor.getSnapshot()), 'INIT.mounting');
  assert.equal(reportedState(actor.getSnapshot()), 'INIT');
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0].input, { reason: 'startup', connId: null });
  actor.send({ type: 'MOUNT', reason: 'api' });
  actor.send({ type: 'STOP', reason: 'signal' });
  assert.equal(calls.length, 1, 'events are refused while an actor runs');
  calls[0].resolve({ connId: 0x2a00005 });
  await settled(actor);
  assert.equal(reportedState(actor.getSnapshot()), 'READY');
  assert.equal(actor.getSnapshot().context.connId, 0x2a00005);

  actor.send({ type: 'START', reason: 'startup' });
  assert.equal(reportedState(actor.getSnapshot()), 'READY', 'not RUNNING before the session reads /dev/fuse');
  assert.ok(!actor.getSnapshot().hasTag('serving'));
  assert.deepEqual(calls[1].input, { reason: 'startup', connId: 0x2a00005 });
  calls[1].resolve(undefined);
  await settled(actor);
  assert.equal(reportedState(actor.getSnapshot()), 'RUNNING');
  assert.ok(actor.getSnapshot().hasTag('serving'));

  actor.send({ type: 'TRIGGER_STOP', reason: 'signal' });
  assert.equal(stateKey(actor.getSnapshot()), 'RUNNING.stopping');
  calls[2].resolve(undefined);
  await waitFor(actor, () => calls.length === 4);
  assert.equal(stateKey(actor.getSnapshot()), 'READY.unmounting', 'SIGTERM goes on to unmount by itself');
  assert.deepEqual(calls[3].input, { reason: 'signal', connId: 0x2a00005 }, 'the trigger reason reaches the chained actor');
  calls[3].resolve(undefined);
  await settled(actor);
  assert.deepEqual(calls.map((c) => c.actor), ['mountSession', 'startService', 'stopService', 'unmountSession']);
  assert.equal(actor.getSnapshot().status, 'done');
  assert.deepEqual(actor.getSnapshot().output, { endReason: 'signal', lastError: null });
});

test('hot upgrade, new daemon: TAKEOVER reports UPGRADING, then READY; START serves the inherited connection', async () => {
  const { calls, machine } = fakes();
  const actor = createActor(machine).start();
  actor.send({ type: 'TAKEOVER', reason: 'api' });
  assert.equal(reportedState(actor.getSnapshot()), 'UPGRADING');
  assert.ok(!actor.getSnapshot().hasTag('has-fuse-connection'));
  calls[0].resolve({ connId: 77 });
  await settled(actor);
  const s = actor.getSnapshot();
  assert.equal(reportedState(s), 'READY');
  assert.deepEqual(s.context, { ...initialContext(), connId: 77, restored: true, reason: 'api' });
  actor.send({ type: 'START', reason: 'api' });
  calls[1].resolve(undefined);
  await settled(actor);
  assert.equal(reportedState(actor.getSnapshot()), 'RUNNING');
  assert.deepEqual(calls[1].input, { reason: 'api', connId: 77 });
});

test('hot upgrade, old daemon: API exit stops reading /dev/fuse and leaves without unmounting', async () => {
  const { calls, machine } = fakes(allOk);
  const actor = createActor(machine).start();
  actor.send({ type: 'MOUNT', reason: 'startup' });
  await settled(actor);
  actor.send({ type: 'START', reason: 'startup' });
  await settled(actor);
  const seen: string[] = [];
  actor.subscribe((s) => seen.push(stateKey(s)));
  actor.send({ type: 'TRIGGER_EXIT', reason: 'api' });
  await settled(actor);
  assert.ok(seen.includes('RUNNING.interrupting'));
  assert.ok(!seen.includes('INTERRUPTED.idle'), 'API exit leaves straight from interrupting');
  assert.ok(!calls.some((c) => c.actor === 'unmountSession'));
  assert.deepEqual(calls.map((c) => c.actor), ['mountSession', 'startService', 'interruptService']);
  assert.equal(reportedState(actor.getSnapshot()), 'STOPPED');
  assert.equal(actor.getSnapshot().context.endReason, 'exit');
  // A SIGTERM that follows (upstream's self-SIGTERM after exit) is refused: nothing left to do.
  assert.equal(actor.getSnapshot().can({ type: 'TRIGGER_STOP', reason: 'signal' }), false);
});

test('each failing actor moves back with {code, message, actor} recorded', async () => {
  const paths: Array<{ actor: DaemonActorName; prelude: DaemonEvent['type'][]; trigger: DaemonEvent['type']; back: string }> = [
    { actor: 'mountSession', prelude: [], trigger: 'MOUNT', back: 'INIT.idle' },
    { actor: 'restoreState', prelude: [], trigger: 'TAKEOVER', back: 'INIT.idle' },
    { actor: 'startService', prelude: ['MOUNT'], trigger: 'START', back: 'READY.idle' },
    { actor: 'unmountSession', prelude: ['MOUNT'], trigger: 'STOP', back: 'READY.idle' },
    { actor: 'stopService', prelude: ['MOUNT', 'START'], trigger: 'STOP', back: 'RUNNING.idle' },
    { actor: 'interruptService', prelude: ['MOUNT', 'START'], trigger: 'EXIT', back: 'RUNNING.idle' },
    { actor: 'changeImage', prelude: ['MOUNT'], trigger: 'MOUNT_IMAGE', back: 'READY.idle' },
    { actor: 'sendFd', prelude: ['MOUNT', 'START'], trigger: 'SEND_FD', back: 'RUNNING.idle' },
  ];
  for (const p of paths) {
    const err = new FuseError('ERR_FUSE_SESSION', `failed to ${p.actor}: injected`);
    const { calls, machine } = fakes({ ...allOk, [p.actor]: err });
    const actor = createActor(machine).start();
    for (const type of p.prelude) {
      actor.send({ type, reason: 'api' });
      await settled(actor);
    }
    actor.send({ type: p.trigger, reason: 'api' });
    await settled(actor);
    const s = actor.getSnapshot();
    assert.equal(stateKey(s), p.back, p.actor);
    assert.deepEqual(s.context.lastError, { code: 'ERR_FUSE_SESSION', message: `failed to ${p.actor}: injected`, actor: p.actor });
    assert.equal(calls.at(-1)!.actor, p.actor);
    // The next accepted event clears it.
    const retry = p.trigger === 'STOP' || p.trigger === 'EXIT' ? 'EXIT' : p.trigger;
    actor.send({ type: retry, reason: 'api' });
    assert.equal(actor.getSnapshot().context.lastError, null, `${p.actor}: error cleared by ${retry}`);
    actor.stop();
  }
});

test('SIGTERM whose unmount fails: the trigger stops there, then EXIT still reaches STOPPED', async () => {
  const { machine } = fakes({ ...allOk, unmountSession: new Error('umount: target is busy') });
  const actor = createActor(machine).start();
  actor.send({ type: 'MOUNT', reason: 'startup' });
  await settled(actor);
  actor.send({ type: 'START', reason: 'startup' });
  await settled(actor);
  actor.send({ type: 'TRIGGER_STOP', reason: 'signal' });
  await settled(actor);
  const s = actor.getSnapshot();
  assert.equal(stateKey(s), 'READY.idle');
  assert.equal(s.context.pending, null);
  assert.deepEqual(s.context.lastError, { code: 'ERR_FUSE_MOUNT', message: 'umount: target is busy', actor: 'unmountSession' });
  actor.send({ type: 'EXIT', reason: 'signal' });
  assert.equal(actor.getSnapshot().status, 'done');
});

test('the unprovided definition rejects every actor with ERR_DAEMON_UNSUPPORTED', async () => {
  const actor = createActor(daemonMachine).start();
  actor.send({ type: 'MOUNT', reason: 'startup' });
  await settled(actor);
  const s = actor.getSnapshot();
  assert.equal(stateKey(s), 'INIT.idle');
  assert.equal(s.context.lastError?.code, 'ERR_DAEMON_UNSUPPORTED');
  assert.match(s.context.lastError!.message, /mountSession: actor not provided/);
  actor.send({ type: 'TAKEOVER', reason: 'api' });
  await settled(actor);
  assert.equal(actor.getSnapshot().context.lastError?.actor, 'restoreState');
});

test('an image change carries its event to the actor; a config change runs the provided applyConfig action', async () => {
  const { calls, machine } = fakes({ ...allOk, changeImage: undefined });
  const applied: Array<[string, Record<string, string>]> = [];
  const actor = createActor(machine.provide({ actions: { applyConfig: ({ context, event }) => void applied.push([event.id ?? '', { ...context.config }]) } })).start();
  actor.send({ type: 'MOUNT', reason: 'startup' });
  await settled(actor);
  const cmd = { source: '/b', fs_type: 'rafs', config: '{}', prefetch_files: null };
  actor.send({ type: 'MOUNT_IMAGE', reason: 'api', mountpoint: '/sub', cmd });
  assert.deepEqual(calls.at(-1)!.input, { reason: 'api', connId: 41, op: 'mount', mountpoint: '/sub', cmd });
  actor.send({ type: 'SET_CONFIG', reason: 'api', id: '/sub', values: { registry_auth: 'dTpw' } });
  assert.deepEqual(applied, [['/sub', { '/sub:registry_auth': 'dTpw' }]], 'the action sees the stored config, even while an actor runs');
  calls.at(-1)!.resolve(undefined);
  await settled(actor);
  assert.equal(stateKey(actor.getSnapshot()), 'READY.idle');
});

test('stopping the machine aborts the running actor through its AbortSignal', async () => {
  const { calls, machine } = fakes();
  const actor = createActor(machine).start();
  actor.send({ type: 'TAKEOVER', reason: 'api' });
  const { signal } = calls[0];
  assert.equal(signal.aborted, false);
  actor.stop();
  assert.equal(signal.aborted, true);
});

test('a persisted snapshot is plain JSON and restores to the same state', async () => {
  const { machine } = fakes(allOk);
  const actor = createActor(machine).start();
  actor.send({ type: 'MOUNT', reason: 'startup' });
  await settled(actor);
  actor.send({ type: 'START', reason: 'startup' });
  await settled(actor);
  const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
  const again = createActor(machine, { snapshot: persisted }).start();
  assert.equal(stateKey(again.getSnapshot()), 'RUNNING.idle');
  assert.deepEqual(again.getSnapshot().context, actor.getSnapshot().context);
});
