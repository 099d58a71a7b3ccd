// kill -9 at random points: a child process appends mount/remount/umount records
// (some iterations several at a time, so group commits are in flight) and is
// SIGKILLed at random times, compactions included. After every kill the replayed
// mount table must equal the acknowledged one plus a prefix of what was in flight:
// never a lost acknowledgement, never a corrupt journal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FROM_SOURCE } from '../helpers/env.js';
import { Journal, replay } from '../../src/daemon/journal.js';
import { listSegments } from '../../src/daemon/journal-files.js';
import type { JournalEntry, JournalState } from '../../src/daemon/journal.js';

const writer = fileURLToPath(new URL(`./journal-crash-writer.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url));
const COMPACT_BYTES = 4096;

interface Model {
  mounts: Map<string, { source: string; config: string; fsType: string; prefetchFiles: string[] | null; index: number | null }>;
}

/** The test's own model of the mount table: the meaning of the records, written independently of reduce. */
function apply(m: Model, e: JournalEntry): void {
  if (e.type === 'mount') {
    m.mounts.set(e.mountpoint, { source: e.source, config: e.config, fsType: e.fsType, prefetchFiles: e.prefetchFiles, index: e.index });
  } else if (e.type === 'remount') {
    if (m.mounts.has(e.mountpoint)) {
      m.mounts.set(e.mountpoint, { source: e.source, config: e.config, fsType: e.fsType, prefetchFiles: e.prefetchFiles, index: e.index });
    }
  } else if (e.type === 'umount') {
    m.mounts.delete(e.mountpoint);
  }
}

function table(state: JournalState): string {
  const rows = [...state.mounts].map(([mp, e]) => [mp, e.source, e.config, e.fsType, e.prefetchFiles, e.index]);
  return JSON.stringify(rows.sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
}

function modelTable(m: Model): string {
  const rows = [...m.mounts].map(([mp, e]) => [mp, e.source, e.config, e.fsType, e.prefetchFiles, e.index]);
  return JSON.stringify(rows.sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
}

const clone = (m: Model): Model => ({ mounts: new Map(m.mounts) });

/**
 * Starts the writer and SIGKILLs it as soon as it has acknowledged `killAt` records: its
 * next appends (and a compaction, when one is due) are then at some point of their way
 * to the disk, which the kill's arrival decides.
 */
async function runAndKill(dir: string, seed: number, inflight: number, killAt: number): Promise<{ sent: JournalEntry[]; acked: number }> {
  const child = spawn(process.execPath, [...(FROM_SOURCE ? ['--import', 'tsx'] : []), writer, dir, String(seed), String(inflight), String(COMPACT_BYTES)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const sent: JournalEntry[] = [];
  let acked = 0;
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const lines = createInterface({ input: child.stdout });
  const closed = new Promise<void>((r) => lines.once('close', () => r()));
  lines.on('line', (l) => {
    if (l === 'READY') ready();
    else if (l.startsWith('SEND ')) sent.push(JSON.parse(l.slice(5)));
    else if (l.startsWith('ACK ') && ++acked === killAt) child.kill('SIGKILL');
  });
  const exited = new Promise<NodeJS.Signals | number | null>((r) => child.on('exit', (code, sig) => r(sig ?? code)));
  await Promise.race([readyP, exited.then((c) => Promise.reject(new Error(`writer exited early: ${c}`)))]);
  assert.equal(await exited, 'SIGKILL');
  await closed;
  return { sent, acked };
}

test('journal survives SIGKILL at random points: replay = acknowledged state plus a prefix of in-flight records', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-crash-'));
  try {
    let model: Model = { mounts: new Map() };
    let totalAcked = 0;
    const firstSegment = (await listSegments(dir)).at(-1) ?? 0;
    const iterations = 10;
    for (let i = 0; i < iterations; i++) {
      const inflight = i % 2 === 0 ? 1 : 4;
      const { sent, acked } = await runAndKill(dir, 1000 + i * 7919, inflight, 1 + Math.floor(Math.random() * 60));
      totalAcked += acked;
      // Appends are stored in call order, so the acknowledged ones are the first `acked` sent.
      for (const e of sent.slice(0, acked)) apply(model, e);
      const unacked = sent.slice(acked);
      assert.ok(unacked.length <= inflight, `iteration ${i}: ${unacked.length} in flight, at most ${inflight} expected`);
      const replayed = table(await replay(dir));
      const candidates: Model[] = [clone(model)];
      for (const e of unacked) {
        const next = clone(candidates.at(-1)!);
        apply(next, e);
        candidates.push(next);
      }
      const k = candidates.findIndex((c) => modelTable(c) === replayed);
      assert.ok(k >= 0, `iteration ${i}: replayed mount table matches neither the acknowledged state nor a later prefix`);
      // What replay shows is what the next writer continues from.
      model = candidates[k];
      const bytes = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
      assert.ok(bytes < 4 * COMPACT_BYTES + 16 * 1024, `iteration ${i}: journal grew to ${bytes} bytes`);
    }
    const compactions = ((await listSegments(dir)).at(-1) ?? 0) - firstSegment;
    assert.ok(compactions > 0, `the kills never came after a compaction (${totalAcked} records acknowledged)`);
    // A new writer takes the dead writer's lock, resumes after the last record and appends.
    // (No compaction here: its snapshot record would take the next seq too.)
    const j = await Journal.open(dir, { compactBytes: 1 << 30 });
    assert.equal(modelTable(model), table(j.state));
    const before = j.lastSeq;
    const r = await j.append({ type: 'umount', mountpoint: '/never-mounted' });
    assert.equal(r.seq, before + 1);
    await j.close();
    assert.equal((await replay(dir)).lastSeq, before + 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
