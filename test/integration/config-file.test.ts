// nydusd reading config files as upstream does: a TOML v2 file mounts like its JSON
// twin, every key the daemon does not use is named in a warning at load time, and cache
// encryption (which ignoring would leave clear data on disk) stops the daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { V6_FIXTURE } from '../helpers/env.js';
import { Nydusd, canMount, workspace } from './nydusd-proc.js';

const B6 = join(V6_FIXTURE, 'bootstrap');

function toml(blobs: string, cache: string, extra: string): string {
  return ['version = 2', '[backend]', 'type = "localfs"', '[backend.localfs]', `dir = "${blobs}"`, '[cache]', 'type = "blobcache"', '[cache.filecache]', `work_dir = "${cache}"`, extra].join('\n');
}

test('a TOML config mounts; unused keys are warned about; cache encryption is refused', async (t) => {
  if (!canMount(t)) return;
  const ws = workspace(t, 'config-file');
  const cfg = join(ws.dir, 'nydusd.toml');
  writeFileSync(cfg, toml(join(V6_FIXTURE, 'blobs'), join(ws.dir, 'cache'), '[rafs]\nmode = "direct"\nuser_io_batch_size = 1048576\n'));
  const d = ws.track(new Nydusd(['-M', ws.mnt, '-B', B6, '-C', cfg, '--state-dir', ws.state], ws.mnt));
  await d.waitRunning();
  assert.deepEqual(readdirSync(ws.mnt).sort(), ['lib.rs', 'sync_io.rs']);
  assert.match(d.stderr, /WARN\] config: rafs\.user_io_batch_size is not implemented by this nydusd and is ignored/);
  await d.stop();

  const enc = join(ws.dir, 'enc.toml');
  writeFileSync(enc, toml(join(V6_FIXTURE, 'blobs'), join(ws.dir, 'cache'), 'enable_encryption = true\n'));
  const e = ws.track(new Nydusd(['-M', ws.mnt, '-B', B6, '-C', enc, '--state-dir', ws.state], ws.mnt));
  const exit = await e.exited;
  assert.equal(exit.code, 1, e.stderr);
  assert.match(e.stderr, /^nydusd: ERR_CONFIG_INVALID: .*cache\.filecache\.enable_encryption: cache encryption is not supported/m);
});
