// The project's one error catalogue. Every error that crosses a module edge is a
// NydusError with a stable `code`; the table below decides, once, which errno the
// FUSE layer answers and which HTTP status the admin API answers for that code.
// Callers match on `code`, never on message text or class.
import { constants } from 'node:os';

const E = constants.errno;

/** How a code is answered at each edge: errno for FUSE, status for HTTP, exit code for the CLI. */
interface CodeInfo {
  errno: number;
  http: number;
}

const codes = {
  // rafs: the on-disk format (bootstraps)
  ERR_RAFS_BAD_MAGIC: { errno: E.EINVAL, http: 400 },
  ERR_RAFS_BAD_SUPERBLOCK: { errno: E.EINVAL, http: 400 },
  ERR_RAFS_TRUNCATED: { errno: E.EIO, http: 400 },
  ERR_RAFS_CORRUPT: { errno: E.EIO, http: 400 },
  ERR_RAFS_UNSUPPORTED: { errno: E.ENOTSUP, http: 400 },
  ERR_RAFS_NO_ENTRY: { errno: E.ENOENT, http: 404 },
  ERR_RAFS_NOT_DIR: { errno: E.ENOTDIR, http: 400 },
  ERR_RAFS_NOT_SYMLINK: { errno: E.EINVAL, http: 400 },
  ERR_RAFS_NOT_FILE: { errno: E.EINVAL, http: 400 },
  ERR_RAFS_NO_XATTR: { errno: E.ENODATA, http: 404 },
  // storage: backends, cache, codecs, digests
  ERR_STORAGE_BLOB_NOT_FOUND: { errno: E.EIO, http: 500 },
  ERR_STORAGE_SHORT_READ: { errno: E.EIO, http: 500 },
  ERR_STORAGE_DECOMPRESS: { errno: E.EIO, http: 500 },
  ERR_STORAGE_DIGEST_MISMATCH: { errno: E.EIO, http: 500 },
  ERR_STORAGE_BAD_CHUNK: { errno: E.EIO, http: 500 },
  ERR_STORAGE_BACKEND: { errno: E.EIO, http: 500 },
  ERR_STORAGE_CACHE: { errno: E.EIO, http: 500 },
  ERR_STORAGE_UNSUPPORTED: { errno: E.ENOTSUP, http: 501 },
  ERR_STORAGE_AUTH: { errno: E.EIO, http: 500 },
  ERR_STORAGE_MANIFEST: { errno: E.EIO, http: 500 },
  // config: nydusd JSON config and command lines
  ERR_CONFIG_INVALID: { errno: E.EINVAL, http: 400 },
  ERR_CLI_USAGE: { errno: E.EINVAL, http: 400 },
  // fuse: the kernel session and transports
  ERR_FUSE_MOUNT: { errno: E.EIO, http: 500 },
  ERR_FUSE_PROTOCOL: { errno: E.EIO, http: 500 },
  ERR_FUSE_SESSION: { errno: E.EIO, http: 500 },
  ERR_FUSE_READ_ONLY: { errno: E.EROFS, http: 400 },
  ERR_FUSE_NOT_IMPLEMENTED: { errno: E.ENOSYS, http: 501 },
  ERR_FUSE_INTERRUPTED: { errno: E.EINTR, http: 500 },
  ERR_FUSE_BAD_HANDLE: { errno: E.EBADF, http: 400 },
  ERR_FUSE_RANGE: { errno: E.ERANGE, http: 400 },
  // daemon: lifecycle, journal, upgrade
  ERR_DAEMON_UNEXPECTED_EVENT: { errno: E.EINVAL, http: 400 },
  ERR_DAEMON_NOT_READY: { errno: E.EAGAIN, http: 503 },
  ERR_DAEMON_UNSUPPORTED: { errno: E.ENOTSUP, http: 501 },
  ERR_DAEMON_MOUNT_EXISTS: { errno: E.EEXIST, http: 500 },
  ERR_DAEMON_MOUNT_NOT_FOUND: { errno: E.ENOENT, http: 500 },
  ERR_DAEMON_JOURNAL: { errno: E.EIO, http: 500 },
  ERR_DAEMON_UPGRADE: { errno: E.EIO, http: 500 },
  ERR_DAEMON_STATE_VERSION: { errno: E.EINVAL, http: 500 },
  ERR_DAEMON_BOOTSTRAP: { errno: E.ENOENT, http: 500 },
  ERR_DAEMON_EROFS: { errno: E.EIO, http: 500 },
  // fs: answers of the inode-level filesystem (src/fs) the catalogue has no other code for
  ERR_FS_STALE: { errno: E.ESTALE, http: 404 },
  ERR_FS_IS_DIR: { errno: E.EISDIR, http: 400 },
  ERR_FS_XATTR_UNSUPPORTED: { errno: E.EOPNOTSUPP, http: 501 },
  ERR_FS_NO_DATA: { errno: E.ENXIO, http: 400 },
  // api: the admin HTTP API
  ERR_API_NO_ROUTE: { errno: E.ENOENT, http: 404 },
  ERR_API_BAD_REQUEST: { errno: E.EINVAL, http: 400 },
  ERR_API_BODY_TOO_LARGE: { errno: E.E2BIG, http: 413 },
  ERR_API_NO_COUNTER: { errno: E.ENOENT, http: 404 },
  ERR_API_UNAVAILABLE: { errno: E.ECONNREFUSED, http: 503 },
  ERR_API_LENGTH_REQUIRED: { errno: E.EINVAL, http: 411 },
  ERR_API_SOCKET_IN_USE: { errno: E.EADDRINUSE, http: 500 },
  ERR_API_LISTEN: { errno: E.EIO, http: 500 },
  ERR_API_RESPONSE: { errno: E.EPROTO, http: 502 },
  ERR_API_INTERNAL: { errno: E.EIO, http: 500 },
  // builder: nydus-image create / merge
  ERR_BUILD_SOURCE: { errno: E.EINVAL, http: 400 },
  ERR_BUILD_UNSAFE_PATH: { errno: E.EINVAL, http: 400 },
  ERR_BUILD_LIMIT: { errno: E.EFBIG, http: 400 },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof codes;

/** Every code the project can raise, with its errno and HTTP status. */
export const ERROR_CODES: Readonly<Record<ErrorCode, CodeInfo>> = codes;

/** Base of every error the project raises on purpose. */
export class NydusError extends Error {
  readonly code: ErrorCode;
  /** Structured facts for the edges (e.g. the refused event's name for the API's message). */
  readonly detail: Readonly<Record<string, unknown>> | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super(message, options);
    this.code = code;
    this.detail = options?.detail;
    this.name = new.target.name;
  }
  get errno(): number {
    return codes[this.code].errno;
  }
  get httpStatus(): number {
    return codes[this.code].http;
  }
}

