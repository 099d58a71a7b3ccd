// Draws a running nydusd's lifecycle from the machine definition the daemon itself runs
// (GET /api/v1/daemon/machine), marking its current state and the transitions it took,
// as Mermaid and Graphviz dot files, plus an SVG when Graphviz `dot` is installed.
//
//   node --import tsx examples/lifecycle-diagram/main.ts --sock S --out DIR
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiClient } from '../../src/api/client.js';
import { graphOf, marksOf } from '../../src/cli/ctl/machine-command.js';
import { toDot, toMermaid } from '../../src/daemon/diagram.js';

const { values } = parseArgs({ options: { sock: { type: 'string' }, out: { type: 'string' } } });
if (!values.sock || !values.out) {
  console.error('usage: main.ts --sock API_SOCKET --out DIR');
  process.exit(2);
}
const out = values.out;

const client = new ApiClient(values.sock);
try {
  const view = await client.machine();
  const graph = graphOf(view);
  const mark = marksOf(view);
  console.log(`state ${view.state} (${view.stateKey}), ${mark.path!.length} transitions so far:`);
  for (const t of view.transitions) console.log(`  #${t.seq} ${t.from} -> ${t.to} on ${t.event}`);

  await mkdir(out, { recursive: true });
  const mmd = join(out, 'lifecycle.mmd');
  const dot = join(out, 'lifecycle.dot');
  await writeFile(mmd, toMermaid(graph, mark));
  await writeFile(dot, toDot(graph, mark));
  console.log(`wrote ${mmd}`);
  console.log(`wrote ${dot}`);
  const svg = spawnSync('dot', ['-Tsvg', dot, '-o', join(out, 'lifecycle.svg')]);
  if (svg.error === undefined && svg.status === 0) console.log(`wrote ${join(out, 'lifecycle.svg')}`);
  else console.log('no Graphviz `dot` here: render lifecycle.dot elsewhere, or paste lifecycle.mmd into a Mermaid viewer');
} finally {
  client.close();
}
