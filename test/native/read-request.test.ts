// The blocking poll+read the session's reader worker uses: it blocks its own
// thread only (the event loop keeps running), returns the bytes when the fd
// becomes readable, and returns 0 at once when the wake-up eventfd is signalled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../../src/native/index.js';
import { REPO_ROOT } from '../helpers/env.js';

const ADDON = join(REPO_ROOT, 'build', 'Release', 'nydus_native.node');

// A worker that blocks in readRequest(fd, wakeFd) and posts each result.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const addon = require(workerData.addon);
const buf = new Uint8Array(new SharedArrayBuffer(64), 8, 16);
parentPort.on('message', () => {
  const n = addon.readRequest(workerData.fd, workerData.wake, buf);
  if (n === 0) addon.eventfdDrain(workerData.wake);
  parentPort.postMessage(n);
});`;

test('readRequest blocks its worker, not the event loop, and a wake-up interrupts it', async (t) => {
  const addon = native();
  const fd = addon.eventfd();
  const wake = addon.eventfd();
  const w = new Worker(WORKER, { eval: true, workerData: { addon: ADDON, fd, wake } });
  t.after(async () => {
    await w.terminate();
    addon.close(fd);
    addon.close(wake);
  });
  const results: number[] = [];
  w.on('message', (n: number) => results.push(n));

  w.postMessage('read');
  let ticks = 0;
  for (let i = 0; i < 10; i++) {
    await sleep(20);
    ticks++;
  }
  assert.equal(ticks, 10, 'the event loop kept running');
  assert.deepEqual(results, [], 'the read is still blocked');

  addon.eventfdSignal(wake);
  for (let i = 0; i < 100 && results.length < 1; i++) await sleep(10);
  assert.deepEqual(results, [0], 'woken without reading');

  w.postMessage('read');
  await sleep(50);
  addon.eventfdSignal(fd);
  for (let i = 0; i < 100 && results.length < 2; i++) await sleep(10);
  assert.deepEqual(results, [0, 8], 'the readable fd gave its 8 bytes');
});

test('readRequest and writev report errors as -errno instead of throwing', () => {
  const addon = native();
  const wake = addon.eventfd();
  try {
    assert.equal(addon.readRequest(987_654, wake, new Uint8Array(8)), -9, 'EBADF');
    assert.equal(addon.writev(987_654, [Buffer.from('x')]), -9, 'EBADF');
    assert.throws(() => addon.readRequest(wake, wake, new Uint16Array(4) as unknown as Uint8Array), TypeError);
  } finally {
    addon.close(wake);
  }
});
