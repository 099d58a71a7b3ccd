// Mounts the MemoryFs test tree with one transport and runs the posix suite
// against it as subtests; the mount is removed in t.after whatever happens.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmdirSync } from 'node:fs';
import { mountTransport, type FuseImpl, type FuseTransport } from '../../src/fuse/transport.js';
import { MemoryFs } from '../helpers/memory-fs.js';
import { isRoot, need } from '../helpers/env.js';
import { posixSuite, type Caps } from './posix.js';
import { run } from './child.js';

export async function runConformance(t: TestContext, impl: FuseImpl, caps: Caps): Promise<void> {
  if (!need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse')) return;
  const dir = mkdtempSync(`/tmp/fuse-conformance-${impl}-`);
  const fs = new MemoryFs();
  const errors: unknown[] = [];
  let transport: FuseTransport | undefined;
  t.after(async () => {
    if (transport) await transport.unmount().catch(() => run('umount', ['-l', dir]));
    rmdirSync(dir);
  });
  transport = await mountTransport(impl, fs, dir, { onError: (e) => errors.push(e) });
  for (const [name, fn] of Object.entries(posixSuite)) {
    await t.test(name, () => fn({ mnt: dir, fs, caps }));
  }
  assert.deepEqual(errors, [], 'the server reported no unexpected errors');
}
