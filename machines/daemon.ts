// The daemon lifecycle as a pure XState definition: states, events, tags and the
// names and types of the actors that do the work. Nothing here touches FUSE, files
// or the network: the placeholder actors reject, and src/daemon/controller.ts
// supplies the real ones with `daemonMachine.provide({ actors })`. The diagram
// tools and the tests read this same object.
import { assign, fromPromise, setup } from 'xstate';
import type { SnapshotFrom } from 'xstate';

/** The top-level states, exactly the strings `GET /api/v1/daemon` reports. */
export const DaemonState = {
  INIT: 'INIT',
  READY: 'READY',
  RUNNING: 'RUNNING',
  UPGRADING: 'UPGRADING',
  INTERRUPTED: 'INTERRUPTED',
  STOPPED: 'STOPPED',
} as const;
export type DaemonStateName = (typeof DaemonState)[keyof typeof DaemonState];

/** The event types the machine knows, in the order tables list them. */
export const DAEMON_EVENT_TYPES = ['MOUNT', 'START', 'TAKEOVER', 'STOP', 'EXIT'] as const;
export type DaemonEventType = (typeof DAEMON_EVENT_TYPES)[number];

/**
 * Who asked for an event. `api`: an admin API call; `startup`: the daemon's own
 * start sequence; `signal`: SIGTERM/SIGINT; `connection-lost`: the kernel ended the
 * FUSE connection (umount, abort).
 */
export type EventReason = 'api' | 'startup' | 'signal' | 'connection-lost';

/** An event sent to the daemon machine. */
export type DaemonEvent = { type: DaemonEventType; reason: EventReason };

/** Tags, so callers ask questions instead of matching state names. */
export const DaemonTag = {
  /** The session reads /dev/fuse and answers the kernel (reported RUNNING). */
  serving: 'serving',
  /** The daemon holds a live kernel FUSE connection (its /dev/fuse fd). */
  hasFuseConnection: 'has-fuse-connection',
  /** An actor is running; every event is refused until it settles. */
  busy: 'busy',
  /** Image mounts (POST/PUT/DELETE /api/v1/mount) may run now (contract §7.5). */
  acceptsMounts: 'accepts-mounts',
} as const;
export type DaemonTagName = (typeof DaemonTag)[keyof typeof DaemonTag];

/** The last failure of an actor, as it is kept in context: JSON, no Error object. */
export interface DaemonErrorInfo {
  /** A catalogue code (`ERR_...`); a foreign error gets the actor's default code. */
  code: string;
  message: string;
  /** The actor that failed. */
  actor: DaemonActorName;
}

/** The machine's context. JSON-serialisable: it travels in snapshots and journals. */
export interface DaemonContext {
  /** Kernel FUSE connection id (`major<<20|minor` of the mountpoint's st_dev) once known. */
  connId: number | null;
  /** The failure of the most recent actor, null when it succeeded (cleared on each accepted event). */
  lastError: DaemonErrorInfo | null;
  /** The reason carried by the last accepted STOP or EXIT. */
  stopReason: EventReason | null;
  /** True once a takeover restored state and fd from a supervisor. */
  restored: boolean;
}

/** What every actor receives: why it runs, and the connection id known so far. */
export interface DaemonActorInput {
  reason: EventReason;
  connId: number | null;
}

/** What `mountSession` and `restoreState` resolve with. */
export interface SessionOutput {
  /** The kernel FUSE connection id, or null when it cannot be known (e.g. fuse-native). */
  connId: number | null;
}

/** The names of the actors the controller must provide. */
export const DAEMON_ACTORS = [
  'mountSession',
  'restoreState',
  'startService',
  'stopService',
  'interruptService',
  'unmountSession',
] as const;
export type DaemonActorName = (typeof DAEMON_ACTORS)[number];

/** The code recorded when an actor rejects with something that is not a catalogue error. */
export const ACTOR_DEFAULT_CODES: Readonly<Record<DaemonActorName, string>> = {
  mountSession: 'ERR_FUSE_MOUNT',
  restoreState: 'ERR_DAEMON_UPGRADE',
  startService: 'ERR_FUSE_SESSION',
  stopService: 'ERR_FUSE_SESSION',
  interruptService: 'ERR_FUSE_SESSION',
  unmountSession: 'ERR_FUSE_MOUNT',
};

/** Turns whatever an actor rejected with into the JSON kept in context. */
export function toErrorInfo(actor: DaemonActorName, err: unknown): DaemonErrorInfo {
  const e = err as { code?: unknown; message?: unknown } | null | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code !== undefined && code.startsWith('ERR_')) return { code, message, actor };
  // A foreign code (an errno name such as EACCES) stays visible in the message.
  const detail = code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
  return { code: ACTOR_DEFAULT_CODES[actor], message: detail, actor };
}

