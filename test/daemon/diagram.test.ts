// Diagrams drawn from the machine definition: the JSON graph, Mermaid and dot hold
// every state and every transition of the hand-written spec (and nothing else), marks
// for the current state and a journal path, and the committed docs are not stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineGraph, renderLifecycleDocs, toDot, toJson, toMermaid } from '../../src/daemon/diagram.js';
import type { GraphTransition } from '../../src/daemon/diagram.js';
import { REPO_ROOT } from '../helpers/env.js';
import { EXPECTED } from '../machines/daemon-spec.js';
import { DAEMON_EVENT_TYPES, UPSTREAM_EVENT_TYPES } from '../../machines/daemon.js';

/** Events every state takes without leaving it: drawn as a list, not as edges. */
const ANYWHERE = ['SET_CONFIG', 'JOURNAL_ATTACHED'];

/** The spec's edges as [source, event type, target], each once. */
function specEdges(): Array<[string, string, string]> {
  const out = new Set<string>();
  for (const [from, row] of Object.entries(EXPECTED)) {
    for (const [type, want] of Object.entries(row)) {
      if (want === null || ANYWHERE.includes(type)) continue;
      out.add(JSON.stringify([from, type, want.next]));
      if (want.actor) {
        out.add(JSON.stringify([want.next, `xstate.done.actor.${want.actor}`, want.onDone!]));
        out.add(JSON.stringify([want.next, `xstate.error.actor.${want.actor}`, want.onError!]));
      }
    }
  }
  return [...out].map((e) => JSON.parse(e) as [string, string, string]);
}

const label = (event: string) => {
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event);
  return m ? `${m[2]} ${m[1] === 'done' ? 'done' : 'failed'}` : event;
};
const mid = (k: string) => k.replace(/\./g, '_');

test('the JSON graph has every state and exactly the spec transitions', () => {
  const g = machineGraph();
  assert.equal(g.id, 'daemon');
  assert.equal(g.initial, 'INIT.idle');
  assert.deepEqual(g.finals, ['STOPPED']);
  assert.deepEqual([...g.events].sort(), [...DAEMON_EVENT_TYPES].sort());
  assert.deepEqual(g.anywhere.map((a) => a.event), ANYWHERE);
  for (const a of g.anywhere) assert.ok(a.description && a.actions.length > 0, a.event);
  const leaves = g.states.filter((s) => s.type !== 'compound').map((s) => s.id);
  assert.deepEqual(leaves.sort(), Object.keys(EXPECTED).sort());
  assert.deepEqual(g.states.filter((s) => s.type === 'compound').map((s) => [s.id, s.initial]), [
    ['INIT', 'INIT.idle'],
    ['READY', 'READY.idle'],
    ['RUNNING', 'RUNNING.idle'],
    ['INTERRUPTED', 'INTERRUPTED.idle'],
  ]);
  const got = g.transitions.map((t) => [t.source, t.event, t.target]);
  assert.deepEqual(got.map((e) => JSON.stringify(e)).sort(), specEdges().map((e) => JSON.stringify(e)).sort());
  for (const t of g.transitions) assert.ok(t.description, `${t.source} ${t.event} has a description`);
  for (const s of g.states) assert.ok(s.description, `${s.id} has a description`);
  assert.deepEqual(g.states.find((s) => s.id === 'UPGRADING')!.invokes, ['restoreState']);
  assert.deepEqual(JSON.parse(toJson(g)), JSON.parse(JSON.stringify(g)));
});

test('Mermaid has every state and every transition', () => {
  const text = toMermaid(machineGraph());
  assert.ok(text.startsWith('stateDiagram-v2\n'));
  for (const key of Object.keys(EXPECTED)) assert.ok(text.includes(` as ${mid(key)}\n`), `state ${key}`);
  for (const c of ['INIT', 'READY', 'RUNNING', 'INTERRUPTED']) assert.ok(text.includes(`state ${c} {`), `composite ${c}`);
  for (const [from, ev, to] of specEdges()) assert.ok(text.includes(`  ${mid(from)} --> ${mid(to)} : ${label(ev)}\n`), `${from} ${ev} ${to}`);
  assert.ok(text.includes('  [*] --> INIT\n'));
  assert.ok(text.includes('  STOPPED --> [*]\n'));
  const arrows = text.split('\n').filter((l) => / --> /.test(l) && !l.includes('[*]'));
  assert.equal(arrows.length, specEdges().length, 'no extra transitions');
});

