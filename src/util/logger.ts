// The daemon's logger: winston with upstream nydusd's level names (trace, debug, info,
// warn, error, off), one line per message, to stderr or to a file (`--log-file`, `.log`
// appended when the name has no extension, rotated by size with `--log-rotation-size`).
// Callers never pass secrets: configs are logged through config/derive.ts `redact()`.
import { extname } from 'node:path';
import winston from 'winston';

/** Upstream's level names, most severe first; `off` silences everything. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What the daemon's modules log through (a subset winston satisfies). */
export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  trace(msg: string): void;
  /** The current level, `off` when silenced. */
  readonly level: LogLevel | 'off';
  /** Changes the level at runtime (PUT /api/v1/daemon). */
  setLevel(level: LogLevel | 'off'): void;
  /** Reopens the log file by its name (after log rotation moved it); false when logging to stderr. */
  reopen(): boolean;
  /** Flushes and closes the transports. */
  close(): Promise<void>;
}

/** Options of createLogger. */
export interface LoggerOptions {
  level?: LogLevel | 'off';
  /** Log file; without one, logs go to stderr. */
  file?: string;
  /** Rotate the file once it reaches this many MiB (0: never), keeping 10 old files. */
  rotationSizeMiB?: number;
}

/** Parses a level as upstream does (case-insensitive, `warning` accepted); undefined when unknown. */
export function parseLogLevel(text: string): LogLevel | 'off' | undefined {
  const l = text.trim().toLowerCase();
  if (l === 'off') return 'off';
  if (l === 'warning') return 'warn';
  return (LOG_LEVELS as readonly string[]).includes(l) ? (l as LogLevel) : undefined;
}

/** Upstream's log file rule (flexi_logger): a name without an extension gets `.log`. */
export function logFilePath(path: string): string {
  return extname(path) === '' ? `${path}.log` : path;
}

const LEVEL_NUMBERS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

const lineFormat = winston.format.printf((info) => {
  const time = new Date().toISOString();
  return `[${time} ${String(info.level).toUpperCase()}] ${String(info.message)}`;
});

/** The log file's transport. Logs may quote paths and image names: new files are owner-only (an existing file keeps the mode its creator chose, as logrotate's `create` sets it). */
function fileTransport(opts: LoggerOptions & { file: string }): winston.transport {
  return new winston.transports.File({
    filename: logFilePath(opts.file),
    maxsize: opts.rotationSizeMiB ? opts.rotationSizeMiB * 1024 * 1024 : undefined,
    maxFiles: opts.rotationSizeMiB ? 10 : undefined,
    zippedArchive: Boolean(opts.rotationSizeMiB),
    options: { flags: 'a', mode: 0o600 },
  });
}

/** A logger writing to stderr or `opts.file`. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const file = opts.file;
  let transport = file !== undefined ? fileTransport({ ...opts, file }) : new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] });
  const w = winston.createLogger({ levels: LEVEL_NUMBERS, format: lineFormat, transports: [transport] });
  let level: LogLevel | 'off' = 'info';
  const apply = (l: LogLevel | 'off'): void => {
    level = l;
    w.silent = l === 'off';
    if (l !== 'off') w.level = l;
  };
  apply(opts.level ?? 'info');
  const log = (l: LogLevel) => (msg: string) => {
    if (level !== 'off' && LEVEL_NUMBERS[l] <= LEVEL_NUMBERS[level]) w.log(l, msg);
  };
  return {
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
    trace: log('trace'),
    get level() {
      return level;
    },
    setLevel: apply,
    reopen() {
      if (file === undefined) return false;
      // The old transport finishes what it holds into the moved file, then closes it.
      const old = transport;
      transport = fileTransport({ ...opts, file });
      w.add(transport);
      w.remove(old);
      old.end();
      return true;
    },
    close() {
      return new Promise<void>((resolve) => {
        w.on('finish', () => resolve());
        w.end();
        // A logger that never wrote may not emit finish on some transports.
        setTimeout(resolve, 500).unref();
      });
    },
  };
}

/** A logger that drops everything (library use, tests). */
export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  trace() {},
  level: 'off',
  setLevel() {},
  reopen: () => false,
  async close() {},
};
