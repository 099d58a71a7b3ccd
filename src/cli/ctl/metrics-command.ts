// `nydusctl metrics`: one metrics set of the daemon (docs/contract.md §6) as tables,
// or its JSON with --json. Without --id the daemon picks its only instance. Upstream's
// form `metrics CATEGORY [-I SECS]` (backend, cache, fsstats) prints upstream's layout.
import type { Command } from 'commander';
import type { InflightEntry, MetricsKind } from '../../daemon/control.js';
import { ConfigError } from '../../errors.js';
import { print, printAs, withClient } from './context.js';
import { renderUpstreamBackend, renderUpstreamBackendDelta, renderUpstreamCache, renderUpstreamFsStats } from './upstream-metrics.js';
import { bytes, keyValues, table } from './format.js';

const KINDS = ['fs', 'files', 'pattern', 'backend', 'blobcache', 'inflight'] as const;
type Kind = (typeof KINDS)[number];

const FOPS = ['getattr', 'readlink', 'open', 'release', 'read', 'statfs', 'getxattr', 'listxattr', 'opendir', 'lookup', 'readdir', 'readdirplus', 'access', 'forget', 'batch_forget'];
const SIZES = ['<1K', '1K', '4K', '16K', '64K', '128K', '512K', '1M+'];
const FS_LATENCY = ['<=200us', '<=1ms', '<=20ms', '<=50ms', '<=500ms', '<=1s', '<=2s', '>2s'];

type Obj = Record<string, unknown>;
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const list = (v: unknown): number[] => (Array.isArray(v) ? v.map(num) : []);

/** Scalar fields of an object as key/value lines, arrays left out. */
function scalars(o: Obj): string {
  return keyValues(Object.entries(o).filter(([, v]) => !Array.isArray(v) && (typeof v !== 'object' || v === null)).map(([k, v]) => [k, v as string]));
}

function renderFs(o: Obj): string {
  const hits = list(o.fop_hits);
  const errors = list(o.fop_errors);
  const lat = list(o.fop_cumulative_latency_total);
  const ops = FOPS.map((op, i) => [op, hits[i] ?? 0, errors[i] ?? 0, hits[i] ? Math.round((lat[i] ?? 0) / hits[i]) : 0] as const).filter((r) => r[1] > 0 || r[2] > 0);
  const blocks = list(o.block_count_read);
  const dist = list(o.read_latency_dist);
  return [
    scalars({ ...o, data_read: `${num(o.data_read)} (${bytes(num(o.data_read))})` }),
    ops.length === 0 ? 'no operations yet\n' : table(['OP', 'HITS', 'ERRORS', 'AVG_US'], ops),
    table(['READ SIZE', 'COUNT'], SIZES.map((s, i) => [s, blocks[i] ?? 0])),
    table(['READ LATENCY', 'COUNT'], FS_LATENCY.map((s, i) => [s, dist[i] ?? 0])),
  ].join('\n');
}

function renderFiles(v: unknown): string {
  if (Array.isArray(v)) {
    if (v.length === 0) return 'no files read since the last call\n';
    return table(['INODES'], v.map((r) => [Array.isArray(r) && r.length === 2 ? `${r[0]}-${r[1]}` : String(r)]));
  }
  const rows = Object.entries((v ?? {}) as Record<string, Obj>).map(([ino, f]) => [ino, num(f.total_fops), num(f.data_read)]);
  return rows.length === 0 ? 'no per-file metrics (iostats_files is off)\n' : table(['INODE', 'FOPS', 'BYTES_READ'], rows);
}

function renderPattern(v: unknown): string {
  const rows = (Array.isArray(v) ? (v as Obj[]) : []).map((p) => [num(p.ino), num(p.nr_read), new Date(num(p.first_access_time_secs) * 1000).toISOString()]);
  return rows.length === 0 ? 'no access pattern recorded\n' : table(['INODE', 'READS', 'FIRST_ACCESS'], rows);
}

function renderBackend(o: Obj): string {
  const sizes = list(o.read_count_block_size_dist);
  return [
    scalars({ ...o, read_amount_total: `${num(o.read_amount_total)} (${bytes(num(o.read_amount_total))})` }),
    table(['READ SIZE', 'COUNT'], SIZES.map((s, i) => [s, sizes[i] ?? 0])),
  ].join('\n');
}

