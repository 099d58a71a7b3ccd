// Upstream nydusd's error answers, rebuilt from the project's errors: the Rust Debug
// string of `HttpError(ApiError(kind))` that clients match on, and the status upstream's
// `translate_status_code` gives it (docs/contract.md §2.2). Pure functions; the error
// middleware decides what to send.
import { NydusError } from '../errors.js';
import type { ErrorCode } from '../errors.js';

/**
 * Upstream's `HttpError` variant an endpoint wraps its failures in (api/src/http.rs).
 * Each route names its own, e.g. `Mount` for /api/v1/mount, `Configure` for start/exit.
 */
export type HttpErrorWrapper =
  | 'DaemonInfo'
  | 'Configure'
  | 'Events'
  | 'FsBackendInfo'
  | 'Mount'
  | 'Upgrade'
  | 'GlobalMetrics'
  | 'FsFilesMetrics'
  | 'Pattern'
  | 'BackendMetrics'
  | 'BlobcacheMetrics'
  | 'InflightMetrics'
  | 'CreateBlobObject'
  | 'DeleteBlobObject'
  | 'DeleteBlobFile'
  | 'GetBlobObjects';

/** What an error becomes on the wire. */
export interface UpstreamFailure {
  status: number;
  /** Upstream's Debug string (the body's `message`). */
  message: string;
}

/** Rust's `{:?}` of a `&str`: quoted, with `\\`, `"` and control characters escaped. */
export function rustDebugString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c === 0) out += '\\0';
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}

/** Upstream's event names (`DaemonStateMachineInput`): `START` and `start` become `Start`. */
export function upstreamEventName(event: string): string {
  const lower = event.toLowerCase();
  return lower.charAt(0).toUpperCase() + lower.slice(1);
}

const METRICS_WRAPPERS: ReadonlySet<HttpErrorWrapper> = new Set([
  'GlobalMetrics',
  'FsFilesMetrics',
  'Pattern',
  'BackendMetrics',
  'BlobcacheMetrics',
  'FsBackendInfo',
]);

/** Fixed texts upstream sends for these codes inside `Other("...")` (std::io::ErrorKind Display). */
const OTHER_TEXT: Partial<Record<ErrorCode, string>> = {
  ERR_DAEMON_MOUNT_EXISTS: 'object or filesystem already exists',
  ERR_DAEMON_MOUNT_NOT_FOUND: "object or filesystem doesn't exist",
};

/** Upstream's `DaemonErrorKind` for an error, and the status translate_status_code gives it. */
function daemonErrorKind(err: NydusError, defaultEvent: string | undefined): { kind: string; status: number } {
  const upstreamText = typeof err.detail?.upstream === 'string' ? err.detail.upstream : undefined;
  const status = err.httpStatus;
  if (err.code === 'ERR_DAEMON_UNEXPECTED_EVENT') {
    const event = typeof err.detail?.event === 'string' ? err.detail.event : (defaultEvent ?? 'Unknown');
    return { kind: `UnexpectedEvent(${rustDebugString(upstreamEventName(event))})`, status: 400 };
  }
  if (status === 503) return { kind: 'NotReady', status: 503 };
  if (status === 501) return { kind: 'Unsupported', status: 501 };
  if (err.code === 'ERR_DAEMON_UPGRADE' || err.code === 'ERR_DAEMON_STATE_VERSION') return { kind: `UpgradeManager(${rustDebugString(upstreamText ?? err.message)})`, status: 500 };
  const text = upstreamText ?? OTHER_TEXT[err.code] ?? err.message;
  return { kind: `Other(${rustDebugString(text)})`, status: 500 };
}

/**
 * Upstream's answer for an error a DaemonControl call threw inside an endpoint whose
 * failures upstream wraps in `wrapper`. `defaultEvent` names the lifecycle event the
 * endpoint sends, for a refusal that does not say which event it refused.
 */
export function upstreamFailure(err: NydusError, wrapper: HttpErrorWrapper | undefined, defaultEvent?: string): UpstreamFailure {
  const wrap = (inner: string) => (wrapper === undefined ? inner : `${wrapper}(${inner})`);
  if (err.code === 'ERR_API_NO_COUNTER') return { status: 404, message: wrap('Metrics(Stats(NoCounter))') };
  // An invalid blob cache entry config is refused by upstream's handler, not the daemon.
  const refusedEntry = wrapper === 'CreateBlobObject' && err.code === 'ERR_CONFIG_INVALID';
  if (err.code === 'ERR_API_BAD_REQUEST' || refusedEntry) {
    // Upstream rejects such requests before they reach the daemon: a bare `BadRequest`.
    return { status: 400, message: typeof err.detail?.upstream === 'string' ? err.detail.upstream : 'BadRequest' };
  }
  const { kind, status } = daemonErrorKind(err, defaultEvent);
  if (wrapper !== undefined && METRICS_WRAPPERS.has(wrapper)) return { status: 500, message: wrap(`Metrics(Daemon(${kind}))`) };
  const outer = wrapper === 'Mount' ? 'MountFilesystem' : 'DaemonAbnormal';
  return { status, message: wrap(`${outer}(${kind})`) };
}

/** The answer for a thrown value that is not a NydusError (a bug): 500, details withheld. */
export function unexpectedFailure(wrapper: HttpErrorWrapper | undefined): UpstreamFailure {
  const inner = `DaemonAbnormal(Other(${rustDebugString('internal error')}))`;
  return { status: 500, message: wrapper === undefined ? inner : `${wrapper}(${inner})` };
}
