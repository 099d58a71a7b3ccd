// Text formats upstream nydusd puts in its API answers: the `mounted_time` of
// DaemonInfo (the time crate's human-readable form, UTC) and the HTTP-date that
// prefixes each entry of the backend error ring.

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `YYYY-MM-DD HH:MM:SS.fffffffff +00:00:00` for a time in ms since the epoch (sub-ms part in `extraNanos`). */
export function mountedTimeText(ms: number, extraNanos = 0): string {
  const d = new Date(ms);
  const nanos = (((ms % 1000) + 1000) % 1000) * 1e6 + Math.max(0, Math.min(999_999, Math.floor(extraNanos)));
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(nanos, 9)} +00:00:00`
  );
}

/** The current time as mountedTimeText, with sub-millisecond digits from the monotonic clock. */
export function nowMountedTime(): string {
  const t = performance.timeOrigin + performance.now();
  return mountedTimeText(Math.floor(t), (t % 1) * 1e6);
}

/** RFC 7231 HTTP-date, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`. */
export function httpDate(ms = Date.now()): string {
  return new Date(ms).toUTCString();
}
