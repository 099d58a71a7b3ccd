// Plain-text rendering for nydusctl: aligned tables and key/value lists, nothing else.
// Output goes to stdout through the caller; no colours, so it pipes cleanly.

/** Renders rows under a header, columns padded to their widest cell. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n') + '\n';
}

/** Renders `key: value` lines with the values aligned. */
export function keyValues(pairs: ReadonlyArray<readonly [string, string | number | boolean | null | undefined]>): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length + 1));
  return pairs.map(([k, v]) => `${(k + ':').padEnd(width)}  ${v === null || v === undefined ? '-' : String(v)}`).join('\n') + '\n';
}

/** A byte count in binary units (`1.5 MiB`). */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** JSON for scripts: pretty, newline-terminated. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
