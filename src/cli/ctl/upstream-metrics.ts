// `nydusctl metrics backend|cache|fsstats` rendered as upstream's nydusctl renders them:
// the same labels, the same fixed-width columns, JSON values shown as JSON (strings keep
// their quotes), so that scripts written against upstream's output keep working.
type Obj = Record<string, unknown>;

const SIZES = ['<1K', '1K~', '4K~', '16K~', '64K~', '128K~', '512K~', '1M~'];
const PERIODS = ['<1ms', '~20ms', '~50ms', '~100ms', '~500ms', '~1s', '~2s', '2s~'];
const FOP_NAMES = ['Getattr', 'Readlink', 'Open', 'Release', 'Read', 'Statfs', 'Getxattr', 'Listxattr', 'Opendir', 'Lookup', 'Readdir', 'Readdirplus', 'Access', 'Forget', 'BatchForget'];

const shown = (v: unknown): string => JSON.stringify(v ?? null);
const int = (v: unknown): number => (typeof v === 'number' ? v : 0);
const ints = (v: unknown): number[] => (Array.isArray(v) ? v.map(int) : []);
/** Rust's integer `checked_div(..).unwrap_or_default()`. */
const div = (a: number, b: number): number => (b === 0 ? 0 : Math.floor(a / b));
const row = (label: string, width: number, cells: ReadonlyArray<string | number>): string => label.padEnd(width) + cells.map((c) => String(c).padEnd(8)).join('');

export function renderUpstreamBackend(m: Obj): string {
  const dist = ints(m.read_cumulative_latency_millis_dist);
  const hits = ints(m.read_count_block_size_dist);
  return (
    `\nBackend Type:       ${shown(m.backend_type)}\n` +
    `Read Amount:        ${shown(m.read_amount_total)} Bytes (${int(m.read_amount_total) / 1024 / 1024} MB)\n` +
    `Read Count:         ${shown(m.read_count)}\n` +
    `Read Errors:        ${shown(m.read_errors)}\n` +
    `\n${row('Block Sizes:', 25, SIZES)}\n` +
    `${row('Average Latency(millis):', 25, SIZES.map((_, i) => div(dist[i] ?? 0, hits[i] ?? 0)))}\n` +
    `\n${row('Block Sizes:', 25, SIZES)}\n` +
    `${row('Request Count:', 25, SIZES.map((_, i) => hits[i] ?? 0))}\n`
  );
}

/** Upstream's `-I SECS` report: what changed between two backend samples `secs` apart. */
export function renderUpstreamBackendDelta(last: Obj, cur: Obj, secs: number): string {
  const d = (k: string): number => int(cur[k]) - int(last[k]);
  const dv = (k: string): number[] => ints(cur[k]).map((v, i) => v - (ints(last[k])[i] ?? 0));
  const data = d('read_amount_total');
  const requests = d('read_count');
  const dist = dv('read_cumulative_latency_millis_dist');
  const hits = dv('read_count_block_size_dist');
  return (
    `\n>>> >>> >>> >>> >>>\n` +
    `Backend Read Bandwidth:     ${div(data, secs * 1024)} KB/S\n` +
    `Backend Average IO Size:    ${div(data, requests)} Bytes\n` +
    `Backend Average Latency:    ${div(d('read_cumulative_latency_millis_total'), requests)} millis\n` +
    `\nBlock Sizes/millis:\n${row('', 0, SIZES)}\n` +
    `${row('', 0, SIZES.map((_, i) => div(dist[i] ?? 0, hits[i] ?? 0)))}\n<<< <<< <<< <<< <<<\n`
  );
}

export function renderUpstreamCache(m: Obj): string {
  const amount = int(m.prefetch_data_amount);
  return (
    `\nPartial Hits:           ${shown(m.partial_hits)}\n` +
    `Whole Hits:             ${shown(m.whole_hits)}\n` +
    `Total Read:             ${shown(m.total)}\n` +
    `Directory:              ${shown(m.store_path)}\n` +
    `Files:                  ${shown(m.underlying_files)}\n` +
    `Prefetch Workers:       ${shown(m.prefetch_workers)}\n` +
    `Prefetch Amount:        ${shown(m.prefetch_data_amount)} = ${div(amount, 1024)} KB\n` +
    `Prefetch Requests:      ${shown(m.prefetch_requests_count)}\n` +
    `Prefetch Average Size:  ${div(amount, int(m.prefetch_requests_count))} Bytes\n` +
    `Prefetch Unmerged:      ${shown(m.prefetch_unmerged_chunks)}\n` +
    `Persister Buffer:       ${shown(m.buffered_backend_size)}\n`
  );
}

export function renderUpstreamFsStats(m: Obj): string {
  const fops = ints(m.fop_hits);
  const fop = (from: number, to: number): string => FOP_NAMES.slice(from, to).map((n, i) => `${n}(${fops[from + i] ?? 0})`).join(' ');
  return (
    `\n${row('Read Latency:', 16, PERIODS)}\n` +
    `${row('Reads Count:', 16, ints(m.read_latency_dist))}\n` +
    `\nFOP Counters:\n${fop(0, 8)}\n${fop(8, 15)}\n`
  );
}
