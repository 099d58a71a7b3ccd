// The lifecycle as the contract and the issue state it, written out by hand
// (docs/contract.md §3.1 plus UPGRADING/INTERRUPTED, the composite triggers and the
// API's other writes as events): for every leaf state and every event, where it goes or
// that it is refused. Tests hold the machine, its computed table and its diagrams
// against this, never against themselves.
import type { DaemonActorName, DaemonEventType } from '../../machines/daemon.js';

/** Refused, or `[entered at once, actor?, where success leads, where failure leads]` (and the guard it is taken under). */
export type Expect = null | { guard?: string; next: string; actor?: DaemonActorName; onDone?: string; onError?: string };

type Row = Record<DaemonEventType, Expect>;

/** Accepted in every state until STOPPED, without leaving it. */
const anywhere = (key: string) => ({ SET_CONFIG: { next: key }, JOURNAL_ATTACHED: { next: key } });

/** An actor runs: everything but the anywhere events is refused. */
const busy = (key: string): Row => ({
  MOUNT: null,
  START: null,
  TAKEOVER: null,
  STOP: null,
  EXIT: null,
  TRIGGER_STOP: null,
  TRIGGER_EXIT: null,
  MOUNT_IMAGE: null,
  REMOUNT_IMAGE: null,
  UMOUNT_IMAGE: null,
  SEND_FD: null,
  ...anywhere(key),
});

/** Image changes from a resting parent, while images are writable. */
const images = (parent: string) => {
  const e = { guard: 'imagesWritable', next: `${parent}.changingImage`, actor: 'changeImage' as const, onDone: `${parent}.idle`, onError: `${parent}.idle` };
  return { MOUNT_IMAGE: e, REMOUNT_IMAGE: e, UMOUNT_IMAGE: e };
};
const sendFd = (parent: string) => ({ next: `${parent}.sendingFd`, actor: 'sendFd' as const, onDone: `${parent}.idle`, onError: `${parent}.idle` });

