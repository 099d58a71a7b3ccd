// The reader worker: owns the blocking poll+read of /dev/fuse so the event
// loop and libuv's thread pool never wait on the kernel. It fills the ring's
// slots in order and parks when the main thread pauses it (hot upgrade), when
// every slot is busy, or when the connection ends (ENODEV / ECONNABORTED).
import { parentPort, workerData } from 'node:worker_threads';
import { constants } from 'node:os';
import { native } from '../native/index.js';
import { CMD_INDEX, Cmd, RingView, SLEEP_INDEX, Slot, type RingInit, type WorkerEvent } from './slot-ring.js';

const E = constants.errno;
const init = workerData as RingInit;
const ring = new RingView(init.sab, init.slots, init.slotSize);
const addon = native();

function post(ev: WorkerEvent): void {
  parentPort!.postMessage(ev);
}

function run(): void {
  let cur = 0;
  for (;;) {
    const cmd = Atomics.load(ring.ctl, CMD_INDEX);
    if (cmd === Cmd.EXIT) return;
    if (cmd === Cmd.PAUSE) {
      post({ type: 'paused' });
      Atomics.wait(ring.ctl, CMD_INDEX, Cmd.PAUSE);
      addon.eventfdDrain(init.wakeFd);
      continue;
    }
    const state = RingView.stateIndex(cur);
    if (Atomics.load(ring.ctl, state) !== Slot.FREE) {
      // Every slot is waiting for the main thread: back-pressure, not busy-waiting.
      Atomics.wait(ring.ctl, state, Slot.FILLED, 1000);
      continue;
    }
    const n = addon.readRequest(init.fd, init.wakeFd, ring.bufs[cur]);
    if (n > 0) {
      ring.lens[cur] = n;
      Atomics.store(ring.ctl, state, Slot.FILLED);
      // Wake the main thread only if it announced it was going idle.
      if (Atomics.exchange(ring.ctl, SLEEP_INDEX, 0) === 1) post({ type: 'kick' });
      cur = (cur + 1) % ring.slots;
      continue;
    }
    if (n === 0) {
      // Woken: the command word says why (pause or exit); a stale wake-up is harmless.
      if (Atomics.load(ring.ctl, CMD_INDEX) === Cmd.RUN) addon.eventfdDrain(init.wakeFd);
      continue;
    }
    const errno = -n;
    // ENOENT: the request was interrupted while being read; EAGAIN: another reader won.
    if (errno === E.EINTR || errno === E.EAGAIN || errno === E.ENOENT) continue;
    if (errno === E.ENODEV || errno === E.ECONNABORTED) return post({ type: 'ended', errno });
    return post({ type: 'failed', errno });
  }
}

run();
// Leave even if something else (a loader hook, a stray handle) would keep this thread alive.
process.exit(0);
