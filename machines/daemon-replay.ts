// Event sourcing, checked: a daemon's journal folded through the pure machine. The
// controller journals the machine's input when it starts (`start`), every event it
// accepts with the data the machine reads (`event`), and every actor's completion with
// its output or error (`actor`); replaying those with xstate's pure `transition()` gives
// the state and context the running daemon had. The record shapes are structural, so
// this module needs nothing beyond xstate and the machine.
import { initialTransition, transition } from 'xstate';
import { daemonMachine } from './daemon.js';
import type { DaemonActorName, DaemonEvent, DaemonEventType, DaemonInput, DaemonSnapshot, EventReason } from './daemon.js';
import { actorDone, actorFailed } from './daemon-table.js';

/** The journal records a replay reads; any other record type is skipped. */
export type ReplayRecord =
  | { type: 'start'; input: DaemonInput }
  | { type: 'event'; event: string; reason: string; data?: { mountpoint?: string; id?: string; values?: Record<string, string> } }
  | { type: 'actor'; actor: string; ok: boolean; output?: unknown; error?: { code: string; message: string } }
  | { type: string };

/**
 * The machine snapshot the records of the last daemon start lead to (records before the
 * last `start` belong to earlier processes). Throws a TypeError when there is no `start`
 * record (a journal compacted since the daemon started keeps only its summary).
 */
export function replayDaemon(records: readonly ReplayRecord[]): DaemonSnapshot {
  let from = -1;
  records.forEach((r, i) => {
    if (r.type === 'start') from = i;
  });
  if (from < 0) throw new TypeError('failed to replay the journal: it has no start record (compacted since the daemon started?)');
  let s = initialTransition(daemonMachine, (records[from] as { input: DaemonInput }).input)[0];
  for (const r of records.slice(from + 1)) {
    const next = eventOf(r);
    if (next !== undefined) s = transition(daemonMachine, s, next)[0];
  }
  return s;
}

function eventOf(r: ReplayRecord): DaemonEvent | undefined {
  if (r.type === 'event') {
    const e = r as Extract<ReplayRecord, { type: 'event' }>;
    return { type: e.event as DaemonEventType, reason: e.reason as EventReason, ...e.data };
  }
  if (r.type === 'actor') {
    const a = r as Extract<ReplayRecord, { type: 'actor' }>;
    return a.ok ? actorDone(a.actor as DaemonActorName, a.output) : actorFailed(a.actor as DaemonActorName, a.error);
  }
  return undefined;
}
