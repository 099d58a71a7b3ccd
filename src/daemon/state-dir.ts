// Where a daemon keeps its journal when --state-dir is not given: /run/nydusd/<id>, or
// /run/nydusd/<escaped mountpoint> without an --id.

/** `/var/lib/x/mnt` → `var-lib-x-mnt` (systemd-escape style: `-` and unsafe bytes become \xNN). */
export function escapeStatePath(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '-';
  let out = '';
  for (const b of Buffer.from(trimmed)) {
    const c = String.fromCharCode(b);
    if (c === '/') out += '-';
    else if (/[A-Za-z0-9_.:]/.test(c) && !(out === '' && c === '.')) out += c;
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The default state directory of a daemon with `id` (or none) on `mountpoint`. */
export function defaultStateDir(id: string | undefined, mountpoint: string): string {
  return `/run/nydusd/${id ?? escapeStatePath(mountpoint)}`;
}
