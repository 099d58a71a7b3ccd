// nydusd's answers to the signals other than SIGTERM/SIGINT (those stop the daemon, see
// run-daemon.ts). This module is the first one nydusd evaluates: until a SIGUSR1 listener
// exists, Node's own SIGUSR1 handler opens the inspector on 127.0.0.1:9229 without
// authentication, and anyone on the machine could then run code as the daemon's user.
// A listener replaces that handler (libuv installs its own sigaction). Node 22.14+/23.7+
// can close the remaining startup window with --disable-sigusr1 (docs/operations.md); an
// inspector a SIGUSR1 opened within it is closed here at once.
// SIGUSR1 reopens the log file (log rotation); SIGHUP and SIGUSR2 are logged and ignored,
// so a closed terminal or a stray signal does not leave a dead mount behind. SIGPIPE stays
// ignored, as Node sets it.
import inspector from 'node:inspector';
import type { Logger } from '../../util/logger.js';

const ANSWERED = ['SIGUSR1', 'SIGUSR2', 'SIGHUP'] as const;
type AnsweredSignal = (typeof ANSWERED)[number];

/** What happened before the daemon's logger existed, told once it does. */
const early = { signals: new Set<AnsweredSignal>(), inspectorClosed: false };
let logger: Logger | null = null;
const INSPECTOR_CLOSED = "daemon: a SIGUSR1 before nydusd's own handler opened Node's inspector; closed it";

/** Closes an inspector Node opened before the listener existed (its start may still be queued, hence the second look). */
function closeInspector(): void {
  if (inspector.url() === undefined) return;
  inspector.close();
  if (logger === null) early.inspectorClosed = true;
  else logger.warn(INSPECTOR_CLOSED);
}

function answer(sig: AnsweredSignal, log: Logger): void {
  if (sig !== 'SIGUSR1') return log.warn(`daemon: ${sig} received; ignored (SIGTERM or SIGINT stops the daemon)`);
  if (log.reopen()) log.info('daemon: SIGUSR1 received; log file reopened');
  else log.info('daemon: SIGUSR1 received; logging to stderr, no log file to reopen');
}

for (const sig of ANSWERED) {
  process.on(sig, () => {
    setImmediate(closeInspector);
    if (logger === null) early.signals.add(sig);
    else answer(sig, logger);
  });
}
closeInspector();
setImmediate(closeInspector);

// After a hangup the terminal is gone and writing a log line to it fails (EIO); unhandled,
// that stream error would end the daemon, the outage SIGHUP must not cause. Lines for a
// dead terminal are lost: there is nowhere left to report them.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

/**
 * Routes the answered signals to `log` from now on, first telling what arrived before it
 * existed. Returns the detach function (signals then wait again for the next logger).
 */
export function answerSignals(log: Logger): () => void {
  logger = log;
  if (early.inspectorClosed) log.warn(INSPECTOR_CLOSED);
  for (const sig of early.signals) answer(sig, log);
  early.signals.clear();
  early.inspectorClosed = false;
  return () => {
    if (logger === log) logger = null;
  };
}