test('dot has every state as a node, clusters for compound states, every transition', () => {
  const text = toDot(machineGraph());
  assert.ok(text.startsWith('digraph "daemon" {'));
  assert.ok(text.trimEnd().endsWith('}'));
  for (const key of Object.keys(EXPECTED)) assert.match(text, new RegExp(`^\\s+"${key.replace('.', '\\.')}" \\[label=`, 'm'), key);
  for (const c of ['INIT', 'READY', 'RUNNING', 'INTERRUPTED']) assert.ok(text.includes(`subgraph "cluster_${c}" {`));
  for (const [from, ev, to] of specEdges()) assert.ok(text.includes(`  "${from}" -> "${to}" [label="${label(ev)}`), `${from} ${ev} ${to}`);
  assert.ok(text.includes('"__initial" -> "INIT.idle";'));
  assert.match(text, /"STOPPED" \[label="STOPPED", shape=doublecircle\]/);
  assert.equal(text.split('\n').filter((l) => / -> /.test(l) && !l.includes('__initial')).length, specEdges().length);
});

test('marks: the current state, and a journal path with step numbers', () => {
  const g = machineGraph();
  const path = [
    { from: 'INIT.idle', to: 'INIT.mounting', event: 'MOUNT' },
    { from: 'INIT.mounting', to: 'READY.idle', event: 'xstate.done.actor.mountSession' },
    { from: 'READY.idle', to: 'READY.starting', event: 'START' },
    { from: 'READY.starting', to: 'READY.idle' }, // event unknown: matched by states alone
    { from: 'READY.idle', to: 'READY.starting', event: 'START' },
    { from: 'READY.starting', to: 'UPGRADING', event: 'BOGUS' }, // not an edge of the machine
  ];
  const m = toMermaid(g, { current: 'READY.starting', path });
  assert.ok(m.includes('  INIT_idle --> INIT_mounting : MOUNT #1\n'));
  assert.ok(m.includes('  READY_idle --> READY_starting : START #3,#5\n'));
  assert.ok(m.includes('  READY_starting --> READY_idle : startService failed #4\n'));
  assert.ok(m.includes('  READY_starting --> UPGRADING : BOGUS #6\n'), 'a step the machine lacks is still drawn');
  assert.ok(m.includes('  class READY_starting current\n'));
  assert.match(m, /class (\w+,)*INIT_idle(,\w+)* visited/);
  const d = toDot(g, { current: 'RUNNING', path });
  assert.match(d, /"RUNNING\.idle" \[label="idle", style="rounded,filled"/);
  assert.match(d, /"READY\.idle" -> "READY\.starting" \[label="START #3,#5", color="#d9480f", penwidth=2\]/);
  assert.match(d, /"READY\.starting" -> "UPGRADING" \[label="BOGUS #6", color="#d9480f", style=dotted\]/);
  assert.throws(() => toMermaid(g, { current: 'NOPE' }), /unknown state/);
  const plain = toMermaid(g);
  assert.ok(!plain.includes('classDef'), 'no marks unless asked');
});

test('the graph reads any machine, not just the daemon', async () => {
  const { setup } = await import('xstate');
  const tiny = setup({}).createMachine({ id: 'tiny', initial: 'a', states: { a: { on: { GO: 'b' } }, b: { type: 'final' } } });
  const g = machineGraph(tiny);
  assert.deepEqual(
    g.transitions.map((t: GraphTransition) => [t.source, t.event, t.target, t.kind]),
    [['a', 'GO', 'b', 'event']],
  );
  assert.ok(toMermaid(g).includes('  a --> b : GO\n'));
});

test('docs/lifecycle.{mmd,md} are what the machine generates now (regenerate: node --import tsx scripts/gen-lifecycle-docs.mjs)', () => {
  const { mmd, md } = renderLifecycleDocs();
  assert.equal(readFileSync(join(REPO_ROOT, 'docs', 'lifecycle.mmd'), 'utf8'), mmd, 'docs/lifecycle.mmd is stale');
  assert.equal(readFileSync(join(REPO_ROOT, 'docs', 'lifecycle.md'), 'utf8'), md, 'docs/lifecycle.md is stale');
  assert.ok(md.includes(mmd.trimEnd()), 'the page embeds the diagram');
  // Every refused pair of the spec reads "refused" in the table (UnexpectedEvent for upstream's
  // events, NotReady for the others), every accepted one names its target and guard.
  const n = DAEMON_EVENT_TYPES.length;
  for (const [state, row] of Object.entries(EXPECTED)) {
    const line = md.split('\n').find((l) => l.startsWith(`| \`${state}\` | `) && l.split('|').length === n + 3)!;
    assert.ok(line, `table row for ${state}`);
    const cells = line.split('|').slice(2, n + 2).map((c) => c.trim());
    DAEMON_EVENT_TYPES.forEach((type, i) => {
      const want = row[type];
      if (want === null) assert.equal(cells[i], UPSTREAM_EVENT_TYPES.has(type) ? 'refused: UnexpectedEvent' : 'refused: NotReady', `${state} ${type}`);
      else if (want.next === state) assert.equal(cells[i], 'stays', `${state} ${type}`);
      else assert.ok(cells[i].startsWith(`${want.guard ? `if ${want.guard}: ` : ''}→ ${want.next}`), `${state} ${type}: ${cells[i]}`);
    });
  }
});