export const EXPECTED: Record<string, Row> = {
  'INIT.idle': {
    MOUNT: { next: 'INIT.mounting', actor: 'mountSession', onDone: 'READY.idle', onError: 'INIT.idle' },
    START: null,
    TAKEOVER: { next: 'UPGRADING', actor: 'restoreState', onDone: 'READY.idle', onError: 'INIT.idle' },
    STOP: { next: 'STOPPED' },
    EXIT: { next: 'STOPPED' },
    TRIGGER_STOP: { next: 'STOPPED' },
    TRIGGER_EXIT: { next: 'STOPPED' },
    ...images('INIT'),
    SEND_FD: null,
    ...anywhere('INIT.idle'),
  },
  'INIT.mounting': busy('INIT.mounting'),
  'INIT.changingImage': busy('INIT.changingImage'),
  UPGRADING: busy('UPGRADING'),
  'READY.idle': {
    MOUNT: null,
    START: { next: 'READY.starting', actor: 'startService', onDone: 'RUNNING.idle', onError: 'READY.idle' },
    TAKEOVER: null,
    STOP: { next: 'READY.unmounting', actor: 'unmountSession', onDone: 'STOPPED', onError: 'READY.idle' },
    EXIT: { next: 'STOPPED' },
    TRIGGER_STOP: { next: 'READY.unmounting', actor: 'unmountSession', onDone: 'STOPPED', onError: 'READY.idle' },
    TRIGGER_EXIT: { next: 'STOPPED' },
    ...images('READY'),
    SEND_FD: sendFd('READY'),
    ...anywhere('READY.idle'),
  },
  'READY.starting': busy('READY.starting'),
  'READY.unmounting': busy('READY.unmounting'),
  'READY.changingImage': busy('READY.changingImage'),
  'READY.sendingFd': busy('READY.sendingFd'),
  'RUNNING.idle': {
    MOUNT: null,
    START: null,
    TAKEOVER: null,
    STOP: { next: 'RUNNING.stopping', actor: 'stopService', onDone: 'READY.idle', onError: 'RUNNING.idle' },
    EXIT: { next: 'RUNNING.interrupting', actor: 'interruptService', onDone: 'INTERRUPTED.idle', onError: 'RUNNING.idle' },
    // The triggers go on past the first actor by themselves: SIGTERM to the unmount, API exit out.
    TRIGGER_STOP: { next: 'RUNNING.stopping', actor: 'stopService', onDone: 'READY.unmounting', onError: 'RUNNING.idle' },
    TRIGGER_EXIT: { next: 'RUNNING.interrupting', actor: 'interruptService', onDone: 'STOPPED', onError: 'RUNNING.idle' },
    ...images('RUNNING'),
    SEND_FD: sendFd('RUNNING'),
    ...anywhere('RUNNING.idle'),
  },
  'RUNNING.stopping': busy('RUNNING.stopping'),
  'RUNNING.interrupting': busy('RUNNING.interrupting'),
  'RUNNING.changingImage': busy('RUNNING.changingImage'),
  'RUNNING.sendingFd': busy('RUNNING.sendingFd'),
  'INTERRUPTED.idle': {
    MOUNT: null,
    START: null,
    TAKEOVER: null,
    STOP: { next: 'STOPPED' },
    EXIT: { next: 'STOPPED' },
    TRIGGER_STOP: { next: 'STOPPED' },
    TRIGGER_EXIT: { next: 'STOPPED' },
    MOUNT_IMAGE: null,
    REMOUNT_IMAGE: null,
    UMOUNT_IMAGE: null,
    SEND_FD: sendFd('INTERRUPTED'),
    ...anywhere('INTERRUPTED.idle'),
  },
  'INTERRUPTED.sendingFd': busy('INTERRUPTED.sendingFd'),
  STOPPED: { ...busy('STOPPED'), SET_CONFIG: null, JOURNAL_ATTACHED: null },
};

/** The top-level state each leaf reports. */
export const REPORTED = (key: string): string => key.split('.')[0];

/** Tags expected per leaf (sorted). */
export const TAGS: Record<string, string[]> = {
  'INIT.idle': [],
  'INIT.mounting': ['busy'],
  'INIT.changingImage': ['busy'],
  UPGRADING: ['busy'],
  'READY.idle': ['has-fuse-connection'],
  'READY.starting': ['busy', 'has-fuse-connection'],
  'READY.unmounting': ['busy', 'has-fuse-connection'],
  'READY.changingImage': ['busy', 'has-fuse-connection'],
  'READY.sendingFd': ['busy', 'has-fuse-connection'],
  'RUNNING.idle': ['has-fuse-connection', 'serving'],
  'RUNNING.stopping': ['busy', 'has-fuse-connection', 'serving'],
  'RUNNING.interrupting': ['busy', 'has-fuse-connection', 'serving'],
  'RUNNING.changingImage': ['busy', 'has-fuse-connection', 'serving'],
  'RUNNING.sendingFd': ['busy', 'has-fuse-connection', 'serving'],
  'INTERRUPTED.idle': ['has-fuse-connection'],
  'INTERRUPTED.sendingFd': ['busy', 'has-fuse-connection'],
  STOPPED: [],
};

/** The leaves an actor runs in. */
export const ACTOR_STATES: Record<DaemonActorName, string[]> = {
  mountSession: ['INIT.mounting'],
  restoreState: ['UPGRADING'],
  startService: ['READY.starting'],
  stopService: ['RUNNING.stopping'],
  interruptService: ['RUNNING.interrupting'],
  unmountSession: ['READY.unmounting'],
  changeImage: ['INIT.changingImage', 'READY.changingImage', 'RUNNING.changingImage'],
  sendFd: ['READY.sendingFd', 'RUNNING.sendingFd', 'INTERRUPTED.sendingFd'],
};
