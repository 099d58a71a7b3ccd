// The Debian minbase root filesystem as an OCI-style .tar.gz layer (GNU tar, gzip -6)
// and its targz-ref image (`nydus-image create -t targz-ref`), made once per process
// for the targz-ref tests.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { programArgv } from '../helpers/env.js';
import { runOk } from '../conformance/child.js';
import { scratch } from './image-helpers.js';
import { ensureRootfs } from './rootfs.js';

export interface TargzRefImage {
  rootfs: string;
  layer: string;
  blobDir: string;
  bootstrap: string;
  /** sha256 of the layer: the data blob. */
  blobId: string;
  /** sha256 of the meta blob. */
  metaId: string;
}

let built: Promise<TargzRefImage | string> | undefined;

/** The layer and its image, or why they cannot be made here. */
export function targzRefImage(): Promise<TargzRefImage | string> {
  built ??= (async () => {
    const rootfs = await ensureRootfs();
    if (rootfs.dir === undefined) return rootfs.reason ?? 'no rootfs';
    const work = scratch('targz-ref');
    process.once('exit', () => work.cleanup());
    const layer = join(work.dir, 'layer.tar.gz');
    await runOk('sh', ['-c', `tar --numeric-owner --xattrs -C '${rootfs.dir}' -cf - . | gzip -6 > '${layer}'`], work.dir);
    const blobDir = join(work.dir, 'blobs');
    mkdirSync(blobDir);
    const bootstrap = join(work.dir, 'bootstrap');
    const json = join(work.dir, 'out.json');
    const [cmd, ...pre] = programArgv('nydus-image');
    await runOk(cmd, [...pre, 'create', '-t', 'targz-ref', '-D', blobDir, '-B', bootstrap, '-J', json, layer], work.dir);
    const out = JSON.parse(readFileSync(json, 'utf8')) as { blobs: string[]; blob_meta: string };
    return { rootfs: rootfs.dir, layer, blobDir, bootstrap, blobId: out.blobs[0], metaId: out.blob_meta };
  })();
  return built;
}
