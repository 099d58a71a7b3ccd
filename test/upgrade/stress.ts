// The acceptance run of hot upgrade and failover (stress-fusedev.test.ts and
// stress-erofs.test.ts register it): while 8 readers loop over every file of the mount checking
// digests, and a holder keeps its cwd and an open file inside it, 20 hot upgrades in a row
// (both supervisor orders, alternating) and then 20 kill -9 failovers. No read may fail or
// return wrong bytes, the mount may never disappear, and every reader, the holder's open
// file and its cwd included, must go on after the last handover. The longest read stall of
// each handover is printed (bench/upgrade measures it properly; never asserted here).
// Each daemon serves every child before the next handover starts. The same run is made
// with `--fs-driver erofs`, where the readers go through the kernel's erofs (reading the
// blob views as files) and the connection handed over is the blob views'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { replay } from '../../src/daemon/journal.js';
import { isMounted } from '../helpers/env.js';
import { canRun, now, Rig, type Handover } from './rig.js';
import { expectedFiles, expectedV6Files, fixtureHolder, Load, stallsPerHandover, v6Holder } from './readers.js';

const UPGRADES = 20;
const FAILOVERS = 20;
const READERS = 8;

/** Registers the acceptance run for one fs driver (one test file each: each gets the runner's whole per-file time). */
export function stressTest(driver: 'fusedev' | 'erofs'): void {
test(`${driver}: ${UPGRADES} hot upgrades then ${FAILOVERS} kill -9 failovers under ${READERS} readers and a holder: no failed read`, async (t) => {
  if (!canRun(t)) return;
  const erofs = driver === 'erofs';
  const rig = await Rig.start(t, erofs ? ['--fs-driver', 'erofs'] : []);
  const watched = erofs ? join(rig.mnt, 'v6') : rig.mnt;
  // File-backed erofs reads the views through their page cache, and takes no O_DIRECT
  // from the readers: the page cache (erofs' and the views') is dropped in each handover
  // while no daemon serves, so the readers' next reads wait for the successor.
  if (erofs) rig.duringGap = () => writeFileSync('/proc/sys/vm/drop_caches', '1');
  const load = Load.start(join(rig.dir, 'stop'), READERS, erofs ? expectedV6Files(rig.mnt) : expectedFiles(rig.mnt), erofs ? v6Holder(rig.mnt) : fixtureHolder(rig.mnt));
  t.after(() => load.kill());
  await load.warm();

  // /proc/self/mounts only: the watcher never touches the mount.
  let checks = 0;
  let missing = 0;
  const watch = setInterval(() => {
    checks++;
    if (!isMounted(watched)) missing++;
  }, 5);

  const handovers: Handover[] = [];
  try {
    for (let i = 0; i < UPGRADES; i++) {
      const old = rig.current;
      handovers.push(i % 2 === 0 ? await rig.upgradeSnapshotter() : await rig.upgradeSmoke());
      // Every child is served by the new daemon before it is replaced in turn.
      await load.readAfter(handovers.at(-1)!.running);
      assert.deepEqual(await old.exited, { code: 0, signal: null }, `upgrade ${i}: the old daemon exits 0`);
    }
    for (let i = 0; i < FAILOVERS; i++) {
      handovers.push(await rig.failover());
      await load.readAfter(handovers.at(-1)!.running);
      assert.match(rig.current.stderr, /a previous daemon crashed/, `failover ${i}: the crash was detected`);
    }
    // Everyone, the holder's open file and cwd included, completes whole rounds after the last handover.
    await load.readAfter(handovers.at(-1)!.running, { round: true });
  } catch (err) {
    // What the machine looked like when a handover went wrong, before teardown undoes it.
    for (const line of [...load.describe(now()), ...rig.describe()]) t.diagnostic(line);
    throw err;
  } finally {
    clearInterval(watch);
  }
  const end = now();
  const report = await load.stop();

  const stalls = stallsPerHandover(report.gaps, handovers.map((h) => h.stopped), end);
  handovers.forEach((h, i) => {
    t.diagnostic(`${String(i + 1).padStart(2)} ${h.kind.padEnd(19)} handover ${Math.round(h.running - h.stopped)} ms, longest read stall ${Math.round(stalls[i])} ms`);
  });
  t.diagnostic(`reads: ${report.done.map((d) => `${d.who} ${d.reads}`).join(', ')}; mount checked ${checks} times`);

  assert.deepEqual(report.bad, [], 'no failed or wrong read');
  assert.deepEqual(report.early, [], 'no reader died');
  assert.equal(report.done.length, READERS + 1);
  assert.equal(missing, 0, 'the mount never disappeared');
  assert.ok(checks > 100);
  const info = await rig.current.client.info();
  assert.deepEqual([info.state, Object.keys(info.backend_collection ?? {}).sort()], ['RUNNING', rig.mountpoints]);
  const journal = await replay(join(rig.dir, 'state'));
  assert.deepEqual([...journal.mounts].map(([mp, e]) => [mp, e.index]).sort(), rig.mountpoints.map((mp, i) => [mp, i + 1]), 'same indexes after 40 handovers');
});
}
