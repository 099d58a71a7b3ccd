// Child process of journal-crash.test.ts: opens the journal in argv[2] and appends
// random mount/remount/umount records for ever, `inflight` (argv[4]) at a time, until
// it is SIGKILLed. It prints `SEND <json>` before an append and `ACK <seq>` once the
// append resolved, so the parent knows what was acknowledged and what was in flight (an
// ACK lost with the process only makes its record look in flight).
import { Journal } from '../../src/daemon/journal.js';
import type { JournalEntry } from '../../src/daemon/journal.js';

const [dir, seedArg, inflightArg, compactArg] = process.argv.slice(2);
let seed = Number(seedArg) >>> 0 || 1;
const inflight = Number(inflightArg) || 1;

function rand(n: number): number {
  // xorshift32: the parent does not need the sequence, only the printed lines.
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed % n;
}

const journal = await Journal.open(dir, { compactBytes: Number(compactArg) || 4096 });
const mounted = new Set(journal.state.mounts.keys());
let n = 0;

function nextEntry(): JournalEntry {
  const mp = `/m${rand(12)}`;
  n++;
  if (mounted.has(mp)) {
    if (rand(3) === 0) {
      return { type: 'remount', mountpoint: mp, source: `/img/${n}/bootstrap`, config: JSON.stringify({ n, pad: 'x'.repeat(rand(200)) }), fsType: 'rafs', prefetchFiles: null, index: null };
    }
    mounted.delete(mp);
    return { type: 'umount', mountpoint: mp };
  }
  mounted.add(mp);
  return {
    type: 'mount',
    mountpoint: mp,
    source: `/img/${n}/bootstrap`,
    config: JSON.stringify({ n, secret: 'token', pad: 'y'.repeat(rand(300)) }),
    fsType: 'rafs',
    prefetchFiles: rand(2) === 0 ? null : ['/a', `/b${n}`],
    index: rand(4) === 0 ? null : Number(mp.slice(2)),
  };
}

/**
 * Resolves once the line is in the pipe. A write to a full pipe is queued in this process,
 * where SIGKILL would lose it: an append whose SEND line never reached the parent would
 * look like a record from nowhere.
 */
function say(line: string): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${line}\n`, () => resolve()));
}

await say('READY');
for (;;) {
  const batch: Array<Promise<void>> = [];
  for (let i = 0; i < inflight; i++) {
    const entry = nextEntry();
    await say(`SEND ${JSON.stringify(entry)}`);
    batch.push(journal.append(entry).then((r) => void process.stdout.write(`ACK ${r.seq}\n`)));
  }
  await Promise.all(batch);
}
