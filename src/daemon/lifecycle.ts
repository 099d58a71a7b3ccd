// Runs the lifecycle machine with real actors and journals what it does: every accepted
// event (before it is sent, with the data the pure machine needs to replay it), every
// actor's completion (from the machine's inspection stream, with its output or error),
// every change of state key, and each event's outcome once its actors have settled.
// Callers serialise send/trigger (the controller does). A refused event changes nothing
// and throws: ERR_DAEMON_UNEXPECTED_EVENT for upstream's events (`detail.event` names
// it), ERR_DAEMON_NOT_READY for the others, with the reason read from the machine.
import { createActor, fromPromise, waitFor, type Actor } from 'xstate';
import { UPSTREAM_EVENT_TYPES, daemonMachine, reportedState, stateKey, toErrorInfo } from '../../machines/daemon.js';
import type {
  DaemonActorInput,
  DaemonActorName,
  DaemonContext,
  DaemonEvent,
  DaemonEventType,
  DaemonInput,
  DaemonMachine,
  DaemonSnapshot,
  EventReason,
  RestoreOutput,
  SessionOutput,
} from '../../machines/daemon.js';
import { accepts, type DaemonTrigger } from '../../machines/daemon-table.js';
import { DaemonError, NydusError, type ErrorCode } from '../errors.js';
import type { JournalSink } from './journal-sink.js';
import type { EventData } from './journal-records.js';

/** The effects the machine names, as plain async functions that honour `signal` (xstate aborts it when the actor is stopped). */
export interface ActorEffects {
  mountSession(input: DaemonActorInput, signal: AbortSignal): Promise<SessionOutput>;
  restoreState(input: DaemonActorInput, signal: AbortSignal): Promise<RestoreOutput>;
  startService(input: DaemonActorInput, signal: AbortSignal): Promise<void>;
  stopService(input: DaemonActorInput, signal: AbortSignal): Promise<void>;
  interruptService(input: DaemonActorInput, signal: AbortSignal): Promise<void>;
  unmountSession(input: DaemonActorInput, signal: AbortSignal): Promise<void>;
  changeImage(input: DaemonActorInput, signal: AbortSignal): Promise<void>;
  sendFd(input: DaemonActorInput, signal: AbortSignal): Promise<void>;
}

/** The machine's side-effecting actions the controller provides, and how actor outputs are journaled. */
export interface ActionEffects {
  /** SET_CONFIG was accepted: `context.config` is the new store, `id` the config id it changed. */
  applyConfig(context: DaemonContext, id: string, values: Record<string, string>): void;
  /** An actor's output as its journal record keeps it (keys kept off the disk replaced). */
  journalOutput(actor: DaemonActorName, output: unknown): unknown;
}

/** Upstream's name for an event (`START` → `Start`), what the API puts in UnexpectedEvent. */
function upstreamName(type: string): string {
  const name = type.replace(/^TRIGGER_/, '');
  return name.charAt(0) + name.slice(1).toLowerCase();
}

/** What an event record keeps besides type and reason: enough for the pure machine to replay it. */
function eventData(ev: DaemonEvent, journalValues: Record<string, string> | undefined): EventData | undefined {
  if (ev.type === 'SET_CONFIG') return { id: ev.id ?? '', values: { ...(journalValues ?? ev.values) } };
  if (ev.mountpoint !== undefined) return { mountpoint: ev.mountpoint };
  return undefined;
}

const ACTOR_EVENT = /^xstate\.(done|error)\.actor\.(.+)$/;

/** The machine, running. */
export class Lifecycle {
  readonly actor: Actor<DaemonMachine>;
  readonly #sink: JournalSink;
  #lastKey: string;
  #pending: Promise<unknown>[] = [];
  /** The error the most recent failing effect threw (the machine keeps only its JSON). */
  #lastFailure: unknown;

