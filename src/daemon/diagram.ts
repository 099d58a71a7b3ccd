// Draws the lifecycle from the machine definition the daemon runs (never from a copy):
// a JSON graph, Mermaid `stateDiagram-v2` and Graphviz dot, optionally marking the
// current state and a path taken (transitions from the journal). Also renders
// docs/lifecycle.{mmd,md}, whose state × event table is computed from the machine.
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { DAEMON_ACTORS, DAEMON_EVENT_TYPES, ACTOR_DEFAULT_CODES, UPSTREAM_EVENT_TYPES, daemonMachine } from '../../machines/daemon.js';
import type { DaemonEventType, DaemonStateName } from '../../machines/daemon.js';
import { lifecycleTable, triggerPath } from '../../machines/daemon-table.js';
import type { EventOutcome, LifecycleRow } from '../../machines/daemon-table.js';

/** A state node of the graph; `id` is the dotted state key. */
export interface GraphState {
  id: string;
  name: string;
  parent: string | null;
  type: string;
  /** For a compound state, the leaf it enters first. */
  initial: string | null;
  description: string | null;
  tags: string[];
  /** Actors invoked while in this state. */
  invokes: string[];
}

/** One transition. `target` is the leaf actually entered (a compound target resolved through its initial states). */
export interface GraphTransition {
  source: string;
  target: string;
  /** The event type as the machine sees it, e.g. `START` or `xstate.done.actor.startService`. */
  event: string;
  /** `event` for external events, `done`/`error` for an actor's completion. */
  kind: 'event' | 'done' | 'error';
  actor: string | null;
  /** A short label: the event, or `<actor> done` / `<actor> failed`. */
  label: string;
  /** The named guard the transition is taken under, if any. */
  guard: string | null;
  description: string | null;
}

/** The machine as data. */
export interface LifecycleGraph {
  id: string;
  /** The leaf the machine starts in. */
  initial: string;
  finals: string[];
  events: string[];
  states: GraphState[];
  transitions: GraphTransition[];
  /** Events every active state accepts without leaving it (the machine's root handlers). */
  anywhere: Array<{ event: string; actions: string[]; description: string | null }>;
}

/** A step of a path to mark, as the journal's transition records give it. */
export interface PathStep {
  from: string;
  to: string;
  event?: string;
}

/** What to mark on a drawing. */
export interface MarkOptions {
  /** The current state key (a leaf or a top-level state). */
  current?: string;
  /** Transitions taken, in order; each taken edge is labelled with its step numbers. */
  path?: readonly PathStep[];
}

const key = (n: AnyStateNode): string => n.path.join('.');

function leafOf(n: AnyStateNode): AnyStateNode {
  let node = n;
  while (node.type === 'compound') node = node.initial.target[0];
  return node;
}

function allNodes(n: AnyStateNode): AnyStateNode[] {
  return (Object.values(n.states) as AnyStateNode[]).flatMap((c) => [c, ...allNodes(c)]);
}

function guardName(g: unknown): string | null {
  if (g === undefined || g === null) return null;
  return typeof g === 'string' ? g : ((g as { type?: string }).type ?? '?');
}

/** The machine definition as a graph: every state and every transition. */
export function machineGraph(machine: AnyStateMachine = daemonMachine): LifecycleGraph {
  const nodes = allNodes(machine.root);
  const states: GraphState[] = nodes.map((n) => ({
    id: key(n),
    name: n.key,
    parent: n.parent && n.parent !== machine.root ? key(n.parent) : null,
    type: n.type,
    initial: n.type === 'compound' ? key(leafOf(n)) : null,
    description: n.description ?? null,
    tags: [...n.tags],
    invokes: n.invoke.map((i) => i.id),
  }));
  const transitions: GraphTransition[] = [];
  for (const n of nodes) {
    for (const [event, defs] of n.transitions) {
      for (const d of defs) {
        for (const t of d.target ?? []) {
          const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event);
          const kind = m ? (m[1] as 'done' | 'error') : 'event';
          const actor = m ? m[2] : null;
          transitions.push({
            source: key(n),
            target: key(leafOf(t)),
            event,
            kind,
            actor,
            label: actor === null ? event : `${actor} ${kind === 'done' ? 'done' : 'failed'}`,
            guard: guardName(d.guard),
            description: d.description ?? null,
          });
        }
      }
    }
  }
  const anywhere = [...machine.root.transitions].flatMap(([event, defs]) =>
    defs.map((d) => ({ event, actions: d.actions.map((a) => (typeof a === 'string' ? a : ((a as { type?: string }).type ?? '?'))), description: d.description ?? null })),
  );
  return {
    id: machine.id,
    anywhere,
    initial: key(leafOf(machine.root)),
    finals: states.filter((s) => s.type === 'final').map((s) => s.id),
    events: [...new Set([...transitions.filter((t) => t.kind === 'event').map((t) => t.event), ...anywhere.map((a) => a.event)])],
    states,
    transitions,
  };
}

