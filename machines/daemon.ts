// The daemon lifecycle as a pure XState definition: states, events, tags, the named
// guards and actions that decide and record, and the names and types of the actors
// that do the work. Everything that decides what the daemon may do next is state or
// context here, so `snapshot.can(event)` is the one answer. Nothing here touches FUSE,
// files or the network: the placeholder actors reject, and src/daemon/controller.ts
// supplies the real ones (and the applyConfig action) with `daemonMachine.provide()`.
// The diagram tools, the journal replay and the tests read this same object.
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

/**
 * The event types the machine knows, in the order tables list them. The first five are
 * upstream's `DaemonStateMachineInput`; TRIGGER_STOP and TRIGGER_EXIT are upstream's
 * composite `trigger_stop` (SIGTERM) and `trigger_exit` (API exit), which the machine
 * carries through to STOPPED itself; the rest are the admin API's other writes and the
 * journal's hand-over, so that `snapshot.can(event)` alone says what the daemon may do.
 */
export const DAEMON_EVENT_TYPES = [
  'MOUNT',
  'START',
  'TAKEOVER',
  'STOP',
  'EXIT',
  'TRIGGER_STOP',
  'TRIGGER_EXIT',
  'MOUNT_IMAGE',
  'REMOUNT_IMAGE',
  'UMOUNT_IMAGE',
  'SEND_FD',
  'SET_CONFIG',
  'JOURNAL_ATTACHED',
] as const;
export type DaemonEventType = (typeof DAEMON_EVENT_TYPES)[number];

/** The events upstream names (`UnexpectedEvent("Start")` when refused); the others are refused as NotReady. */
export const UPSTREAM_EVENT_TYPES: ReadonlySet<DaemonEventType> = new Set(['MOUNT', 'START', 'TAKEOVER', 'STOP', 'EXIT', 'TRIGGER_STOP', 'TRIGGER_EXIT']);

/**
 * Who asked for an event. `api`: an admin API call; `startup`: the daemon's own
 * start sequence; `signal`: SIGTERM/SIGINT; `connection-lost`: the kernel ended the
 * FUSE connection (umount, abort).
 */
export type EventReason = 'api' | 'startup' | 'signal' | 'connection-lost';

/** Why the daemon reached STOPPED: the reason of the event that stopped it, `exit` for the API's exit. */
export type EndReason = EventReason | 'exit';

/** An image mount request as the API gives it (upstream `ApiMountCmd`). */
export interface ImageCmd {
  source: string;
  fs_type: string;
  config: string;
  prefetch_files: string[] | null;
}

/**
 * An event sent to the daemon machine. `mountpoint` goes with the image events, `cmd`
 * with MOUNT_IMAGE and REMOUNT_IMAGE, `id` and `values` with SET_CONFIG.
 */
export interface DaemonEvent {
  type: DaemonEventType;
  reason: EventReason;
  mountpoint?: string;
  cmd?: ImageCmd;
  id?: string;
  values?: Record<string, string>;
}