function placeholder<TOutput>(name: DaemonActorName) {
  return fromPromise<TOutput, DaemonActorInput>(async () => {
    throw Object.assign(new Error(`failed to run ${name}: actor not provided`), {
      code: 'ERR_DAEMON_UNSUPPORTED',
    });
  });
}

const actorInput = ({ context, event }: { context: DaemonContext; event: DaemonEvent }): DaemonActorInput => ({
  reason: event.reason,
  connId: context.connId,
});

/** The daemon lifecycle machine. Provide real actors with `.provide({ actors })`. */
export const daemonMachine = setup({
  types: {
    context: {} as DaemonContext,
    events: {} as DaemonEvent,
    tags: {} as DaemonTagName,
    output: {} as { stopReason: EventReason | null; lastError: DaemonErrorInfo | null },
  },
  actors: {
    mountSession: placeholder<SessionOutput>('mountSession'),
    restoreState: placeholder<SessionOutput>('restoreState'),
    startService: placeholder<void>('startService'),
    stopService: placeholder<void>('stopService'),
    interruptService: placeholder<void>('interruptService'),
    unmountSession: placeholder<void>('unmountSession'),
  },
  actions: {
    clearError: assign({ lastError: null }),
    recordStopReason: assign({ stopReason: ({ event }) => event.reason }),
  },
}).createMachine({
  id: 'daemon',
  description: 'The nydusd lifecycle (upstream service/src/daemon.rs, with the v1 UPGRADING and INTERRUPTED states).',
  initial: 'INIT',
  context: { connId: null, lastError: null, stopReason: null, restored: false },
  output: ({ context }) => ({ stopReason: context.stopReason, lastError: context.lastError }),
  states: {
    INIT: {
      description: 'Started, nothing served yet: waiting for MOUNT (normal start) or TAKEOVER (upgrade, failover).',
      initial: 'idle',
      states: {
        idle: {
          description: 'Resting: MOUNT, TAKEOVER, STOP and EXIT are accepted.',
          tags: ['accepts-mounts'],
          on: {
            MOUNT: {
              target: 'mounting',
              actions: 'clearError',
              description: 'Mount the FUSE session and the --bootstrap image.',
            },
            TAKEOVER: {
              target: '#daemon.UPGRADING',
              actions: 'clearError',
              description: 'Fetch state and /dev/fuse fd from the supervisor.',
            },
            STOP: {
              target: '#daemon.STOPPED',
              actions: ['clearError', 'recordStopReason'],
              description: 'Nothing to release.',
            },
            EXIT: {
              target: '#daemon.STOPPED',
              actions: ['clearError', 'recordStopReason'],
              description: 'Nothing to release.',
            },
          },
        },
        mounting: {
          description: 'mountSession runs; still reported INIT (upstream fires Mount after mounting).',
          tags: ['busy'],
          invoke: {
            id: 'mountSession',
            src: 'mountSession',
            input: actorInput,
            onDone: {
              target: '#daemon.READY',
              actions: assign({ connId: ({ event }) => event.output.connId }),
              description: 'The session is mounted.',
            },
            onError: {
              target: 'idle',
              actions: assign({ lastError: ({ event }) => toErrorInfo('mountSession', event.error) }),
              description: 'Mount failed: back to INIT with the error recorded.',
            },
          },
        },
      },
    },
    UPGRADING: {
      description: 'restoreState runs: state and fd come from the supervisor, mounts are rebuilt; the old daemon keeps serving.',
      tags: ['busy'],
      invoke: {
        id: 'restoreState',
        src: 'restoreState',
        input: actorInput,
        onDone: {
          target: 'READY',
          actions: assign({ connId: ({ event }) => event.output.connId, restored: true }),
          description: 'Restored: the inherited connection is held, not yet served.',
        },
        onError: {
          target: 'INIT',
          actions: assign({ lastError: ({ event }) => toErrorInfo('restoreState', event.error) }),
          description: 'Restore failed: back to INIT, a later TAKEOVER may retry.',
        },
      },
    },
    READY: {
      description: 'The FUSE connection is held and the mounts are in place; nothing reads /dev/fuse.',
      tags: ['has-fuse-connection'],
      initial: 'idle',
      states: {
        idle: {
          description: 'Resting: START, STOP and EXIT are accepted.',
          tags: ['accepts-mounts'],
          on: {
            START: {
              target: 'starting',
              actions: 'clearError',
              description: 'Start reading /dev/fuse.',
            },
            STOP: {
              target: 'unmounting',
              actions: ['clearError', 'recordStopReason'],
              description: 'Unmount the FUSE session, then stop.',
            },
            EXIT: {
              target: '#daemon.STOPPED',
              actions: ['clearError', 'recordStopReason'],
              description: 'Stop without unmounting: the connection stays for a successor.',
            },
          },
        },
        starting: {
          description: 'startService runs; reported READY until the session reads /dev/fuse.',
          tags: ['busy'],
          invoke: {
            id: 'startService',
            src: 'startService',
            input: actorInput,
            onDone: { target: '#daemon.RUNNING', description: 'The session serves the connection.' },
            onError: {
              target: 'idle',
              actions: assign({ lastError: ({ event }) => toErrorInfo('startService', event.error) }),
              description: 'Start failed: still READY.',
            },
          },
        },
        unmounting: {
          description: 'unmountSession runs: the FUSE mountpoint is unmounted.',
          tags: ['busy'],
          invoke: {
            id: 'unmountSession',
            src: 'unmountSession',
            input: actorInput,
            onDone: { target: '#daemon.STOPPED', description: 'Unmounted.' },
            onError: {
              target: 'idle',
              actions: assign({ lastError: ({ event }) => toErrorInfo('unmountSession', event.error) }),
              description: 'Unmount failed: still READY; EXIT stops without unmounting.',
            },
          },
        },
      },
    },
    RUNNING: {
      description: 'The session reads /dev/fuse and serves the kernel.',
      tags: ['serving', 'has-fuse-connection'],
      initial: 'idle',
      states: {
        idle: {
          description: 'Resting: STOP and EXIT are accepted.',
          tags: ['accepts-mounts'],
          on: {
            STOP: {
              target: 'stopping',
              actions: ['clearError', 'recordStopReason'],
              description: 'Stop reading /dev/fuse; the session stays mounted.',
            },
            EXIT: {
              target: 'interrupting',
              actions: ['clearError', 'recordStopReason'],
              description: 'Stop reading /dev/fuse, finish in-flight requests, keep the connection for a successor.',
            },
          },
        },
        stopping: {
          description: 'stopService runs: stop reading, finish the requests already read.',
          tags: ['busy'],
          invoke: {
            id: 'stopService',
            src: 'stopService',
            input: actorInput,
            onDone: { target: '#daemon.READY', description: 'Reading stopped.' },
            onError: {
              target: 'idle',
              actions: assign({ lastError: ({ event }) => toErrorInfo('stopService', event.error) }),
              description: 'Stop failed: still RUNNING.',
            },
          },
        },
        interrupting: {
          description: 'interruptService runs: no new reads of /dev/fuse, in-flight replies finish.',
          tags: ['busy'],
          invoke: {
            id: 'interruptService',
            src: 'interruptService',
            input: actorInput,
            onDone: { target: '#daemon.INTERRUPTED', description: 'Reading stopped, connection kept.' },
            onError: {
              target: 'idle',
              actions: assign({ lastError: ({ event }) => toErrorInfo('interruptService', event.error) }),
              description: 'Interrupt failed: still RUNNING.',
            },
          },
        },
      },
    },
    INTERRUPTED: {
      description: 'Reading stopped; the FUSE connection is kept (never unmounted) for the daemon that takes over.',
      tags: ['has-fuse-connection'],
      on: {
        EXIT: {
          target: 'STOPPED',
          actions: ['clearError', 'recordStopReason'],
          description: 'Leave without unmounting.',
        },
        STOP: {
          target: 'STOPPED',
          actions: ['clearError', 'recordStopReason'],
          description: 'Leave without unmounting (the successor owns the connection).',
        },
      },
    },
    STOPPED: {
      description: 'Final. The process exits; whether the mount remains depends on the path taken.',
      type: 'final',
    },
  },
});

/** The machine's type and its snapshot type. */
export type DaemonMachine = typeof daemonMachine;
export type DaemonSnapshot = SnapshotFrom<DaemonMachine>;

/** The state a supervisor sees: the top-level state name, sub-states folded in. */
export function reportedState(snapshot: DaemonSnapshot): DaemonStateName {
  const v = snapshot.value as string | Record<string, unknown>;
  return (typeof v === 'string' ? v : Object.keys(v)[0]) as DaemonStateName;
}

/** The full dotted state path, e.g. `READY.starting` (what the journal records as from/to). */
export function stateKey(snapshot: DaemonSnapshot): string {
  const parts: string[] = [];
  let v: unknown = snapshot.value;
  while (v !== undefined) {
    if (typeof v === 'string') {
      parts.push(v);
      break;
    }
    const [k] = Object.keys(v as object);
    parts.push(k);
    v = (v as Record<string, unknown>)[k];
  }
  return parts.join('.');
}
