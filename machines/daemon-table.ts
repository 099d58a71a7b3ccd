// Questions answered from the daemon machine definition alone, with xstate's pure
// `transition()` and the public state nodes of the definition: which states exist,
// whether a state accepts an event, where an accepted event leads (through which
// actor, and where its success and failure lead), and which states a composite
// trigger (API exit, SIGTERM) passes through when every actor succeeds.
import { transition } from 'xstate';
import type { AnyStateNode, StateValue } from 'xstate';
import { DAEMON_EVENT_TYPES, daemonMachine, initialContext, reportedState, stateKey } from './daemon.js';
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
  return daemonMachine.resolveState({ value: keyToValue(key), context: { ...initialContext(), ...context } });
}

/**
 * Whether the machine in `state` (a snapshot or a leaf state key) accepts an event of
 * this type: `snapshot.can`, the one answer to "what may the daemon do now". A refused
 * upstream event is what the API answers with 400 UnexpectedEvent, any other with 503.
 */
export function accepts(state: DaemonSnapshot | string, type: DaemonEventType): boolean {
  const snapshot = typeof state === 'string' ? snapshotAt(state) : state;
  if (snapshot.status !== 'active') return false;
  return snapshot.can({ type, reason: 'api' });
}

/** The state node of a leaf state key, from the definition's public tree. */
function nodeAt(key: string): AnyStateNode {
  let node: AnyStateNode = daemonMachine.root;
  for (const k of key.split('.')) node = node.states[k];
  return node;
}

/** Where an event leads from one leaf state. */
export type EventOutcome =
  | { accepted: false }
  | {
      accepted: true;
      /** The named guard the transition is taken under (it refuses the event when false), if any. */
      guard?: string;
      /** The leaf state entered at once. */
      next: string;
      /** The actor that runs in `next`, if any. */
      actor?: DaemonActorName;
      /** Where the actor's success leads (a leaf state key). */
      onDone?: string;
      /** Where the actor's failure leads (a leaf state key). */
      onError?: string;
    };

/** The actor invoked in the snapshot's leaf state or one of its ancestors, if any. */
export function invokedActor(snapshot: DaemonSnapshot): DaemonActorName | undefined {
  for (let node: AnyStateNode | undefined = nodeAt(stateKey(snapshot)); node !== undefined; node = node.parent) {
    const inv = node.invoke[0];
    if (inv !== undefined) return inv.id as DaemonActorName;
  }
  return undefined;
}

/** The completion events of an actor, as the machine receives them (sent by hand: the machine is pure). */
export function actorDone(actor: DaemonActorName, output: unknown): DaemonEvent {
  return { type: `xstate.done.actor.${actor}`, output } as unknown as DaemonEvent;
}
export function actorFailed(actor: DaemonActorName, error: unknown): DaemonEvent {
  return { type: `xstate.error.actor.${actor}`, error } as unknown as DaemonEvent;
}

/** An output good enough for every actor when tables walk the definition. */
const ANY_OUTPUT = { connId: null, config: {} };

/** Computes, from the definition, what an event of `type` does in the leaf state `key`. */
export function eventOutcome(key: string, type: DaemonEventType): EventOutcome {
  const from = snapshotAt(key);
  if (!accepts(from, type)) return { accepted: false };
  const [next] = transition(daemonMachine, from, { type, reason: 'api' });
  // An event handled without leaving the state (SET_CONFIG, JOURNAL_ATTACHED) starts no actor.
  const actor = stateKey(next) === key ? undefined : invokedActor(next);
  const g = guardOf(key, type);
  const guard = g === undefined ? {} : { guard: g };
  if (actor === undefined) return { accepted: true, ...guard, next: stateKey(next) };
  // The completion events an invoked actor produces, sent by hand: the machine is pure.
  const [afterDone] = transition(daemonMachine, next, actorDone(actor, ANY_OUTPUT));
  const [afterError] = transition(daemonMachine, next, actorFailed(actor, new Error('failed')));
  return { accepted: true, ...guard, next: stateKey(next), actor, onDone: stateKey(afterDone), onError: stateKey(afterError) };
}

/** The name of the guard on the transition `type` takes from the leaf `key` (the nearest state that handles it). */
function guardOf(key: string, type: DaemonEventType): string | undefined {
  for (let node: AnyStateNode | undefined = nodeAt(key); node !== undefined; node = node.parent) {
    const defs = node.transitions.get(type);
    if (defs === undefined) continue;
    const g = defs[0]?.guard as { type?: string } | string | undefined;
    return typeof g === 'string' ? g : g?.type;
  }
  return undefined;
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

/** The composite triggers of upstream's `NydusDaemon`, as machine events. */
export type DaemonTrigger = 'TRIGGER_EXIT' | 'TRIGGER_STOP';

/** One step of a trigger played out: the state entered and the actor that runs there, if any. */
export interface TriggerStep {
  state: string;
  actor?: DaemonActorName;
}

/**
 * The states a trigger passes through from the leaf state `key` when every actor
 * succeeds, computed from the definition: null when the state refuses it (an actor
 * runs: wait for it to settle), empty when already STOPPED.
 */
export function triggerPath(trigger: DaemonTrigger, key: string): TriggerStep[] | null {
  let s = snapshotAt(key);
  if (s.status === 'done') return [];
  if (!accepts(s, trigger)) return null;
  s = transition(daemonMachine, s, { type: trigger, reason: 'api' })[0];
  const steps: TriggerStep[] = [];
  for (;;) {
    const actor = invokedActor(s);
    steps.push(actor === undefined ? { state: stateKey(s) } : { state: stateKey(s), actor });
    if (actor === undefined) return steps;
    s = transition(daemonMachine, s, actorDone(actor, ANY_OUTPUT))[0];
  }
}