/** Tags, so callers ask questions instead of matching state names. */
export const DaemonTag = {
  /** The session reads /dev/fuse and answers the kernel (reported RUNNING). */
  serving: 'serving',
  /** The daemon holds a live kernel FUSE connection (its /dev/fuse fd). */
  hasFuseConnection: 'has-fuse-connection',
  /** An actor is running; every event but SET_CONFIG and JOURNAL_ATTACHED is refused until it settles. */
  busy: 'busy',
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

/** A composite trigger under way: where the actors' successes lead depends on it. */
export type PendingTrigger = 'stop' | 'exit';

/** The machine's context. JSON-serialisable: it travels in snapshots and journals. */
export interface DaemonContext {
  /** Kernel FUSE connection id (`major<<20|minor` of the mountpoint's st_dev) once known. */
  connId: number | null;
  /** The failure of the most recent actor, null when it succeeded (cleared on each accepted event). */
  lastError: DaemonErrorInfo | null;
  /** The reason of the last accepted event; what the actors it starts receive. */
  reason: EventReason | null;
  /** Why the machine stopped (set by the STOP, EXIT or trigger that got it there). */
  endReason: EndReason | null;
  /** True once a takeover restored state and fd from a supervisor. */
  restored: boolean;
  /** Started for an upgrade or failover: image mounts come from the predecessor, so the API's are refused until a takeover. */
  awaitingTakeover: boolean;
  /** The journal is still held by the predecessor: records stay in memory and image mounts are refused (it may still allocate indexes). */
  journalDeferred: boolean;
  /** The composite trigger in progress, null when none. */
  pending: PendingTrigger | null;
  /** The PUT /api/v1/config store, `"<id>:<key>"` → value. Secrets included: only the 0600 journal keeps them; the API redacts. */
  config: Record<string, string>;
}

/** What the machine is created with (`createActor(machine, { input })`). */
export interface DaemonInput {
  awaitingTakeover?: boolean;
  journalDeferred?: boolean;
}

/** The context a machine created with `input` starts with. */
export function initialContext(input: DaemonInput = {}): DaemonContext {
  return {
    connId: null,
    lastError: null,
    reason: null,
    endReason: null,
    restored: false,
    awaitingTakeover: input.awaitingTakeover === true,
    journalDeferred: input.journalDeferred === true,
    pending: null,
    config: {},
  };
}

/** What every actor receives: why it runs, the connection id known so far, and the image event's fields. */
export interface DaemonActorInput {
  reason: EventReason;
  connId: number | null;
  /** changeImage: which change. */
  op?: ImageOp;
  mountpoint?: string;
  cmd?: ImageCmd;
}

/** The image changes `changeImage` makes. */
export type ImageOp = 'mount' | 'remount' | 'umount';

/** What `mountSession` resolves with. */
export interface SessionOutput {
  /** The kernel FUSE connection id, or null when it cannot be known (e.g. fuse-native). */
  connId: number | null;
}

/** What `restoreState` resolves with: the connection, and the config store the predecessor had. */
export interface RestoreOutput extends SessionOutput {
  config: Record<string, string>;
}

/** The names of the actors the controller must provide. */
export const DAEMON_ACTORS = [
  'mountSession',
  'restoreState',
  'startService',
  'stopService',
  'interruptService',
  'unmountSession',
  'changeImage',
  'sendFd',
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
  changeImage: 'ERR_DAEMON_BOOTSTRAP',
  sendFd: 'ERR_DAEMON_UPGRADE',
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

const IMAGE_OPS: Partial<Record<DaemonEventType, ImageOp>> = { MOUNT_IMAGE: 'mount', REMOUNT_IMAGE: 'remount', UMOUNT_IMAGE: 'umount' };

const actorInput = ({ context, event }: { context: DaemonContext; event: DaemonEvent }): DaemonActorInput => {
  const input: DaemonActorInput = { reason: context.reason ?? event.reason, connId: context.connId };
  const op = IMAGE_OPS[event.type];
  if (op === undefined) return input;
  return { ...input, op, mountpoint: event.mountpoint, ...(event.cmd === undefined ? {} : { cmd: event.cmd }) };
};

/** The parameterised `recordError` action, for an actor's onError. */
const recordError = (actor: DaemonActorName) => ({ type: 'recordError' as const, params: { actor } });

/** The daemon lifecycle machine. Provide real actors with `.provide({ actors })`. */
export const daemonMachine = setup({
  types: {
    context: {} as DaemonContext,
    events: {} as DaemonEvent,
    tags: {} as DaemonTagName,
    output: {} as { endReason: EndReason | null; lastError: DaemonErrorInfo | null },
  },
  actors: {
    mountSession: placeholder<SessionOutput>('mountSession'),
    restoreState: placeholder<RestoreOutput>('restoreState'),
    startService: placeholder<void>('startService'),
    stopService: placeholder<void>('stopService'),
    interruptService: placeholder<void>('interruptService'),
    unmountSession: placeholder<void>('unmountSession'),
    changeImage: placeholder<void>('changeImage'),
    sendFd: placeholder<void>('sendFd'),
  },
  guards: {
    /** Image mounts may change: not waiting for a predecessor's mounts, and the journal (with its index allocation) is ours. */
    imagesWritable: ({ context }) => !context.awaitingTakeover && !context.journalDeferred,
    /** A TRIGGER_STOP is under way: after reading stopped, unmount. */
    stopPending: ({ context }) => context.pending === 'stop',
    /** A TRIGGER_EXIT is under way: after reading stopped, leave. */
    exitPending: ({ context }) => context.pending === 'exit',
  },
  actions: {
    /** Every accepted event: the last error is forgotten, the reason kept for the actors it starts. */
    accept: assign({ lastError: null, reason: ({ event }) => event.reason }),
    /** STOP, EXIT and the triggers: remember why the daemon is stopping. */
    recordEndReason: assign({ endReason: ({ event }) => (event.type === 'TRIGGER_EXIT' && event.reason === 'api' ? 'exit' : event.reason) }),
    beginStop: assign({ pending: 'stop' as PendingTrigger }),
    beginExit: assign({ pending: 'exit' as PendingTrigger }),
    storeConfig: assign({
      config: ({ context, event }) => {
        const next = { ...context.config };
        for (const [k, v] of Object.entries(event.values ?? {})) next[`${event.id ?? ''}:${k}`] = v;
        return next;
      },
    }),
    /** Hands changed config (registry auth) to the mounts it names: the controller provides it; pure, it does nothing. */
    applyConfig: () => undefined,
    markJournalAttached: assign({ journalDeferred: false }),
    /** An actor failed: keep its error as JSON; a trigger under way ends there. */
    recordError: assign(({ event }, params: { actor: DaemonActorName }) => ({
      lastError: toErrorInfo(params.actor, (event as unknown as { error: unknown }).error),
      pending: null,
    })),
  },
}).createMachine({
  id: 'daemon',
  description: 'The nydusd lifecycle (upstream service/src/daemon.rs, with the v1 UPGRADING and INTERRUPTED states).',
  initial: 'INIT',
  // Input is left untyped in setup (then optional for createActor); it is a DaemonInput or nothing.
  context: ({ input }) => initialContext(input as DaemonInput | undefined),
  output: ({ context }) => ({ endReason: context.endReason, lastError: context.lastError }),
  on: {
    SET_CONFIG: {
      actions: ['storeConfig', 'applyConfig'],
      description: 'PUT /api/v1/config: store the values and hand new credentials to the mounts of that id; accepted until STOPPED.',
    },
    JOURNAL_ATTACHED: {
      actions: 'markJournalAttached',
      description: 'The predecessor released the journal; this daemon writes it from now on.',
    },
  },
  states: {
    INIT: {
      description: 'Started, nothing served yet: waiting for MOUNT (normal start) or TAKEOVER (upgrade, failover).',
      initial: 'idle',
      states: {
        idle: {
          description: 'Resting: MOUNT, TAKEOVER, STOP, EXIT, the triggers and (unless awaiting a takeover) image changes are accepted.',
          on: {
            MOUNT: { target: 'mounting', actions: 'accept', description: 'Mount the FUSE session and the --bootstrap image.' },
            TAKEOVER: { target: '#daemon.UPGRADING', actions: 'accept', description: 'Fetch state and /dev/fuse fd from the supervisor.' },
            STOP: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'Nothing to release.' },
            EXIT: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'Nothing to release.' },
            TRIGGER_STOP: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'Nothing to release.' },
            TRIGGER_EXIT: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'Nothing to release.' },
            ...imageEvents('Change the image mounts before the session is mounted.'),
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
            onError: { target: 'idle', actions: recordError('mountSession'), description: 'Mount failed: back to INIT with the error recorded.' },
          },
        },
        changingImage: changingImage('INIT'),
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
          actions: assign({
            connId: ({ event }) => event.output.connId,
            config: ({ event }) => ({ ...event.output.config }),
            restored: true,
            awaitingTakeover: false,
          }),
          description: 'Restored: the inherited connection is held, not yet served; the config store is the predecessor\'s.',
        },
        onError: { target: 'INIT', actions: recordError('restoreState'), description: 'Restore failed: back to INIT, a later TAKEOVER may retry.' },
      },
    },
    READY: {
      description: 'The FUSE connection is held and the mounts are in place; nothing reads /dev/fuse.',
      tags: ['has-fuse-connection'],
      initial: 'idle',
      states: {
        idle: {
          description: 'Resting: START, STOP, EXIT, the triggers, image changes and SEND_FD are accepted.',
          on: {
            START: { target: 'starting', actions: 'accept', description: 'Start reading /dev/fuse.' },
            STOP: { target: 'unmounting', actions: ['accept', 'recordEndReason'], description: 'Unmount the FUSE session, then stop.' },
            EXIT: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'Stop without unmounting: the connection stays for a successor.' },
            TRIGGER_STOP: { target: 'unmounting', actions: ['accept', 'recordEndReason'], description: 'SIGTERM: unmount the FUSE session, then stop.' },
            TRIGGER_EXIT: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'API exit: stop without unmounting.' },
            ...imageEvents('Change the image mounts; nothing is served yet.'),
            SEND_FD: { target: 'sendingFd', actions: 'accept', description: 'Send state and a dup of the FUSE fd to the supervisor.' },
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
            onError: { target: 'idle', actions: recordError('startService'), description: 'Start failed: still READY.' },
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
            onError: { target: 'idle', actions: recordError('unmountSession'), description: 'Unmount failed: still READY; EXIT stops without unmounting.' },
          },
        },
        changingImage: changingImage('READY'),
        sendingFd: sendingFd('READY'),
      },
    },
    RUNNING: {
      description: 'The session reads /dev/fuse and serves the kernel.',
      tags: ['serving', 'has-fuse-connection'],
      initial: 'idle',
      states: {
        idle: {
          description: 'Resting: STOP, EXIT, the triggers, image changes and SEND_FD are accepted.',
          on: {
            STOP: { target: 'stopping', actions: ['accept', 'recordEndReason'], description: 'Stop reading /dev/fuse; the session stays mounted.' },
            EXIT: {
              target: 'interrupting',
              actions: ['accept', 'recordEndReason'],
              description: 'Stop reading /dev/fuse, finish in-flight requests, keep the connection for a successor.',
            },
            TRIGGER_STOP: {
              target: 'stopping',
              actions: ['accept', 'recordEndReason', 'beginStop'],
              description: 'SIGTERM: stop reading /dev/fuse, then unmount.',
            },
            TRIGGER_EXIT: {
              target: 'interrupting',
              actions: ['accept', 'recordEndReason', 'beginExit'],
              description: 'API exit: stop reading /dev/fuse, then leave without unmounting.',
            },
            ...imageEvents('Change the image mounts while serving.'),
            SEND_FD: { target: 'sendingFd', actions: 'accept', description: 'Send state and a dup of the FUSE fd to the supervisor.' },
          },
        },
        stopping: {
          description: 'stopService runs: stop reading, finish the requests already read.',
          tags: ['busy'],
          invoke: {
            id: 'stopService',
            src: 'stopService',
            input: actorInput,
            onDone: [
              { guard: 'stopPending', target: '#daemon.READY.unmounting', description: 'Reading stopped; SIGTERM goes on to unmount.' },
              { target: '#daemon.READY', description: 'Reading stopped.' },
            ],
            onError: { target: 'idle', actions: recordError('stopService'), description: 'Stop failed: still RUNNING.' },
          },
        },
        interrupting: {
          description: 'interruptService runs: no new reads of /dev/fuse, in-flight replies finish.',
          tags: ['busy'],
          invoke: {
            id: 'interruptService',
            src: 'interruptService',
            input: actorInput,
            onDone: [
              { guard: 'exitPending', target: '#daemon.STOPPED', description: 'Reading stopped; API exit leaves, the connection kept.' },
              { target: '#daemon.INTERRUPTED', description: 'Reading stopped, connection kept.' },
            ],
            onError: { target: 'idle', actions: recordError('interruptService'), description: 'Interrupt failed: still RUNNING.' },
          },
        },
        changingImage: changingImage('RUNNING'),
        sendingFd: sendingFd('RUNNING'),
      },
    },
    INTERRUPTED: {
      description: 'Reading stopped; the FUSE connection is kept (never unmounted) for the daemon that takes over.',
      tags: ['has-fuse-connection'],
      initial: 'idle',
      states: {
        idle: {
          description: 'Resting: STOP, EXIT, the triggers and SEND_FD are accepted.',
          on: {
            EXIT: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'Leave without unmounting.' },
            STOP: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'Leave without unmounting (the successor owns the connection).' },
            TRIGGER_STOP: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'Leave without unmounting (the successor owns the connection).' },
            TRIGGER_EXIT: { target: '#daemon.STOPPED', actions: ['accept', 'recordEndReason'], description: 'Leave without unmounting.' },
            SEND_FD: { target: 'sendingFd', actions: 'accept', description: 'Send state and a dup of the FUSE fd to the supervisor.' },
          },
        },
        sendingFd: sendingFd('INTERRUPTED'),
      },
    },
    STOPPED: {
      description: 'Final. The process exits; whether the mount remains depends on the path taken.',
      type: 'final',
      // Forbidden here: a stopped daemon changes nothing (the root would otherwise take them).
      on: { SET_CONFIG: {}, JOURNAL_ATTACHED: {} },
    },
  },
});