  constructor(effects: ActorEffects, actions: ActionEffects, sink: JournalSink, input: DaemonInput) {
    this.#sink = sink;
    const wrap =
      <T>(name: DaemonActorName) =>
      async ({ input, signal }: { input: DaemonActorInput; signal: AbortSignal }): Promise<T> => {
        try {
          return (await effects[name](input, signal)) as T;
        } catch (err) {
          this.#lastFailure = err;
          throw err;
        }
      };
    const machine = daemonMachine.provide({
      actors: {
        mountSession: fromPromise<SessionOutput, DaemonActorInput>(wrap('mountSession')),
        restoreState: fromPromise<RestoreOutput, DaemonActorInput>(wrap('restoreState')),
        startService: fromPromise<void, DaemonActorInput>(wrap('startService')),
        stopService: fromPromise<void, DaemonActorInput>(wrap('stopService')),
        interruptService: fromPromise<void, DaemonActorInput>(wrap('interruptService')),
        unmountSession: fromPromise<void, DaemonActorInput>(wrap('unmountSession')),
        changeImage: fromPromise<void, DaemonActorInput>(wrap('changeImage')),
        sendFd: fromPromise<void, DaemonActorInput>(wrap('sendFd')),
      },
      actions: {
        applyConfig: ({ context, event }) => actions.applyConfig(context, event.id ?? '', event.values ?? {}),
      },
    });
    this.#lastKey = 'INIT.idle';
    this.actor = createActor(machine, {
      input,
      inspect: (ev) => {
        if (ev.actorRef !== this.actor) return;
        if (ev.type === '@xstate.event') {
          // An actor's completion: journaled with what it carried, so a replay feeds the same event.
          const m = ACTOR_EVENT.exec(ev.event.type);
          if (m === null) return;
          const actor = m[2] as DaemonActorName;
          const e = ev.event as { output?: unknown; error?: unknown };
          if (m[1] === 'done') {
            const output = e.output === undefined ? {} : { output: actions.journalOutput(actor, e.output) };
            this.#track(this.#sink.append({ type: 'actor', actor, ok: true, ...output }));
          }
          else {
            const { code, message } = toErrorInfo(actor, e.error);
            this.#track(this.#sink.append({ type: 'actor', actor, ok: false, error: { code, message } }));
          }
          return;
        }
        if (ev.type !== '@xstate.snapshot') return;
        const key = stateKey(ev.snapshot as DaemonSnapshot);
        if (key === this.#lastKey) return;
        const from = this.#lastKey;
        this.#lastKey = key;
        this.#track(this.#sink.append({ type: 'transition', from, to: key, event: ev.event.type }));
      },
    });
    this.actor.start();
  }

  get snapshot(): DaemonSnapshot {
    return this.actor.getSnapshot();
  }

  /** The reported state (INIT, READY, RUNNING, ...). */
  get state(): string {
    return reportedState(this.snapshot);
  }

  get stateKey(): string {
    return stateKey(this.snapshot);
  }

  get context(): DaemonContext {
    return this.snapshot.context;
  }

  /** Throws unless the machine accepts `type` now: UnexpectedEvent for upstream's events, NotReady for the others. */
  check(type: DaemonEventType): void {
    const snap = this.snapshot;
    if (accepts(snap, type)) return;
    if (UPSTREAM_EVENT_TYPES.has(type)) {
      throw new DaemonError('ERR_DAEMON_UNEXPECTED_EVENT', `failed to handle ${type}: not accepted in state ${stateKey(snap)}`, {
        detail: { event: upstreamName(type) },
      });
    }
    throw new DaemonError('ERR_DAEMON_NOT_READY', `failed to handle ${type}: ${this.#whyRefused(type, snap)}`);
  }

  #whyRefused(type: DaemonEventType, snap: DaemonSnapshot): string {
    const images = type === 'MOUNT_IMAGE' || type === 'REMOUNT_IMAGE' || type === 'UMOUNT_IMAGE';
    if (images && snap.context.awaitingTakeover) return 'this daemon waits for a takeover; its mounts come from its predecessor';
    // Until then the predecessor may still allocate mount indexes this daemon cannot see.
    if (images && snap.context.journalDeferred) return `the predecessor still holds the journal in ${this.#sink.dir}; retry once it has exited`;
    if (type === 'SEND_FD' && !snap.hasTag('has-fuse-connection')) return 'the FUSE session is not mounted yet';
    return `the daemon is ${stateKey(snap)}`;
  }

  /**
   * Sends one event and waits for its actors to settle. Rejects with the actor's error
   * when one failed (the machine then rests where its onError leads). `journalValues`:
   * what a SET_CONFIG record stores instead of its values (keys kept off the disk).
   */
  async send(event: DaemonEvent, opts: { journalValues?: Record<string, string> } = {}): Promise<void> {
    this.check(event.type);
    const data = eventData(event, opts.journalValues);
    const ev = await this.#sink.append({ type: 'event', event: event.type, reason: event.reason, state: this.stateKey, ...(data === undefined ? {} : { data }) });
    this.#lastFailure = undefined;
    // Events that start no actor (SET_CONFIG) keep an earlier error: only a new one is this event's.
    const before = this.snapshot.context.lastError;
    this.actor.send(event);
    const settled = await waitFor(this.actor, (s) => !s.hasTag('busy'), { timeout: Infinity });
    const info = settled.context.lastError === before ? null : settled.context.lastError;
    if (info === null) {
      this.#track(this.#sink.append({ type: 'outcome', of: ev.seq, event: event.type, ok: true }));
      await this.flush();
      return;
    }
    this.#track(this.#sink.append({ type: 'outcome', of: ev.seq, event: event.type, ok: false, error: { code: info.code, message: info.message } }));
    await this.flush();
    const failure = this.#lastFailure;
    if (failure instanceof NydusError) throw failure;
    throw new DaemonError(info.code as ErrorCode, info.message, { cause: failure });
  }

  /**
   * Sends an event that starts no actor (JOURNAL_ATTACHED) without waiting for a running
   * actor to settle: an actor (restoreState) may be the one that reports it.
   */
  async notify(event: DaemonEvent): Promise<void> {
    this.check(event.type);
    await this.#sink.append({ type: 'event', event: event.type, reason: event.reason, state: this.stateKey });
    this.actor.send(event);
  }

  /**
   * Upstream's composite triggers (TRIGGER_EXIT: API exit; TRIGGER_STOP: SIGTERM), which
   * the machine carries to STOPPED itself. Waits for a running actor to settle first;
   * nothing to do once STOPPED. Rejects with the first actor failure.
   */
  async trigger(type: DaemonTrigger, reason: EventReason): Promise<void> {
    const rest = await waitFor(this.actor, (s) => !s.hasTag('busy'), { timeout: Infinity });
    if (rest.status === 'done') return;
    await this.send({ type, reason });
  }

  /** Waits until every record appended so far is durable; rethrows a journal failure. */
  async flush(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    await Promise.all(pending);
  }

  #track(p: Promise<unknown>): void {
    // Handled by flush(); until then a failure must not be an unhandled rejection.
    p.catch(() => undefined);
    this.#pending.push(p);
  }
}
