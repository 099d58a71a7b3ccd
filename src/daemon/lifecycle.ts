// Runs the lifecycle machine with real actors and journals what it does: every accepted
// event (before it is sent), every change of state key (from the machine's inspection
// stream), and each event's outcome once its actor has settled. Callers serialise
// send/trigger (the controller does); a refused event changes nothing and throws
// ERR_DAEMON_UNEXPECTED_EVENT with the event's upstream name in `detail.event`.
import { createActor, fromPromise, waitFor, type Actor } from 'xstate';
import { daemonMachine, stateKey, reportedState } from '../../machines/daemon.js';
import type { DaemonActorInput, DaemonActorName, DaemonEventType, DaemonMachine, DaemonSnapshot, EventReason, SessionOutput } from '../../machines/daemon.js';
import { accepts, planTrigger, type DaemonTrigger } from '../../machines/daemon-table.js';
import { DaemonError, NydusError, type ErrorCode } from '../errors.js';
import type { JournalSink } from './journal-sink.js';

/** The effects the machine names, as plain async functions. */
export interface ActorEffects {
  mountSession(input: DaemonActorInput): Promise<SessionOutput>;
  restoreState(input: DaemonActorInput): Promise<SessionOutput>;
  startService(input: DaemonActorInput): Promise<void>;
  stopService(input: DaemonActorInput): Promise<void>;
  interruptService(input: DaemonActorInput): Promise<void>;
  unmountSession(input: DaemonActorInput): Promise<void>;
}

/** Upstream's name for an event (`START` → `Start`), what the API puts in UnexpectedEvent. */
function upstreamName(type: string): string {
  return type.charAt(0) + type.slice(1).toLowerCase();
}

/** The machine, running. */
export class Lifecycle {
  readonly actor: Actor<DaemonMachine>;
  readonly #sink: JournalSink;
  #lastKey: string;
  #pending: Promise<unknown>[] = [];
  /** The error the most recent failing effect threw (the machine keeps only its JSON). */
  #lastFailure: unknown;

  constructor(effects: ActorEffects, sink: JournalSink) {
    this.#sink = sink;
    const wrap =
      <T>(name: DaemonActorName) =>
      async ({ input }: { input: DaemonActorInput }): Promise<T> => {
        try {
          return (await effects[name](input)) as T;
        } catch (err) {
          this.#lastFailure = err;
          throw err;
        }
      };
    const machine = daemonMachine.provide({
      actors: {
        mountSession: fromPromise<SessionOutput, DaemonActorInput>(wrap('mountSession')),
        restoreState: fromPromise<SessionOutput, DaemonActorInput>(wrap('restoreState')),
        startService: fromPromise<void, DaemonActorInput>(wrap('startService')),
        stopService: fromPromise<void, DaemonActorInput>(wrap('stopService')),
        interruptService: fromPromise<void, DaemonActorInput>(wrap('interruptService')),
        unmountSession: fromPromise<void, DaemonActorInput>(wrap('unmountSession')),
      },
    });
    this.#lastKey = 'INIT.idle';
    this.actor = createActor(machine, {
      inspect: (ev) => {
        if (ev.type !== '@xstate.snapshot' || ev.actorRef !== this.actor) return;
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

  /** Throws ERR_DAEMON_UNEXPECTED_EVENT unless the machine accepts `type` now. */
  check(type: DaemonEventType): void {
    const snap = this.snapshot;
    if (!accepts(snap, type)) {
      throw new DaemonError('ERR_DAEMON_UNEXPECTED_EVENT', `failed to handle ${type}: not accepted in state ${stateKey(snap)}`, {
        detail: { event: upstreamName(type) },
      });
    }
  }

  /**
   * Sends one event and waits for its actor to settle. Rejects with the actor's error
   * when it failed (the machine then rests where its onError leads).
   */
  async send(type: DaemonEventType, reason: EventReason): Promise<void> {
    this.check(type);
    const ev = await this.#sink.append({ type: 'event', event: type, reason, state: this.stateKey });
    this.#lastFailure = undefined;
    this.actor.send({ type, reason });
    const settled = await waitFor(this.actor, (s) => !s.hasTag('busy'), { timeout: Infinity });
    const info = settled.context.lastError;
    if (info === null) {
      this.#track(this.#sink.append({ type: 'outcome', of: ev.seq, event: type, ok: true }));
      await this.flush();
      return;
    }
    this.#track(this.#sink.append({ type: 'outcome', of: ev.seq, event: type, ok: false, error: { code: info.code, message: info.message } }));
    await this.flush();
    const failure = this.#lastFailure;
    if (failure instanceof NydusError) throw failure;
    throw new DaemonError(info.code as ErrorCode, info.message, { cause: failure });
  }

  /**
   * Upstream's composite triggers (`exit`: API exit; `stop`: SIGTERM), one event after
   * another; stops at the first failure (rethrown).
   */
  async trigger(kind: DaemonTrigger, reason: EventReason): Promise<void> {
    for (;;) {
      const plan = planTrigger(kind, this.snapshot, reason);
      if (plan === null) {
        await waitFor(this.actor, (s) => !s.hasTag('busy'), { timeout: Infinity });
        continue;
      }
      for (const ev of plan) await this.send(ev.type, ev.reason);
      return;
    }
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
