// nydusd's process around the daemon (daemon/run.ts): libuv's threadpool size, the
// logger and the event log, the answers to SIGUSR1/SIGUSR2/SIGHUP, SIGTERM/SIGINT as the
// daemon's stop, the admin API on --apisock, and NYDUSD_EROFS_BACKING from the
// environment. What the daemon does is the library's.
import type { DaemonControl } from '../../daemon/control.js';
import { runDaemon as run } from '../../daemon/run.js';
import { logBackendEvents } from '../../storage/backend/log-events.js';
import { createLogger, type Logger } from '../../util/logger.js';
import type { DaemonArgs } from './options.js';
import { answerSignals } from './signals.js';

/** Runs nydusd as `args` say until it stops; resolves with the process exit code. */
export async function runDaemon(args: DaemonArgs): Promise<number> {
  // Blob and cache I/O runs on libuv's threadpool: --fuse-threads sizes it (read at first use).
  process.env.UV_THREADPOOL_SIZE = String(args.threads);
  const logger = createLogger({ level: args.logLevel, file: args.logFile, rotationSizeMiB: args.logRotationSizeMiB });
  const stopEventLog = logBackendEvents(logger);
  const stopSignalAnswers = answerSignals(logger);
  const stop = new AbortController();
  let signalled = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled++ > 0) return logger.warn(`daemon: ${sig} received again; already stopping`);
    logger.info(`daemon: ${sig} received, stopping`);
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await run({
      ...args,
      erofsBacking: process.env.NYDUSD_EROFS_BACKING === 'loop' ? 'loop' : 'file',
      logger,
      stop: stop.signal,
      serveApi: apiServer(args.apisock, logger),
    });
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    stopSignalAnswers();
    stopEventLog();
    await logger.close();
  }
}

/**
 * The admin API on `apisock`, if given. Its module (Koa) starts loading now, while the
 * daemon's crash check and controller wait on I/O: after a failover, the supervisor can
 * do nothing until the socket answers.
 */
function apiServer(apisock: string | undefined, logger: Logger): ((control: DaemonControl) => Promise<{ close(): Promise<void> }>) | undefined {
  if (apisock === undefined) return undefined;
  const api = import('../../api/server.js');
  api.catch(() => undefined);
  return async (control) => (await api).startApiServer(control, apisock, logger);
}
