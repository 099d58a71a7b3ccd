// The daemon side of the supervisor protocol in its own process, for the
// cross-process fd-passing tests. Not a test itself.
//   fd-peer.ts send <sock> <file> <stateBytes>   sendStateWithFd with an fd of <file>
//   fd-peer.ts receive <sock>                      receiveStateWithFd; prints what came
import { createHash } from 'node:crypto';
import { fstatSync, openSync, readSync } from 'node:fs';
import { describeError } from '../../src/errors.js';
import { receiveStateWithFd, sendStateWithFd } from '../../src/native/index.js';
import { patternBytes } from '../helpers/memory-fs.js';

async function main(): Promise<void> {
  const [mode, sock, file, size] = process.argv.slice(2);
  if (mode === 'send') {
    const fd = openSync(file, 'r');
    await sendStateWithFd(sock, patternBytes(7, Number(size)), fd, { timeoutMs: 10_000 });
    console.log(JSON.stringify({ sent: Number(size) }));
    return;
  }
  const got = await receiveStateWithFd(sock, { timeoutMs: 10_000 });
  const buf = Buffer.alloc(4096);
  const n = readSync(got.fds[0], buf, 0, buf.length, 0);
  console.log(JSON.stringify({
    length: got.data.length,
    sha256: createHash('sha256').update(got.data).digest('hex'),
    fds: got.fds.length,
    ino: fstatSync(got.fds[0]).ino,
    content: buf.subarray(0, n).toString(),
  }));
}

main().catch((err: unknown) => {
  console.log(JSON.stringify({ error: describeError(err), code: (err as { code?: string }).code }));
  process.exit(1);
});
