// GET /api/v1/metrics/prometheus (extension): the daemon's upstream-shaped metrics
// (fs, backend, blobcache; docs/contract.md §6) rendered in the Prometheus text
// exposition format 0.0.4, one sample per counter and array slot, labelled by instance
// id. Per-file metrics and access patterns are left out: one series per inode would be
// unbounded. Reads only; an instance that vanishes mid-scrape is skipped.
import type { DaemonControl, MetricsKind } from '../daemon/control.js';
import { NydusError } from '../errors.js';

/** Content-Type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const FOPS = [
  'getattr', 'readlink', 'open', 'release', 'read', 'statfs', 'getxattr', 'listxattr',
  'opendir', 'lookup', 'readdir', 'readdirplus', 'access', 'forget', 'batch_forget',
];
const BLOCK_SIZES = ['<1K', '1K', '4K', '16K', '64K', '128K', '512K', '1M+'];
const FS_LATENCY = ['<=200us', '<=1ms', '<=20ms', '<=50ms', '<=500ms', '<=1s', '<=2s', '>2s'];
const BACKEND_LATENCY = ['<=1ms', '<=20ms', '<=50ms', '<=100ms', '<=500ms', '<=1s', '<=2s', '>2s'];

type Labels = Record<string, string>;

/** How one field of a metrics object becomes samples. */
interface FieldSpec {
  field: string;
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** Label names for array dimensions, outermost first, with the value of each index. */
  dims?: Array<{ label: string; values: readonly string[] }>;
}

const SPECS: Partial<Record<MetricsKind, { prefix: string; fields: FieldSpec[]; labels?: (o: Record<string, unknown>) => Labels }>> = {
  fs: {
    prefix: 'nydusd_fs_',
    fields: [
      { field: 'nr_opens', name: 'open_files', help: 'Files open now.', type: 'gauge' },
      { field: 'data_read', name: 'read_bytes_total', help: 'Bytes read through the filesystem.', type: 'counter' },
      { field: 'block_count_read', name: 'reads_by_size_total', help: 'Reads by request size.', type: 'counter', dims: [{ label: 'size', values: BLOCK_SIZES }] },
      { field: 'fop_hits', name: 'fop_total', help: 'Filesystem operations served.', type: 'counter', dims: [{ label: 'op', values: FOPS }] },
      { field: 'fop_errors', name: 'fop_errors_total', help: 'Filesystem operations that failed.', type: 'counter', dims: [{ label: 'op', values: FOPS }] },
      {
        field: 'fop_cumulative_latency_total',
        name: 'fop_latency_microseconds_total',
        help: 'Time spent in filesystem operations, microseconds.',
        type: 'counter',
        dims: [{ label: 'op', values: FOPS }],
      },
      { field: 'read_latency_dist', name: 'reads_by_latency_total', help: 'Reads by latency bucket.', type: 'counter', dims: [{ label: 'latency', values: FS_LATENCY }] },
    ],
  },
  backend: {
    prefix: 'nydusd_backend_',
    labels: (o): Labels => (typeof o.backend_type === 'string' ? { backend_type: o.backend_type } : {}),
    fields: [
      { field: 'read_count', name: 'reads_total', help: 'Backend reads.', type: 'counter' },
      { field: 'read_errors', name: 'read_errors_total', help: 'Backend reads that failed.', type: 'counter' },
      { field: 'read_amount_total', name: 'read_bytes_total', help: 'Bytes read from the backend.', type: 'counter' },
      { field: 'read_cumulative_latency_millis_total', name: 'read_latency_milliseconds_total', help: 'Time spent in backend reads, milliseconds.', type: 'counter' },
      {
        field: 'read_cumulative_latency_millis_dist',
        name: 'read_latency_by_size_milliseconds_total',
        help: 'Backend read time by request size, milliseconds.',
        type: 'counter',
        dims: [{ label: 'size', values: BLOCK_SIZES }],
      },
      { field: 'read_count_block_size_dist', name: 'reads_by_size_total', help: 'Backend reads by request size.', type: 'counter', dims: [{ label: 'size', values: BLOCK_SIZES }] },
      {
        field: 'read_latency_sizes_dist',
        name: 'reads_by_size_latency_total',
        help: 'Backend reads by request size and latency bucket.',
        type: 'counter',
        dims: [
          { label: 'size', values: BLOCK_SIZES },
          { label: 'latency', values: BACKEND_LATENCY },
        ],
      },
    ],
  },
  blobcache: {
    prefix: 'nydusd_blobcache_',
    fields: [
      { field: 'partial_hits', name: 'partial_hits_total', help: 'Reads partly served from the cache.', type: 'counter' },
      { field: 'whole_hits', name: 'whole_hits_total', help: 'Reads wholly served from the cache.', type: 'counter' },
      { field: 'total', name: 'reads_total', help: 'Reads through the cache.', type: 'counter' },
      { field: 'entries_count', name: 'entries', help: 'Blobs in the cache.', type: 'gauge' },
      { field: 'prefetch_data_amount', name: 'prefetch_bytes_total', help: 'Bytes prefetched.', type: 'counter' },
      { field: 'prefetch_requests_count', name: 'prefetch_requests_total', help: 'Prefetch requests.', type: 'counter' },
      { field: 'prefetch_workers', name: 'prefetch_workers', help: 'Prefetch workers.', type: 'gauge' },
      { field: 'prefetch_unmerged_chunks', name: 'prefetch_unmerged_chunks_total', help: 'Prefetched chunks not merged with neighbours.', type: 'counter' },
      { field: 'prefetch_cumulative_time_millis', name: 'prefetch_milliseconds_total', help: 'Time spent prefetching, milliseconds.', type: 'counter' },
      { field: 'buffered_backend_size', name: 'buffered_backend_bytes', help: 'Bytes buffered from the backend.', type: 'gauge' },
      { field: 'data_all_ready', name: 'data_all_ready', help: '1 when every chunk of the blobs is cached.', type: 'gauge' },
      { field: 'write_errors', name: 'write_errors_total', help: 'Cache writes that failed (reads were served from the backend).', type: 'counter' },
      { field: 'caching_degraded', name: 'caching_degraded', help: '1 while the last cache write of some blob failed.', type: 'gauge' },
    ],
  },
};

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function sampleValue(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}