/** A bootstrap that is malformed, truncated or of an unsupported kind. */
export class RafsFormatError extends NydusError {}
/** A chunk that cannot be fetched, decompressed or verified; a cache or backend failure. */
export class StorageError extends NydusError {}
/** A bad nydusd config or command line. */
export class ConfigError extends NydusError {}
/** A FUSE session, mount or protocol failure, or an errno to answer. */
export class FuseError extends NydusError {}
/** A lifecycle, journal or upgrade failure. */
export class DaemonError extends NydusError {}
/** An admin API request that cannot be served. */
export class ApiError extends NydusError {}
/** A build input that cannot be turned into an image. */
export class BuildError extends NydusError {}

/** The errno a FUSE reply carries for any thrown value: table errno for ours, else EIO. */
export function toErrno(err: unknown): number {
  if (err instanceof NydusError) return err.errno;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code in E) return E[code as keyof typeof E];
  return E.EIO;
}

/** One line for a CLI user: `code: message`, the cause appended when it says more. */
export function describeError(err: unknown): string {
  if (err instanceof NydusError) return `${err.code}: ${oneLine(err.message)}`;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = oneLine(err.message);
    return code && !msg.startsWith(code) ? `${code}: ${msg}` : msg;
  }
  return oneLine(String(err));
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
