// A FUSE server in its own process, for the handover, failover and crash
// tests: it serves the MemoryFs tree (mounting it, or taking a live
// connection over from a supervisor socket) and obeys one-word commands on
// stdin, reporting each step as a JSON line on stdout. Not a test itself.
//   serve-child.ts mount <mountpoint> [slowReadMs]
//   serve-child.ts takeover <supervisor.sock> [slowReadMs] [resend]
// Commands: sendfd <sock> | stop | resume | resend | inflight | close | unmount
import { createInterface } from 'node:readline';
import { FuseSession, type SessionState } from '../../src/fuse/session.js';
import { closeFd, receiveStateWithFd, sendStateWithFd } from '../../src/native/index.js';
import { describeError } from '../../src/errors.js';
import { MemoryFs } from '../helpers/memory-fs.js';

function say(event: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ event, ...extra }) + '\n');
}

async function main(): Promise<void> {
  const [mode, target, slow, resend] = process.argv.slice(2);
  const fs = new MemoryFs({ slowReadMs: Number(slow ?? 0) });
  let requests = 0;
  const byOpcode: Record<number, number> = {};
  const opts = {
    timeouts: { entry: 0, attr: 0 },
    onComplete: (opcode: number) => {
      requests++;
      byOpcode[opcode] = (byOpcode[opcode] ?? 0) + 1;
    },
    onError: (e: unknown) => say('error', { message: describeError(e) }),
  };
  let session: FuseSession;
  if (mode === 'mount') {
    session = await FuseSession.mount(fs, target, opts);
  } else if (mode === 'takeover') {
    const got = await receiveStateWithFd(target, { timeoutMs: 10_000 });
    for (const extra of got.fds.slice(1)) closeFd(extra);
    const state = JSON.parse(got.data.toString()) as SessionState;
    session = await FuseSession.fromFd(got.fds[0], state, fs, { ...opts, start: false });
    if (resend === 'resend') await session.notifyResend();
    await session.resumeReading();
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  say('ready', { connId: session.connId, init: session.initParams, pid: process.pid });
  let leaving = false; // close/unmount commands end the session themselves
  void session.ended.then((end) => {
    if (leaving) return;
    say('ended', { reason: end.reason });
    process.exit(0);
  });

  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, arg] = line.trim().split(/\s+/);
    try {
      switch (cmd) {
        case 'sendfd': {
          const fd = session.dupFd();
          await sendStateWithFd(arg, Buffer.from(JSON.stringify(session.exportState())), fd, { timeoutMs: 10_000 });
          closeFd(fd);
          say('sent');
          break;
        }
        case 'stop':
          await session.stopReading();
          say('stopped', { inflight: session.inflight().length });
          break;
        case 'resume':
          await session.resumeReading();
          say('resumed');
          break;
        case 'resend':
          await session.notifyResend();
          say('resent');
          break;
        case 'inflight':
          say('inflight', { inflight: session.inflight(), requests, byOpcode });
          break;
        case 'close':
          leaving = true;
          await session.close();
          say('closed', { requests });
          process.exit(0);
          break;
        case 'unmount':
          leaving = true;
          await session.unmount();
          say('unmounted', { requests });
          process.exit(0);
          break;
        default:
          say('error', { message: `unknown command ${cmd}` });
      }
    } catch (err) {
      say('error', { message: describeError(err) });
    }
  }
}

main().catch((err: unknown) => {
  say('fatal', { message: describeError(err) });
  process.exit(1);
});