/** Families in first-seen order, each with its samples, so HELP/TYPE print once. */
class Exposition {
  readonly #families = new Map<string, { help: string; type: string; lines: string[] }>();
  add(name: string, help: string, type: string, labels: Labels, value: number): void {
    let f = this.#families.get(name);
    if (f === undefined) {
      f = { help, type, lines: [] };
      this.#families.set(name, f);
    }
    f.lines.push(`${name}${labelText(labels)} ${value}`);
  }
  text(): string {
    const out: string[] = [];
    for (const [name, f] of this.#families) out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`, ...f.lines);
    return out.length === 0 ? '' : out.join('\n') + '\n';
  }
}

function addField(exp: Exposition, name: string, spec: FieldSpec, labels: Labels, value: unknown, depth: number): void {
  const dim = spec.dims?.[depth];
  if (dim === undefined) {
    const n = sampleValue(value);
    if (n !== undefined) exp.add(name, spec.help, spec.type, labels, n);
    return;
  }
  if (!Array.isArray(value)) return;
  value.forEach((v, i) => addField(exp, name, spec, { ...labels, [dim.label]: dim.values[i] ?? String(i) }, v, depth + 1));
}

/** Renders every instance of every kind `control` lists, plus the daemon's state. */
export function renderPrometheus(control: DaemonControl): string {
  const exp = new Exposition();
  const info = control.info();
  exp.add('nydusd_info', 'The daemon build and reported state.', 'gauge', {
    id: info.id ?? '',
    state: info.state,
    version: info.version.package_ver,
    git_commit: info.version.git_commit,
  }, 1);
  const ids = control.metricIds();
  for (const kind of ['fs', 'backend', 'blobcache'] as const) {
    const spec = SPECS[kind]!;
    for (const id of ids[kind] ?? []) {
      let obj: unknown;
      try {
        obj = control.metrics(kind, { id });
      } catch (err) {
        // Unmounted between metricIds() and now: nothing to report for it.
        if (err instanceof NydusError && err.code === 'ERR_API_NO_COUNTER') continue;
        throw err;
      }
      if (typeof obj !== 'object' || obj === null) continue;
      const o = obj as Record<string, unknown>;
      const labels = { id, ...spec.labels?.(o) };
      for (const f of spec.fields) addField(exp, spec.prefix + f.name, f, labels, o[f.field], 0);
    }
  }
  return exp.text();
}