/** MOUNT_IMAGE, REMOUNT_IMAGE and UMOUNT_IMAGE in a resting state: into `changingImage` when images are writable. */
function imageEvents(why: string) {
  const ev = (what: string) => ({ guard: 'imagesWritable' as const, target: 'changingImage', actions: 'accept' as const, description: `${what}. ${why}` });
  return {
    MOUNT_IMAGE: ev('POST /api/v1/mount'),
    REMOUNT_IMAGE: ev('PUT /api/v1/mount'),
    UMOUNT_IMAGE: ev('DELETE /api/v1/mount'),
  };
}

/** A sub-state where `actor` runs and returns to the parent's `idle` whatever its outcome. */
function returningActor(actor: 'changeImage' | 'sendFd', description: string, done: string, failed: string) {
  return {
    description,
    tags: ['busy' as const],
    invoke: {
      id: actor,
      src: actor,
      input: actorInput,
      onDone: { target: 'idle', description: done },
      onError: { target: 'idle', actions: recordError(actor), description: failed },
    },
  };
}

function changingImage(parent: 'INIT' | 'READY' | 'RUNNING') {
  const what = `changeImage runs: one image is mounted, remounted or unmounted and journaled; still reported ${parent}.`;
  return returningActor('changeImage', what, 'The image table changed.', 'Nothing changed; the error is recorded.');
}

function sendingFd(parent: 'READY' | 'RUNNING' | 'INTERRUPTED') {
  const what = `sendFd runs: state and fd go to the supervisor; still reported ${parent}.`;
  return returningActor('sendFd', what, 'The supervisor holds state and fd.', 'Not sent; the error is recorded.');
}

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
