// The lifecycle as the contract and the issue state it, written out by hand
// (docs/contract.md §3.1 plus UPGRADING/INTERRUPTED): for every leaf state and
// every event, where it goes or that it is refused. Tests hold the machine, its
// computed table and its diagrams against this, never against themselves.
import type { DaemonActorName, DaemonEventType } from '../../machines/daemon.js';

/** Refused, or `[entered at once, actor?, where success leads, where failure leads]`. */
export type Expect = null | { next: string; actor?: DaemonActorName; onDone?: string; onError?: string };

const refusedAll = { MOUNT: null, START: null, TAKEOVER: null, STOP: null, EXIT: null };

export const EXPECTED: Record<string, Record<DaemonEventType, Expect>> = {
  'INIT.idle': {
    MOUNT: { next: 'INIT.mounting', actor: 'mountSession', onDone: 'READY.idle', onError: 'INIT.idle' },
    START: null,
    TAKEOVER: { next: 'UPGRADING', actor: 'restoreState', onDone: 'READY.idle', onError: 'INIT.idle' },
    STOP: { next: 'STOPPED' },
    EXIT: { next: 'STOPPED' },
  },
  'INIT.mounting': refusedAll,
  UPGRADING: refusedAll,
  'READY.idle': {
    MOUNT: null,
    START: { next: 'READY.starting', actor: 'startService', onDone: 'RUNNING.idle', onError: 'READY.idle' },
    TAKEOVER: null,
    STOP: { next: 'READY.unmounting', actor: 'unmountSession', onDone: 'STOPPED', onError: 'READY.idle' },
    EXIT: { next: 'STOPPED' },
  },
  'READY.starting': refusedAll,
  'READY.unmounting': refusedAll,
  'RUNNING.idle': {
    MOUNT: null,
    START: null,
    TAKEOVER: null,
    STOP: { next: 'RUNNING.stopping', actor: 'stopService', onDone: 'READY.idle', onError: 'RUNNING.idle' },
    EXIT: { next: 'RUNNING.interrupting', actor: 'interruptService', onDone: 'INTERRUPTED', onError: 'RUNNING.idle' },
  },
  'RUNNING.stopping': refusedAll,
  'RUNNING.interrupting': refusedAll,
  INTERRUPTED: { MOUNT: null, START: null, TAKEOVER: null, STOP: { next: 'STOPPED' }, EXIT: { next: 'STOPPED' } },
  STOPPED: refusedAll,
};

/** The top-level state each leaf reports. */
export const REPORTED = (key: string): string => key.split('.')[0];

/** Tags expected per leaf (sorted). */
export const TAGS: Record<string, string[]> = {
  'INIT.idle': ['accepts-mounts'],
  'INIT.mounting': ['busy'],
  UPGRADING: ['busy'],
  'READY.idle': ['accepts-mounts', 'has-fuse-connection'],
  'READY.starting': ['busy', 'has-fuse-connection'],
  'READY.unmounting': ['busy', 'has-fuse-connection'],
  'RUNNING.idle': ['accepts-mounts', 'has-fuse-connection', 'serving'],
  'RUNNING.stopping': ['busy', 'has-fuse-connection', 'serving'],
  'RUNNING.interrupting': ['busy', 'has-fuse-connection', 'serving'],
  INTERRUPTED: ['has-fuse-connection'],
  STOPPED: [],
};

/** The leaf an actor runs in. */
export const ACTOR_STATE: Record<DaemonActorName, string> = {
  mountSession: 'INIT.mounting',
  restoreState: 'UPGRADING',
  startService: 'READY.starting',
  stopService: 'RUNNING.stopping',
  interruptService: 'RUNNING.interrupting',
  unmountSession: 'READY.unmounting',
};
