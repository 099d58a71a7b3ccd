// The hand-off between the reader worker and the main thread: a
// SharedArrayBuffer holding N request slots used round-robin. The worker
// fills slot i and flips its state to FILLED; the main thread decodes it in
// place and flips it back to FREE. No copy and no allocation per request.
// The main thread is woken by a message only when it said it was going idle
// (the SLEEP word), so a busy session exchanges no messages at all, and the
// worker's message port keeps the event loop alive while idle (a pending
// Atomics.waitAsync does not in Node 20: nodejs/node#44409). A command word
// lets the main thread pause or stop the worker.

/** Command word values (main -> worker). */
export const Cmd = { RUN: 0, PAUSE: 1, EXIT: 2 } as const;
/** Slot states. */
export const Slot = { FREE: 0, FILLED: 1 } as const;

/** Index of the command word in the control array. */
export const CMD_INDEX = 0;
/** Index of the word the main thread sets to 1 before it goes idle. */
export const SLEEP_INDEX = 1;
const HEADER_WORDS = 4;

/** Messages the worker posts (rare events only; requests go through the ring). */
export type WorkerEvent =
  | { type: 'kick' }
  | { type: 'paused' }
  | { type: 'ended'; errno: number }
  | { type: 'failed'; errno: number };

/** What the worker is started with. */
export interface RingInit {
  fd: number;
  wakeFd: number;
  sab: SharedArrayBuffer;
  slots: number;
  slotSize: number;
}

/** Views over the shared ring: control words, per-slot length, slot buffers. */
export class RingView {
  readonly ctl: Int32Array;
  readonly lens: Int32Array;
  readonly bufs: Buffer[];
  readonly slots: number;

  constructor(sab: SharedArrayBuffer, slots: number, slotSize: number) {
    this.slots = slots;
    this.ctl = new Int32Array(sab, 0, HEADER_WORDS + slots);
    this.lens = new Int32Array(sab, (HEADER_WORDS + slots) * 4, slots);
    const base = RingView.dataOffset(slots);
    this.bufs = [];
    for (let i = 0; i < slots; i++) this.bufs.push(Buffer.from(sab, base + i * slotSize, slotSize));
  }

  /** Index in `ctl` of slot i's state word. */
  static stateIndex(i: number): number {
    return HEADER_WORDS + i;
  }

  static dataOffset(slots: number): number {
    return Math.ceil(((HEADER_WORDS + 2 * slots) * 4) / 64) * 64;
  }

  /** A zeroed ring (RUN, all slots FREE). */
  static create(slots: number, slotSize: number, cmd: number = Cmd.RUN): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(RingView.dataOffset(slots) + slots * slotSize);
    new Int32Array(sab)[CMD_INDEX] = cmd;
    return sab;
  }

  /** Wakes whoever waits on the ring (slot states and the command word). */
  wakeAll(): void {
    for (let i = 0; i < this.ctl.length; i++) Atomics.notify(this.ctl, i);
  }
}
