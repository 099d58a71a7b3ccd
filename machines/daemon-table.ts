// Questions answered from the daemon machine definition alone, with xstate's pure
// `transition()`: which states exist, whether a state accepts an event, where an
// accepted event leads (through which actor, and where its success and failure
// lead), and which event sequences the composite triggers (API exit, SIGTERM) send.
import { transition } from 'xstate';
import type { AnyStateNode, StateValue } from 'xstate';
import { DAEMON_EVENT_TYPES, daemonMachine, reportedState, stateKey } from './daemon.js';
import type {
  DaemonActorName,
  DaemonContext,
  DaemonEvent,
  DaemonEventType,
  DaemonSnapshot,
  DaemonStateName,
  EventReason,
} from './daemon.js';

function leafKeys(node: AnyStateNode): string[] {
  const children = Object.values(node.states) as AnyStateNode[];
  if (children.length === 0) return [node.path.join('.')];
  return children.flatMap(leafKeys);
}

/** Every leaf state of the machine as a dotted key (`INIT.idle`, `READY.starting`, ...), in definition order. */
export const DAEMON_STATE_KEYS: readonly string[] = leafKeys(daemonMachine.root);

function keyToValue(key: string): StateValue {
  const [head, ...rest] = key.split('.');
  return rest.length === 0 ? head : { [head]: keyToValue(rest.join('.')) };
}

/** A snapshot resting in the leaf state `key`, with the initial context unless one is given. */
export function snapshotAt(key: string, context?: Partial<DaemonContext>): DaemonSnapshot {
  if (!DAEMON_STATE_KEYS.includes(key)) throw new TypeError(`unknown daemon state: ${key}`);
  const base = daemonMachine.config.context as DaemonContext;
  return daemonMachine.resolveState({ value: keyToValue(key), context: { ...base, ...context } });
}

/**
 * Whether the machine in `state` (a snapshot or a leaf state key) accepts an event of
 * this type. A refused event is what the API answers with 400 UnexpectedEvent.
 */
export function accepts(state: DaemonSnapshot | string, type: DaemonEventType): boolean {
  const snapshot = typeof state === 'string' ? snapshotAt(state) : state;
  if (snapshot.status !== 'active') return false;
  return snapshot.can({ type, reason: 'api' });
}

/** Where an event leads from one leaf state. */
export type EventOutcome =
  | { accepted: false }
  | {
      accepted: true;
      /** The leaf state entered at once. */
      next: string;
      /** The actor that runs in `next`, if any. */
      actor?: DaemonActorName;
      /** Where the actor's success leads (a leaf state key). */
      onDone?: string;
      /** Where the actor's failure leads (a leaf state key). */
      onError?: string;
    };

function invokedActor(snapshot: DaemonSnapshot): DaemonActorName | undefined {
  for (const node of snapshot._nodes) {
    const inv = node.invoke[0];
    if (inv !== undefined) return inv.id as DaemonActorName;
  }
  return undefined;
}

/** Computes, from the definition, what an event of `type` does in the leaf state `key`. */
export function eventOutcome(key: string, type: DaemonEventType): EventOutcome {
  const from = snapshotAt(key);
  if (!accepts(from, type)) return { accepted: false };
  const [next] = transition(daemonMachine, from, { type, reason: 'api' });
  const actor = invokedActor(next);
  if (actor === undefined) return { accepted: true, next: stateKey(next) };
  // The completion events an invoked actor produces, sent by hand: the machine is pure.
  const done = { type: `xstate.done.actor.${actor}`, output: { connId: null } } as unknown as DaemonEvent;
  const failed = { type: `xstate.error.actor.${actor}`, error: new Error('failed') } as unknown as DaemonEvent;
  const [afterDone] = transition(daemonMachine, next, done);
  const [afterError] = transition(daemonMachine, next, failed);
  return { accepted: true, next: stateKey(next), actor, onDone: stateKey(afterDone), onError: stateKey(afterError) };
}

/** One row of the lifecycle table: a leaf state and what every event gets there. */
export interface LifecycleRow {
  state: string;
  reported: DaemonStateName;
  busy: boolean;
  tags: string[];
  events: Record<DaemonEventType, EventOutcome>;
}

/** The whole state × event table, computed from the machine definition. */
export function lifecycleTable(): LifecycleRow[] {
  return DAEMON_STATE_KEYS.map((key) => {
    const snap = snapshotAt(key);
    const events = {} as Record<DaemonEventType, EventOutcome>;
    for (const type of DAEMON_EVENT_TYPES) events[type] = eventOutcome(key, type);
    return {
      state: key,
      reported: reportedState(snap),
      busy: snap.hasTag('busy'),
      tags: [...snap.tags].sort(),
      events,
    };
  });
}

/** The composite triggers of upstream's `NydusDaemon`: API exit and process shutdown. */
export type DaemonTrigger = 'exit' | 'stop';

const TRIGGER_PLANS: Record<DaemonTrigger, Record<DaemonStateName, DaemonEventType[] | null>> = {
  // API exit: stop serving but never unmount, so a successor keeps the connection.
  exit: { INIT: ['STOP'], READY: ['EXIT'], RUNNING: ['EXIT', 'EXIT'], INTERRUPTED: ['EXIT'], UPGRADING: null, STOPPED: [] },
  // SIGTERM/SIGINT: stop reading /dev/fuse, then unmount (from INTERRUPTED the successor owns the mount).
  stop: { INIT: ['STOP'], READY: ['STOP'], RUNNING: ['STOP', 'STOP'], INTERRUPTED: ['STOP'], UPGRADING: null, STOPPED: [] },
};

/**
 * The events the controller sends, one after another (each after the previous one has
 * settled), for a composite trigger. Null while an actor runs: wait for it to settle
 * and plan again. Stop at the first step that fails (the machine then rests with
 * `lastError` set); see docs/decisions/0001-lifecycle-machine.md for the fallback.
 */
export function planTrigger(trigger: DaemonTrigger, snapshot: DaemonSnapshot, reason: EventReason): DaemonEvent[] | null {
  if (snapshot.hasTag('busy')) return null;
  const plan = TRIGGER_PLANS[trigger][reportedState(snapshot)];
  return plan === null ? null : plan.map((type) => ({ type, reason }));
}
