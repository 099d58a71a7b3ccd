// `nydusctl machine`: draws the lifecycle from the definition the daemon itself runs
// (GET /api/v1/daemon/machine), marking the current state and the path taken so far,
// as Mermaid, Graphviz dot or JSON.
import type { Command } from 'commander';
import type { MachineView } from '../../daemon/control.js';
import { toDot, toMermaid } from '../../daemon/diagram.js';
import type { LifecycleGraph, MarkOptions } from '../../daemon/diagram.js';
import { ApiError, ConfigError } from '../../errors.js';
import { print, withClient } from './context.js';
import { json } from './format.js';

const FORMATS = ['mermaid', 'dot', 'json'] as const;

/** The view's definition as a graph, checked: it crossed a socket. */
export function graphOf(view: MachineView): LifecycleGraph {
  const g = view.definition as Partial<LifecycleGraph> | null;
  const ok =
    typeof g === 'object' &&
    g !== null &&
    typeof g.id === 'string' &&
    typeof g.initial === 'string' &&
    Array.isArray(g.finals) &&
    Array.isArray(g.states) &&
    Array.isArray(g.transitions) &&
    g.states.every((s) => typeof s?.id === 'string' && typeof s.name === 'string') &&
    g.transitions.every((t) => typeof t?.source === 'string' && typeof t.target === 'string' && typeof t.label === 'string');
  if (!ok) throw new ApiError('ERR_API_RESPONSE', 'failed to draw the machine: the daemon sent a definition that is not a lifecycle graph');
  return g as LifecycleGraph;
}

/** The marks for a view: its current state and the transitions it reports. */
export function marksOf(view: MachineView): MarkOptions {
  return { current: view.stateKey, path: view.transitions.map((t) => ({ from: t.from, to: t.to, event: t.event })) };
}

/** Renders the view in `format`. */
function renderMachine(view: MachineView, format: (typeof FORMATS)[number]): string {
  const graph = graphOf(view);
  const mark = marksOf(view);
  try {
    if (format === 'mermaid') return toMermaid(graph, mark);
    if (format === 'dot') return toDot(graph, mark);
  } catch (err) {
    throw new ApiError('ERR_API_RESPONSE', `failed to draw the machine: ${(err as Error).message}`, { cause: err });
  }
  return json({ state: view.state, stateKey: view.stateKey, path: mark.path, graph });
}

/** Registers `machine` on `program`. */
export function registerMachineCommand(program: Command): void {
  program
    .command('machine')
    .description('draw the daemon lifecycle with its current state and the path taken')
    .option('--format <format>', `one of ${FORMATS.join(', ')}`, 'mermaid')
    .action((o: { format: string }, cmd: Command) =>
      withClient(cmd, async (c, opts) => {
        if (!(FORMATS as readonly string[]).includes(o.format)) {
          throw new ConfigError('ERR_CLI_USAGE', `failed to parse --format ${o.format}: not one of ${FORMATS.join(', ')}`);
        }
        const view = await c.machine();
        print(renderMachine(view, opts.json ? 'json' : (o.format as (typeof FORMATS)[number])));
      }),
    );
}
