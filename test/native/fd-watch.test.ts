// The readability watch and the non-blocking read the /dev/fuse session uses, on a
// FIFO opened read-write (both ends in one fd): the watch calls back from the event
// loop only while started and while the fd is readable (level-triggered), reads return
// -EAGAIN once drained, a stopped watch keeps the process alive until it is closed, and
// bad arguments are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants as fsc, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native/index.js';
import { REPO_ROOT } from '../helpers/env.js';
import { loopTurns } from '../helpers/wait.js';
import { nodeEval, runOk } from '../conformance/child.js';

const E = constants.errno;
const ADDON = join(REPO_ROOT, 'build', 'Release', 'nydus_native.node');

async function fifo(t: import('node:test').TestContext): Promise<number> {
  const dir = mkdtempSync('/tmp/native-watch-');
  const path = join(dir, 'fifo');
  await runOk('mkfifo', [path]);
  const fd = openSync(path, fsc.O_RDWR | fsc.O_NONBLOCK);
  t.after(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return fd;
}

/** Turns of the event loop: each has a poll phase, where a started watch on a readable fd calls back. */
const turns = (n = 3) => loopTurns(n);

test('the watch calls back while started and readable, and readRequest drains to -EAGAIN', async (t) => {
  const addon = native();
  const fd = await fifo(t);
  const calls: number[] = [];
  const buf = Buffer.alloc(64);
  let drain = true;
  const got: string[] = [];
  const watch = addon.watchReadable(fd, (status) => {
    calls.push(status);
    if (!drain) return;
    for (;;) {
      const n = addon.readRequest(fd, buf);
      if (n < 0) {
        assert.equal(n, -E.EAGAIN);
        return;
      }
      got.push(buf.toString('utf8', 0, n));
    }
  });
  t.after(() => addon.watchClose(watch));

  writeSync(fd, 'one');
  await turns();
  assert.deepEqual(calls, [], 'a new watch is stopped');

  addon.watchStart(watch);
  await turns();
  assert.deepEqual(calls, [0]);
  assert.deepEqual(got, ['one']);
  await turns();
  assert.deepEqual(calls, [0], 'drained: no further call');

  drain = false;
  writeSync(fd, 'two');
  await turns(5);
  assert.ok(calls.length >= 3, `level-triggered: called again on later turns while the data is unread (${calls.length} calls)`);

  addon.watchStop(watch);
  const stopped = calls.length;
  await turns();
  assert.equal(calls.length, stopped, 'no call while stopped');

  drain = true;
  addon.watchStart(watch);
  await turns();
  assert.deepEqual(got, ['one', 'two'], 'what queued while stopped is read after a restart');
  assert.equal(addon.readRequest(fd, buf), -E.EAGAIN);
});

test('promise jobs queued by the callback run before the next poll', async (t) => {
  const addon = native();
  const fd = await fifo(t);
  const order: string[] = [];
  const watch = addon.watchReadable(fd, () => {
    addon.readRequest(fd, Buffer.alloc(8));
    order.push('callback');
    void Promise.resolve().then(() => order.push('microtask'));
    setImmediate(() => order.push('immediate'));
  });
  t.after(() => addon.watchClose(watch));
  addon.watchStart(watch);
  writeSync(fd, 'x');
  await turns();
  assert.deepEqual(order, ['callback', 'microtask', 'immediate']);
});

test('a watch keeps the process alive, stopped or started, until it is closed', async () => {
  // A child opens a FIFO, watches it, then does what argv[2] says; it prints "exit" if its loop ended.
  const dir = mkdtempSync('/tmp/native-watch-');
  try {
    await runOk('mkfifo', [join(dir, 'fifo')]);
    const code = `
      const fs = require('node:fs');
      const addon = require(process.argv[1]);
      const fd = fs.openSync(process.argv[3], fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      const w = addon.watchReadable(fd, () => {});
      if (process.argv[2] === 'start') addon.watchStart(w);
      if (process.argv[2] === 'close') addon.watchClose(w);
      process.on('exit', () => console.log('exit'));
      // Unreferenced timers, one set by the other, so the second fires on a later turn of
      // the loop than the first: only if something else holds the loop (a closed watch
      // holds it through its close callback on the first turn, no further).
      setTimeout(() => setTimeout(() => { console.log('alive'); process.exit(0); }, 1).unref(), 1).unref();`;
    const fifoPath = join(dir, 'fifo');
    const out = async (mode: string) => (await nodeEval(code, [ADDON, mode, fifoPath])).stdout.toString().trim().split('\n');
    assert.deepEqual(await out('stop'), ['alive', 'exit'], 'a stopped watch holds the loop');
    assert.deepEqual(await out('start'), ['alive', 'exit'], 'a started watch holds the loop');
    assert.deepEqual(await out('close'), ['exit'], 'a closed watch lets the process end');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readRequest, writev and the watch calls report errors instead of crashing', async (t) => {
  const addon = native();
  assert.equal(addon.readRequest(987_654, new Uint8Array(8)), -E.EBADF);
  assert.equal(addon.writev(987_654, [Buffer.from('x')]), -E.EBADF);
  assert.throws(() => addon.readRequest(0, new Uint16Array(4) as unknown as Uint8Array), TypeError);
  assert.throws(() => addon.watchReadable(0, 'nope' as unknown as () => void), TypeError);
  assert.throws(() => addon.watchStart({} as never), TypeError);
  assert.throws(() => addon.watchReadable(987_654, () => {}), (err: { errno?: number }) => err.errno === E.EBADF);
  const w = addon.watchReadable(await fifo(t), () => {});
  addon.watchClose(w);
  addon.watchClose(w);
  assert.throws(() => addon.watchStart(w), (err: { errno?: number }) => err.errno === E.EBADF, 'a closed watch cannot restart');
});