/** The step numbers (1-based) of `path` taken through each transition, plus steps matching none. */
function markPath(g: LifecycleGraph, path: readonly PathStep[]): { taken: Map<GraphTransition, number[]>; stray: Array<PathStep & { step: number }> } {
  const taken = new Map<GraphTransition, number[]>();
  const stray: Array<PathStep & { step: number }> = [];
  path.forEach((p, i) => {
    const t = g.transitions.find(
      (e) => e.target === p.to && (e.source === p.from || p.from.startsWith(e.source + '.')) && (p.event === undefined || e.event === p.event),
    );
    if (t) taken.set(t, [...(taken.get(t) ?? []), i + 1]);
    else stray.push({ ...p, step: i + 1 });
  });
  return { taken, stray };
}

function currentLeaf(g: LifecycleGraph, current: string | undefined): string | undefined {
  if (current === undefined) return undefined;
  const s = g.states.find((x) => x.id === current);
  if (s === undefined) throw new TypeError(`unknown state to mark: ${current}`);
  return s.initial ?? s.id;
}

const steps = (ns: number[] | undefined): string => (ns ? ` #${ns.join(',#')}` : '');

/** Mermaid `stateDiagram-v2` of the graph. */
export function toMermaid(g: LifecycleGraph, mark: MarkOptions = {}): string {
  const id = (k: string) => k.replace(/\./g, '_');
  const { taken, stray } = markPath(g, mark.path ?? []);
  const visited = new Set((mark.path ?? []).flatMap((p) => [p.from, p.to]));
  const out = ['stateDiagram-v2'];
  const emit = (parent: string | null, indent: string) => {
    for (const s of g.states.filter((x) => x.parent === parent)) {
      if (s.type === 'compound') {
        out.push(`${indent}state ${id(s.id)} {`);
        const first = g.states.find((x) => x.parent === s.id && s.initial !== null && (s.initial === x.id || s.initial.startsWith(x.id + '.')));
        if (first) out.push(`${indent}  [*] --> ${id(first.id)}`);
        emit(s.id, indent + '  ');
        out.push(`${indent}}`);
      } else {
        out.push(`${indent}state "${s.name}" as ${id(s.id)}`);
      }
    }
  };
  const top = g.states.find((s) => s.parent === null && (g.initial === s.id || g.initial.startsWith(s.id + '.')));
  if (top) out.push(`  [*] --> ${id(top.id)}`);
  emit(null, '  ');
  for (const t of g.transitions) out.push(`  ${id(t.source)} --> ${id(t.target)} : ${t.label}${steps(taken.get(t))}`);
  for (const p of stray) out.push(`  ${id(p.from)} --> ${id(p.to)} : ${p.event ?? '?'} #${p.step}`);
  for (const f of g.finals) out.push(`  ${id(f)} --> [*]`);
  const cur = currentLeaf(g, mark.current);
  if (visited.size > 0) {
    out.push('  classDef visited fill:#e7f5ff,stroke:#1c7ed6');
    const leaves = [...visited].filter((v) => v !== cur && g.states.some((s) => s.id === v && s.type !== 'compound'));
    if (leaves.length > 0) out.push(`  class ${leaves.map(id).join(',')} visited`);
  }
  if (cur !== undefined) {
    out.push('  classDef current fill:#ffd8a8,stroke:#d9480f,stroke-width:3px');
    out.push(`  class ${id(cur)} current`);
  }
  return out.join('\n') + '\n';
}

