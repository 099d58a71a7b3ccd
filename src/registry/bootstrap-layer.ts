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
import { StorageError } from '../errors.js';
import { encodeTarHeader, padding, tarTrailer } from '../util/tar-header.js';
import { TarReader, type TarMember } from '../util/tar-reader.js';
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

/** The tar stream of a layer: one header (mtime 0, root-owned), the bootstrap's bytes, padding, the end blocks. */
async function* layerTar(bootstrap: string, size: number): AsyncGenerator<Buffer> {
  const path = Buffer.from(BOOTSTRAP_IN_LAYER);
  yield encodeTarHeader({ kind: 'file', path, mode: 0o644, uid: 0, gid: 0, size, mtime: 0, mtimeNsec: 0 });
  let copied = 0;
  for await (const chunk of createReadStream(bootstrap)) {
    copied += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
  if (copied !== size) throw new StorageError('ERR_STORAGE_MANIFEST', `failed to pack bootstrap layer: ${bootstrap} changed size while packed (${copied} bytes, ${size} expected)`);
  yield Buffer.alloc(padding(size));
  yield tarTrailer();
}

/** Writes the bootstrap at `bootstrap` as a layer file at `dest`. */
export async function packBootstrapLayer(bootstrap: string, dest: string): Promise<PackedLayer> {
  const { size } = await stat(bootstrap);
  const tarTap = new Tap();
  const gzTap = new Tap();
  await pipeline(layerTar(bootstrap, size), tarTap, createGzip({ level: 6 }), gzTap, createWriteStream(dest));
  return { path: dest, digest: `sha256:${gzTap.hash.digest('hex')}`, size: gzTap.bytes, diffId: `sha256:${tarTap.hash.digest('hex')}` };
}

/** The member name without a leading `./` or `/`. */
function memberName(m: TarMember): string {
  return m.path.toString('latin1').replace(/^\.\//, '').replace(/^\/+/, '');
}

/** The data of the current member, in pieces of at most 1 MiB. */
async function* memberData(reader: TarReader): AsyncGenerator<Buffer> {
  while (reader.left > 0) yield await reader.read(1 << 20);
}

/**
 * Extracts `image/image.boot` from the layer file at `layer` into `dest` (atomically).
 * Throws ERR_STORAGE_MANIFEST when the layer holds no bootstrap or one over `limit` bytes.
 */
export async function unpackBootstrapLayer(layer: string, dest: string, limit: number): Promise<number> {
  const tmp = `${dest}.part-${process.pid}`;
  let found = -1;
  try {
    await pipeline(createReadStream(layer), createGunzip(), async (tarBytes: AsyncIterable<Buffer>) => {
      // The whole archive is read, so a layer that is corrupt past the bootstrap still fails.
      const reader = new TarReader(tarBytes);
      for (let m = await reader.next(); m !== undefined; m = await reader.next()) {
        const name = memberName(m);
        if (found >= 0 || m.kind !== 'file' || (name !== BOOTSTRAP_IN_LAYER && name !== 'image.boot')) continue;
        if (m.size > limit) {
          throw new StorageError('ERR_STORAGE_MANIFEST', `failed to unpack bootstrap layer: ${name} is ${m.size} bytes, over ${limit}`);
        }
        found = m.size;
        await pipeline(memberData(reader), createWriteStream(tmp));
      }
    });
    if (found < 0) throw new StorageError('ERR_STORAGE_MANIFEST', `failed to unpack bootstrap layer: it has no ${BOOTSTRAP_IN_LAYER}`);
    await rename(tmp, dest);
    return found;
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof StorageError) throw err;
    throw new StorageError('ERR_STORAGE_MANIFEST', `failed to unpack bootstrap layer: ${(err as Error).message}`, { cause: err });
  }
}
