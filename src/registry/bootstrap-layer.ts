// The bootstrap layer of a Nydus image: a gzip'd tar whose one entry is
// `image/image.boot` (where nydus-snapshotter expects it after containerd unpacks the
// layer). pack streams a bootstrap file into such a layer file and reports the layer's
// digest and the tar's uncompressed digest (its diff id); unpack streams a layer back
// out to a bootstrap file, refusing entries larger than a limit. Entries are written
// with mtime 0 and uid/gid 0, so one bootstrap always makes the same layer bytes.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { StorageError } from '../errors.js';
import { BOOTSTRAP_IN_LAYER } from './nydus-manifest.js';

/** A packed layer file. */
export interface PackedLayer {
  path: string;
  /** `sha256:` of the gzip'd bytes. */
  digest: string;
  size: number;
  /** `sha256:` of the tar (the diff id). */
  diffId: string;
}

/** Passes bytes through while hashing and counting them. */
class Tap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** Writes the bootstrap at `bootstrap` as a layer file at `dest`. */
export async function packBootstrapLayer(bootstrap: string, dest: string): Promise<PackedLayer> {
  const { size } = await stat(bootstrap);
  const pack = tar.pack();
  const entry = pack.entry({ name: BOOTSTRAP_IN_LAYER, size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, type: 'file' });
  const fed = pipeline(createReadStream(bootstrap), entry).then(() => pack.finalize());
  const tarTap = new Tap();
  const gzTap = new Tap();
  await Promise.all([fed, pipeline(pack, tarTap, createGzip({ level: 6 }), gzTap, createWriteStream(dest))]);
  return { path: dest, digest: `sha256:${gzTap.hash.digest('hex')}`, size: gzTap.bytes, diffId: `sha256:${tarTap.hash.digest('hex')}` };
}

/**
 * Extracts `image/image.boot` from the layer file at `layer` into `dest` (atomically).
 * Throws ERR_STORAGE_MANIFEST when the layer holds no bootstrap or one over `limit` bytes.
 */
export async function unpackBootstrapLayer(layer: string, dest: string, limit: number): Promise<number> {
  const extract = tar.extract();
  const tmp = `${dest}.part-${process.pid}`;
  let found = -1;
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const name = header.name.replace(/^\.\//, '').replace(/^\/+/, '');
      const wanted = found < 0 && header.type === 'file' && (name === BOOTSTRAP_IN_LAYER || name === 'image.boot');
      if (!wanted) {
        stream.on('end', next).resume();
        return;
      }
      if ((header.size ?? 0) > limit) {
        reject(new StorageError('ERR_STORAGE_MANIFEST', `failed to unpack bootstrap layer: ${name} is ${header.size} bytes, over ${limit}`));
        stream.resume();
        return;
      }
      found = header.size ?? 0;
      pipeline(stream, createWriteStream(tmp)).then(() => next(), reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  try {
    await Promise.all([pipeline(createReadStream(layer), createGunzip(), extract), done]);
    if (found < 0) throw new StorageError('ERR_STORAGE_MANIFEST', `failed to unpack bootstrap layer: it has no ${BOOTSTRAP_IN_LAYER}`);
    await rename(tmp, dest);
    return found;
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof StorageError) throw err;
    throw new StorageError('ERR_STORAGE_MANIFEST', `failed to unpack bootstrap layer: ${(err as Error).message}`, { cause: err });
  }
}