const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** Graphviz dot of the graph (compound states as clusters). */
export function toDot(g: LifecycleGraph, mark: MarkOptions = {}): string {
  const { taken, stray } = markPath(g, mark.path ?? []);
  const cur = currentLeaf(g, mark.current);
  const out = [
    `digraph ${q(g.id)} {`,
    '  rankdir=LR;',
    '  compound=true;',
    '  fontname="Helvetica";',
    '  node [shape=box, style=rounded, fontname="Helvetica"];',
    '  edge [fontname="Helvetica", fontsize=10];',
    '  "__initial" [shape=point, width=0.15, label=""];',
  ];
  const nodeAttrs = (s: GraphState) => {
    const a = [`label=${q(s.name)}`];
    if (s.type === 'final') a.push('shape=doublecircle');
    if (s.id === cur) a.push('style="rounded,filled"', 'fillcolor="#ffd8a8"', 'penwidth=3');
    return a.join(', ');
  };
  const emit = (parent: string | null, indent: string) => {
    for (const s of g.states.filter((x) => x.parent === parent)) {
      if (s.type === 'compound') {
        out.push(`${indent}subgraph ${q('cluster_' + s.id)} {`, `${indent}  label=${q(s.name)};`);
        emit(s.id, indent + '  ');
        out.push(`${indent}}`);
      } else {
        out.push(`${indent}${q(s.id)} [${nodeAttrs(s)}];`);
      }
    }
  };
  emit(null, '  ');
  out.push(`  "__initial" -> ${q(g.initial)};`);
  const leafFor = (k: string) => g.states.find((s) => s.id === k)?.initial ?? k;
  for (const t of g.transitions) {
    const a = [`label=${q(t.label + steps(taken.get(t)))}`];
    if (leafFor(t.source) !== t.source) a.push(`ltail=${q('cluster_' + t.source)}`);
    if (t.kind === 'error') a.push('style=dashed');
    if (taken.has(t)) a.push('color="#d9480f"', 'penwidth=2');
    out.push(`  ${q(leafFor(t.source))} -> ${q(t.target)} [${a.join(', ')}];`);
  }
  for (const p of stray) {
    out.push(`  ${q(leafFor(p.from))} -> ${q(leafFor(p.to))} [label=${q(`${p.event ?? '?'} #${p.step}`)}, color="#d9480f", style=dotted];`);
  }
  out.push('}');
  return out.join('\n') + '\n';
}

/** The graph as pretty JSON (the same data as machineGraph). */
export function toJson(g: LifecycleGraph): string {
  return JSON.stringify(g, null, 2) + '\n';
}

// ---- docs/lifecycle.{mmd,md} ----------------------------------------------

const REGENERATE = 'node --import tsx scripts/gen-lifecycle-docs.mjs';

function cell(state: string, type: DaemonEventType, o: EventOutcome): string {
  if (!o.accepted) return UPSTREAM_EVENT_TYPES.has(type) ? 'refused: UnexpectedEvent' : 'refused: NotReady';
  const guard = o.guard === undefined ? '' : `if ${o.guard}: `;
  if (o.actor === undefined) return o.next === state ? `${guard}stays` : `${guard}→ ${o.next}`;
  return `${guard}→ ${o.next} (${o.actor}); ok → ${o.onDone}; error → ${o.onError}`;
}

const md = (s: string | null) => (s ?? '').replace(/\|/g, '\\|');

/** The generated lifecycle docs: `mmd` is docs/lifecycle.mmd, `md` is docs/lifecycle.md. */
export function renderLifecycleDocs(): { mmd: string; md: string } {
  const g = machineGraph(daemonMachine);
  const mmd = toMermaid(g);
  const table = lifecycleTable();
  const lines = [
    '<!-- Generated from machines/daemon.ts by scripts/gen-lifecycle-docs.mjs. Do not edit: run',
    `     \`${REGENERATE}\`; a test fails while this file is stale. -->`,
    '# Daemon lifecycle',
    '',
    'The daemon\'s lifecycle machine (`machines/daemon.ts`), drawn from the definition the daemon runs.',
    'The reported state (`GET /api/v1/daemon`) is the top-level state; sub-states are where an actor',
    'runs, and every event but the ones accepted anywhere is refused there. What the daemon may do',
    'now is `snapshot.can(event)`. Decisions: `docs/decisions/0001-lifecycle-machine.md`,',
    '`docs/decisions/0016-machine-owns-the-lifecycle.md`.',
    '',
    '```mermaid',
    mmd.trimEnd(),
    '```',
    '',
    '## States',
    '',
    '| state | reported | tags | description |',
    '| --- | --- | --- | --- |',
    ...g.states.map((s) => {
      const row = table.find((r) => r.state === s.id);
      const tags = row ? row.tags.join(', ') : s.tags.join(', ');
      return `| \`${s.id}\` | ${s.id.split('.')[0]} | ${tags} | ${md(s.description)} |`;
    }),
    '',
    '## Events',
    '',
    'What each event gets in each state: the state entered at once, and for an actor state where its',
    'success and failure lead. A refused event changes nothing; the API answers 400 UnexpectedEvent for',
    'upstream\'s events and 503 NotReady for the others. `if <guard>`: refused while the guard is false',
    '(`imagesWritable`: not while awaiting a takeover or while the predecessor holds the journal).',
    '',
    `| state | ${DAEMON_EVENT_TYPES.join(' | ')} |`,
    `| --- |${DAEMON_EVENT_TYPES.map(() => ' --- |').join('')}`,
    ...table.map((r) => `| \`${r.state}\` | ${DAEMON_EVENT_TYPES.map((e) => cell(r.state, e, r.events[e])).join(' | ')} |`),
    '',
    '## Accepted in every state until STOPPED',
    '',
    '| event | actions | description |',
    '| --- | --- | --- |',
    ...g.anywhere.map((a) => `| ${a.event} | ${a.actions.join(', ')} | ${md(a.description)} |`),
    '',
    '## Actors (provided by the controller)',
    '',
    '| actor | runs in | on success | on failure | default error code |',
    '| --- | --- | --- | --- | --- |',
    ...DAEMON_ACTORS.map((a) => actorRow(g, a)),
    '',
    '## Composite triggers (one event each; the machine carries it through its actors)',
    '',
    'The states each trigger passes through from a resting state when every actor succeeds, computed',
    'from the definition. While an actor runs the controller waits for it to settle, then sends the trigger.',
    '',
    '| reported state | API exit (`TRIGGER_EXIT`) | SIGTERM/SIGINT (`TRIGGER_STOP`) |',
    '| --- | --- | --- |',
    ...restingStates(table).map(([name, k]) => {
      const path = (t: 'TRIGGER_EXIT' | 'TRIGGER_STOP') => {
        const p = triggerPath(t, k);
        return p === null ? 'wait until the actor settles' : p.length === 0 ? 'nothing' : p.map((s) => (s.actor === undefined ? s.state : `${s.state} (${s.actor})`)).join(' → ');
      };
      return `| ${name} | ${path('TRIGGER_EXIT')} | ${path('TRIGGER_STOP')} |`;
    }),
    '',
  ];
  return { mmd, md: lines.join('\n') };
}

function actorRow(g: LifecycleGraph, actor: string): string {
  const states = g.states.filter((s) => s.invokes.includes(actor)).map((s) => `\`${s.id}\``);
  const targets = (kind: 'done' | 'error') =>
    g.transitions
      .filter((t) => t.actor === actor && t.kind === kind)
      .map((t) => `${states.length > 1 ? `\`${t.source}\` → ` : ''}\`${t.target}\`${t.guard === null ? '' : ` if ${t.guard}`}`)
      .join('; ');
  const code = ACTOR_DEFAULT_CODES[actor as keyof typeof ACTOR_DEFAULT_CODES];
  return `| \`${actor}\` | ${states.join(', ')} | ${targets('done')} | ${targets('error')} | \`${code}\` |`;
}

/** For each reported state, one leaf to plan triggers from: a resting one when there is one. */
function restingStates(table: LifecycleRow[]): Array<[DaemonStateName, string]> {
  const out = new Map<DaemonStateName, LifecycleRow>();
  for (const r of table) {
    const prev = out.get(r.reported);
    if (prev === undefined || (prev.busy && !r.busy)) out.set(r.reported, r);
  }
  return [...out].map(([name, r]) => [name, r.state]);
}
