// The transport switch: both names mount, only fusedev hands its connection
// over, and fuse-native refuses every handover call with one clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmdirSync } from 'node:fs';
import { FUSE_IMPLS, mountTransport, type FuseImpl } from '../../src/fuse/transport.js';
import { MemoryFs } from '../helpers/memory-fs.js';
import { isRoot, need } from '../helpers/env.js';
import { run, runOk } from '../conformance/child.js';

test('an unknown transport name is refused', async () => {
  await assert.rejects(mountTransport('bogus' as FuseImpl, new MemoryFs(), '/tmp'), { code: 'ERR_FUSE_MOUNT', message: /unknown FUSE implementation "bogus"/ });
});

for (const impl of FUSE_IMPLS) {
  test(`${impl}: mounts, reports its connection and what it can hand over`, async (t) => {
    if (!need(t, isRoot() && existsSync('/dev/fuse'), 'FUSE mounts need root and /dev/fuse')) return;
    const dir = mkdtempSync(`/tmp/fuse-transport-${impl}-`);
    const tr = await mountTransport(impl, new MemoryFs(), dir);
    t.after(async () => {
      await tr.unmount().catch(() => run('umount', ['-l', dir]));
      rmdirSync(dir);
    });
    assert.equal(tr.impl, impl);
    assert.equal(tr.mountpoint, dir);
    const [major, minor] = (await runOk('stat', ['-c', '%Hd %Ld', dir])).trim().split(' ').map(Number);
    assert.equal(tr.connId, major * 2 ** 20 + minor);
    assert.equal((await runOk('cat', [`${dir}/hello.txt`])), 'hello, nydus\n');
    if (impl === 'fusedev') {
      assert.equal(tr.canHandOver, true);
      assert.equal(tr.exportState().connId, tr.connId);
      await tr.notifyResend();
    } else {
      assert.equal(tr.canHandOver, false);
      const refused = { code: 'ERR_FUSE_NOT_IMPLEMENTED', message: /fuse-native transport cannot hand over/ };
      assert.throws(() => tr.exportState(), refused);
      assert.throws(() => tr.dupFd(), refused);
      await assert.rejects(tr.stopReading(), refused);
      await assert.rejects(tr.notifyResend(), refused);
      await assert.rejects(tr.close(), refused);
    }
    await tr.unmount();
    assert.equal((await tr.ended).reason, 'unmounted');
  });
}