function renderBlobcache(o: Obj): string {
  const files = Array.isArray(o.underlying_files) ? (o.underlying_files as string[]) : [];
  return [scalars(o), files.length === 0 ? '' : table(['UNDERLYING FILE'], files.map((f) => [f]))].join('\n');
}

function renderInflight(entries: InflightEntry[]): string {
  if (entries.length === 0) return 'no requests in flight\n';
  const now = Date.now() / 1000;
  return table(['INODE', 'OPCODE', 'UNIQUE', 'AGE_S'], entries.map((e) => [e.inode, e.opcode, e.unique, Math.max(0, Math.round(now - e.timestamp_secs))]));
}

/** Upstream's metrics categories, with the kinds they fetch. */
const CATEGORIES: Record<string, Kind> = { backend: 'backend', cache: 'blobcache', blobcache: 'blobcache', fsstats: 'fs', files: 'files', pattern: 'pattern', inflight: 'inflight' };

/** Upstream's rendering of a category, where upstream has one. */
function upstreamRendering(category: string, v: unknown): string | undefined {
  if (category === 'backend') return renderUpstreamBackend(v as Obj);
  if (category === 'cache' || category === 'blobcache') return renderUpstreamCache(v as Obj);
  if (category === 'fsstats') return renderUpstreamFsStats(v as Obj);
  return undefined;
}

/** Registers `metrics` on `program`. */
export function registerMetricsCommand(program: Command): void {
  program
    .command('metrics')
    .description('show daemon metrics')
    .argument('[category]', `upstream's form: one of ${Object.keys(CATEGORIES).join(', ')}`)
    .option('--kind <kind>', `one of ${KINDS.join(', ')}`)
    .option('--id <id>', 'instance: the VFS mountpoint (fs, files, pattern) or config id (backend, blobcache)')
    .option('--latest', 'files: the files read since the last call (clears the list)')
    .option('-I, --interval <secs>', 'backend: print what changed every SECS seconds, until interrupted')
    .action((category: string | undefined, o: { kind?: string; id?: string; latest?: boolean; interval?: string }, cmd: Command) =>
      withClient(cmd, async (c, opts) => {
        if (category !== undefined && !(category in CATEGORIES)) {
          throw new ConfigError('ERR_CLI_USAGE', `failed to parse metrics category ${category}: not one of ${Object.keys(CATEGORIES).join(', ')}`);
        }
        if (category !== undefined && o.kind !== undefined) throw new ConfigError('ERR_CLI_USAGE', 'give a metrics category or --kind, not both');
        const given = o.kind ?? 'fs';
        if (!(KINDS as readonly string[]).includes(given)) {
          throw new ConfigError('ERR_CLI_USAGE', `failed to parse --kind ${given}: not one of ${KINDS.join(', ')}`);
        }
        const kind = category !== undefined ? CATEGORIES[category] : (given as Kind);
        if (o.interval !== undefined) {
          const secs = Number(o.interval);
          if (category !== 'backend' || !Number.isInteger(secs) || secs <= 0) {
            throw new ConfigError('ERR_CLI_USAGE', '-I/--interval takes a positive number of seconds, with the backend category');
          }
          let last = (await c.metrics('backend', { id: o.id })) as Obj;
          for (;;) {
            await new Promise((r) => setTimeout(r, secs * 1000));
            const cur = (await c.metrics('backend', { id: o.id })) as Obj;
            print(renderUpstreamBackendDelta(last, cur, secs));
            last = cur;
          }
        }
        if (kind === 'inflight') {
          const entries = await c.inflight();
          printAs(opts, entries, () => renderInflight(entries));
          return;
        }
        const v = await c.metrics(kind as MetricsKind, { id: o.id, latest: o.latest });
        const upstream = category === undefined ? undefined : upstreamRendering(category, v);
        printAs(opts, v, () => {
          if (upstream !== undefined) return upstream;
          switch (kind) {
            case 'fs':
              return renderFs(v as Obj);
            case 'files':
              return renderFiles(v);
            case 'pattern':
              return renderPattern(v);
            case 'backend':
              return renderBackend(v as Obj);
            case 'blobcache':
              return renderBlobcache(v as Obj);
          }
        });
      }),
    );
}
