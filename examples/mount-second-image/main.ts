// Mounts a second RAFS image into a running nydusd through its admin API
// (POST /api/v1/mount?mountpoint=/sub), lists and reads its files through the daemon's
// FUSE mount, shows the image's metrics, then unmounts it (DELETE /api/v1/mount).
//
//   node --import tsx examples/mount-second-image/main.ts --sock S --mnt M \
//     --bootstrap B --blobs D [--at /sub] [--keep]
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiClient } from '../../src/api/client.js';

const { values } = parseArgs({
  options: {
    sock: { type: 'string' },
    mnt: { type: 'string' },
    bootstrap: { type: 'string' },
    blobs: { type: 'string' },
    at: { type: 'string', default: '/sub' },
    keep: { type: 'boolean', default: false },
  },
});
const { sock, mnt, bootstrap, blobs } = values;
if (!sock || !mnt || !bootstrap || !blobs) {
  console.error('usage: main.ts --sock API_SOCKET --mnt FUSE_MOUNTPOINT --bootstrap BOOTSTRAP --blobs BLOB_DIR [--at /sub] [--keep]');
  process.exit(2);
}
const at = values.at!;

async function* files(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (e.isFile()) yield p;
  }
}

const client = new ApiClient(sock);
try {
  // The image's own config: a localfs backend on its blob directory and a blobcache.
  // `id` names its backend and blobcache metrics; the FS metrics are keyed by `at`.
  const config = {
    version: 2,
    id: at,
    backend: { type: 'localfs', localfs: { dir: blobs } },
    cache: { type: 'blobcache', filecache: { work_dir: blobs } },
  };
  await client.mount(at, { source: bootstrap, fs_type: 'rafs', config: JSON.stringify(config), prefetch_files: null });
  console.log(`mounted ${bootstrap} at ${at}`);

  const root = join(mnt, at);
  for await (const p of files(root)) {
    const data = await readFile(p);
    console.log(`read ${relative(root, p)} ${data.length} bytes sha256:${createHash('sha256').update(data).digest('hex')}`);
  }

  const fs = (await client.metrics('fs', { id: at })) as { data_read: number; fop_hits: number[] };
  const backend = (await client.metrics('backend', { id: at })) as { read_count: number; read_amount_total: number };
  console.log(`metrics ${at}: ${fs.data_read} bytes read through FUSE in ${fs.fop_hits[4]} reads; backend: ${backend.read_count} reads, ${backend.read_amount_total} bytes`);

  if (!values.keep) {
    await client.umount(at);
    console.log(`unmounted ${at}`);
  }
} finally {
  client.close();
}
