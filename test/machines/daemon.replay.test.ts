// The journal replayed through the pure machine: a hand-written record list of a failover
// successor (input, takeover, journal release, config change, a failed image change, API
// exit) folds to the state and context a live actor fed the same events reaches; records
// of earlier processes are skipped; a journal without a start record is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, fromPromise, waitFor } from 'xstate';
import { DAEMON_ACTORS, daemonMachine, initialContext, stateKey } from '../../machines/daemon.js';
import type { DaemonActorInput } from '../../machines/daemon.js';
import { replayDaemon, type ReplayRecord } from '../../machines/daemon-replay.js';

const RECORDS: ReplayRecord[] = [
  // An earlier process: ignored.
  { type: 'start', input: { awaitingTakeover: false, journalDeferred: false } },
  { type: 'event', event: 'SET_CONFIG', reason: 'api', data: { id: '/', values: { proxy_url: 'http://old' } } },
  // This one.
  { type: 'start', input: { awaitingTakeover: true, journalDeferred: true } },
  { type: 'event', event: 'TAKEOVER', reason: 'api' },
  { type: 'transition' },
  { type: 'event', event: 'JOURNAL_ATTACHED', reason: 'startup' },
  { type: 'actor', actor: 'restoreState', ok: true, output: { connId: 49, config: { '/:registry_auth': 'dTpw' } } },
  { type: 'outcome' },
  { type: 'event', event: 'START', reason: 'api' },
  { type: 'actor', actor: 'startService', ok: true },
  { type: 'event', event: 'SET_CONFIG', reason: 'api', data: { id: '/v6', values: { proxy_url: 'http://p' } } },
  { type: 'event', event: 'MOUNT_IMAGE', reason: 'api', data: { mountpoint: '/v6' } },
  { type: 'mount' },
  { type: 'actor', actor: 'changeImage', ok: false, error: { code: 'ERR_DAEMON_MOUNT_EXISTS', message: 'failed to mount at /v6: taken' } },
];

test('a journal replays to the state and context a live actor fed the same events reaches', async () => {
  const replayed = replayDaemon(RECORDS);
  assert.equal(stateKey(replayed), 'RUNNING.idle');
  assert.deepEqual(replayed.context, {
    ...initialContext(),
    connId: 49,
    reason: 'api',
    restored: true,
    lastError: { code: 'ERR_DAEMON_MOUNT_EXISTS', message: 'failed to mount at /v6: taken', actor: 'changeImage' },
    config: { '/:registry_auth': 'dTpw', '/v6:proxy_url': 'http://p' },
  });

  // The same run, live: actors settle as the records say.
  const outcome: Record<string, () => Promise<unknown>> = {
    restoreState: async () => ({ connId: 49, config: { '/:registry_auth': 'dTpw' } }),
    startService: async () => undefined,
    changeImage: async () => {
      throw Object.assign(new Error('failed to mount at /v6: taken'), { code: 'ERR_DAEMON_MOUNT_EXISTS' });
    },
  };
  const actors = Object.fromEntries(DAEMON_ACTORS.map((a) => [a, fromPromise<unknown, DaemonActorInput>(() => outcome[a]())]));
  const live = createActor(daemonMachine.provide({ actors: actors as never }), { input: { awaitingTakeover: true, journalDeferred: true } }).start();
  const idle = () => waitFor(live, (s) => !s.hasTag('busy'));
  live.send({ type: 'TAKEOVER', reason: 'api' });
  live.send({ type: 'JOURNAL_ATTACHED', reason: 'startup' });
  await idle();
  live.send({ type: 'START', reason: 'api' });
  await idle();
  live.send({ type: 'SET_CONFIG', reason: 'api', id: '/v6', values: { proxy_url: 'http://p' } });
  live.send({ type: 'MOUNT_IMAGE', reason: 'api', mountpoint: '/v6' });
  await idle();
  assert.equal(stateKey(live.getSnapshot()), stateKey(replayed));
  assert.deepEqual(live.getSnapshot().context, replayed.context);

  // API exit from there: replayed to STOPPED with the end reason `exit`.
  const done = replayDaemon([
    ...RECORDS,
    { type: 'event', event: 'TRIGGER_EXIT', reason: 'api' },
    { type: 'actor', actor: 'interruptService', ok: true },
  ]);
  assert.equal(done.status, 'done');
  assert.deepEqual(done.output, { endReason: 'exit', lastError: null });
});

test('a journal without a start record cannot be replayed', () => {
  assert.throws(() => replayDaemon(RECORDS.filter((r) => r.type !== 'start')), /no start record/);
});
