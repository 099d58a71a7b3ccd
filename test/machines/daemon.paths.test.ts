// Path coverage with xstate/graph: getShortestPaths and getSimplePaths traverse the
// invoke states when given the actors' `xstate.done.actor.*` / `xstate.error.actor.*`
// events explicitly. Every path found is replayed against the machine running as an
// actor with fake effects (a done step resolves the parked fake, an error step rejects
// it), and the live state, reported state and tags (and context, for the shortest
// paths, which are keyed by it) must match at every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, fromPromise, waitFor } from 'xstate';
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import type { StatePath } from 'xstate/graph';
import { DAEMON_ACTORS, DAEMON_EVENT_TYPES, daemonMachine, reportedState, stateKey } from '../../machines/daemon.js';
import type { DaemonActorInput, DaemonActorName, DaemonEvent, DaemonSnapshot, SessionOutput } from '../../machines/daemon.js';
import { EXPECTED } from './daemon-spec.js';

const ERROR = { code: 'ERR_FUSE_SESSION', message: 'injected failure' };
const OUTPUT = { connId: 4242, config: { '/:proxy_url': 'http://old' } };

/** Every event a path may take: the external ones and each actor's completion and failure. */
const EVENTS = [
  ...DAEMON_EVENT_TYPES.map((type) => ({ type, reason: 'api', mountpoint: '/sub', id: '/', values: { proxy_url: 'http://p' } }) as DaemonEvent),
  ...DAEMON_ACTORS.flatMap((a) => [
    { type: `xstate.done.actor.${a}`, output: OUTPUT } as unknown as DaemonEvent,
    { type: `xstate.error.actor.${a}`, error: ERROR } as unknown as DaemonEvent,
  ]),
];

type Path = StatePath<DaemonSnapshot, DaemonEvent>;

/** Replays one path on a live actor whose fake actors park until the path says how they end. */
async function replayPath(path: Path, compareContext: boolean): Promise<Array<[string, string, string]>> {
  const parked = new Map<DaemonActorName, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const actors = Object.fromEntries(
    DAEMON_ACTORS.map((a) => [
      a,
      fromPromise<SessionOutput & void, DaemonActorInput>(
        () => new Promise((resolve, reject) => parked.set(a, { resolve: resolve as (v: unknown) => void, reject })),
      ),
    ]),
  );
  const actor = createActor(daemonMachine.provide({ actors: actors as never })).start();
  const edges: Array<[string, string, string]> = [];
  try {
    for (const step of path.steps) {
      const before = stateKey(actor.getSnapshot());
      const type: string = step.event.type;
      const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(type);
      if (type === 'xstate.init') {
        // the initial state: nothing to send
      } else if (m) {
        const p = parked.get(m[2] as DaemonActorName);
        assert.ok(p, `${m[2]} is running when the path completes it`);
        parked.delete(m[2] as DaemonActorName);
        if (m[1] === 'done') p.resolve(OUTPUT);
        else p.reject(ERROR);
        await waitFor(actor, (s) => stateKey(s) !== before);
      } else {
        actor.send(step.event);
      }
      const live = actor.getSnapshot();
      assert.equal(stateKey(live), stateKey(step.state), `after ${step.event.type}`);
      assert.equal(reportedState(live), reportedState(step.state));
      if (compareContext) assert.deepEqual(live.context, step.state.context);
      assert.deepEqual([...live.tags].sort(), [...step.state.tags].sort());
      if (type !== 'xstate.init') edges.push([before, type, stateKey(live)]);
    }
  } finally {
    actor.stop();
  }
  return edges;
}

/** Every edge of the spec, in the same [from, event type, to] form as the walker records. */
function specEdges(): Set<string> {
  const out = new Set<string>();
  for (const [from, row] of Object.entries(EXPECTED)) {
    for (const [type, want] of Object.entries(row)) {
      if (want === null) continue;
      out.add(JSON.stringify([from, type, want.next]));
      if (want.actor) {
        out.add(JSON.stringify([want.next, `xstate.done.actor.${want.actor}`, want.onDone]));
        out.add(JSON.stringify([want.next, `xstate.error.actor.${want.actor}`, want.onError]));
      }
    }
  }
  return out;
}

const serializeFull = (s: DaemonSnapshot) => stateKey(s) + JSON.stringify(s.context);

/** Replays `paths` once per process, whichever test asks first; the edges they took. */
function memoWalk(find: () => Path[], compareContext: boolean): () => Promise<{ paths: Path[]; edges: Set<string> }> {
  let walk: Promise<{ paths: Path[]; edges: Set<string> }> | undefined;
  return () =>
    (walk ??= (async () => {
      const paths = find();
      const edges = new Set<string>();
      for (const p of paths) for (const e of await replayPath(p, compareContext)) edges.add(JSON.stringify(e));
      return { paths, edges };
    })());
}

const shortest = memoWalk(() => getShortestPaths(daemonMachine, { events: EVENTS, serializeState: serializeFull }), true);
// Simple paths share one snapshot per state key (and trigger under way, which decides where
// an actor's success leads), so only state, reported state and tags are compared.
const simple = memoWalk(() => getSimplePaths(daemonMachine, { events: EVENTS, serializeState: (s) => `${stateKey(s)} ${s.context.pending}` }), false);

test('shortest paths (keyed by state and context) reach every leaf state and replay on a live actor', async () => {
  const { paths } = await shortest();
  const reached = new Set(paths.map((p) => stateKey(p.state)));
  assert.deepEqual([...reached].sort(), Object.keys(EXPECTED).sort());
});

test('simple paths (keyed by state) replay on a live actor', async () => {
  const { paths } = await simple();
  assert.ok(paths.length > 20, `${paths.length} simple paths`);
});

test('together the paths took the transitions of the spec, and only cycles back to a reached state are left', async () => {
  // Simple paths never return to a visited state, so the failure edges come from the shortest paths.
  const walked = new Set([...(await shortest()).edges, ...(await simple()).edges]);
  const spec = specEdges();
  assert.deepEqual([...walked].filter((e) => !spec.has(e)), [], 'no walked transition is missing from the spec');
  // A path ends where it meets a state it has seen: a config change or journal release that
  // changes nothing, and an image change or sendfd that succeeds, lead back to one. The
  // state × event test of daemon.transition.test.ts covers those edges.
  const left = [...spec].filter((e) => !walked.has(e)).map((e) => JSON.parse(e) as [string, string, string]);
  for (const [from, type, to] of left) {
    const cycle = from === to || /^xstate\.done\.actor\.(changeImage|sendFd)$/.test(type);
    assert.ok(cycle, `${from} --${type}--> ${to} was never walked`);
  }
});
