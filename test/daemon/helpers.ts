// A DaemonController on a real FUSE mount in a temp dir, for the controller tests: the
// images' blobcache lives in the temp dir, the mount is removed whatever happens, and
// the mount is only ever touched from child processes (test/conformance/child.ts).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { DaemonController, type DaemonOptions } from '../../src/daemon/controller.js';
import type { MountCmd } from '../../src/daemon/control.js';
import { findMount } from '../../src/fuse/mount-linux.js';
import { haveFixtures, isRoot, need, V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { run } from '../conformance/child.js';
import { configJson } from '../fs/helpers.js';

export interface DaemonFixture {
  dir: string;
  mnt: string;
  stateDir: string;
  controller: DaemonController;
  /** A MountCmd for a fixture image, its blobcache under this fixture's dir. */
  cmd(which: 'v5' | 'v6', rafs?: Record<string, unknown>): MountCmd;
}

/** Prerequisites of a kernel test; false (skipped) when missing outside CI. */
export function canMount(t: TestContext): boolean {
  return need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse') && need(t, haveFixtures(), 'fixtures missing');
}

/** A controller in INIT over a fresh mountpoint; torn down (and unmounted) after the test. */
export async function daemonFixture(t: TestContext, opts: Partial<DaemonOptions> = {}): Promise<DaemonFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'daemon-ctl-'));
  const mnt = join(dir, 'mnt');
  const stateDir = join(dir, 'state');
  mkdirSync(mnt);
  const controller = await DaemonController.create({ mountpoint: mnt, stateDir, ...opts });
  t.after(async () => {
    if (controller.state !== 'STOPPED') await controller.shutdown('signal').catch(() => undefined);
    await controller.close().catch(() => undefined);
    if (await findMount(mnt)) await run('umount', ['-l', mnt]);
    rmSync(dir, { recursive: true, force: true });
  });
  let caches = 0;
  return {
    dir,
    mnt,
    stateDir,
    controller,
    cmd(which, rafs = {}) {
      const fixture = which === 'v5' ? V5_FIXTURE : V6_FIXTURE;
      const work = join(dir, `cache-${caches++}`);
      return { source: join(fixture, 'bootstrap'), fs_type: 'rafs', config: configJson(join(fixture, 'blobs'), work, rafs), prefetch_files: null };
    },
  };
}
