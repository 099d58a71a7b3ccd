// Publishing a built image to a registry (`nydus-image push`): every data blob the
// bootstrap references (found in the blob directory, and checked to be named by its own
// sha256, since the registry backend fetches `sha256:<blob id>`), the bootstrap packed as
// its layer, the image config and the manifest, in the shape nydus-snapshotter expects
// (nydus-manifest.ts). Blobs the repository already holds are not uploaded again.
// With `ociRef` (nydusify's `--oci-ref` shape, for targz-ref and eStargz images), the
// original layers are referenced, never uploaded: they must be in the target repository
// already, and the manifest lists only the artifact, each meta blob annotated with the
// layer it indexes (refLayer).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageError } from '../errors.js';
import { openBootstrap } from '../rafs/index.js';
import { BlobFeatures } from '../rafs/layout/common.js';
import type { BlobInfo } from '../storage/types.js';
import { isStargzBlob } from '../storage/gzip-member.js';
import { packBootstrapLayer } from './bootstrap-layer.js';
import { clientFor, type RegistryAccess } from './distribution.js';
import {
  blobLayer,
  bootstrapLayer,
  buildImageConfig,
  buildManifest,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_MANIFEST,
  ociArch,
  refLayer,
  type Descriptor,
  type ImageManifest,
} from './nydus-manifest.js';
import { formatReference, manifestRef, parseReference } from './reference.js';

export interface PushOptions extends RegistryAccess {
  /** The image's bootstrap. */
  bootstrap: string;
  /** Directory holding the data blobs, each named by its blob id (with `ociRef`: the meta blobs, if any). */
  blobDir?: string;
  /** Target reference, `host[:port]/repo[:tag]`. */
  target: string;
  /** Image platform (default linux and this machine's architecture). */
  platform?: { os: string; architecture: string };
  /** Reference the original layers (targz-ref, eStargz) instead of publishing them. */
  ociRef?: boolean;
  /** The image config's `config` (Env, Entrypoint, Cmd, ...): a converted image keeps its source's. */
  runConfig?: Record<string, unknown>;
  /** Where the bootstrap layer is packed (default: a temp dir of its own, removed after). */
  workDir?: string;
  /** Progress lines (blob uploaded / already present). */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface PushResult {
  reference: string;
  manifestDigest: string;
  manifest: ImageManifest;
  /** Layers and config uploaded, and those the registry already had. */
  uploaded: number;
  skipped: number;
  uploadedBytes: number;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Pushes the image of `opts.bootstrap` to `opts.target`. */
export async function pushImage(opts: PushOptions): Promise<PushResult> {
  const ref = parseReference(opts.target);
  if (ref.digest !== undefined) throw new StorageError('ERR_STORAGE_MANIFEST', `failed to push ${opts.target}: push to a tag, not a digest`);
  const sb = await openBootstrap(opts.bootstrap);
  const log = opts.onProgress ?? (() => {});
  // A zran meta blob with the bootstrap inlined names itself by its file name, which a
  // bootstrap layer in a registry does not keep: such an image is merged first.
  const inlined = sb.blobs.find((b) => (b.features & BlobFeatures.INLINED_FS_META) !== 0 && (b.features & BlobFeatures.SEPARATE) !== 0);
  if (inlined !== undefined) {
    throw new StorageError(
      'ERR_STORAGE_MANIFEST',
      `failed to push ${opts.target}: the bootstrap is inlined in the meta blob of ${inlined.blobId}; write it out with \`nydus-image merge -B FILE ${opts.bootstrap}\` and push FILE`,
    );
  }
  const blobs: { id: string; path: string; size: number; refLayer?: string }[] = [];
  // A targz-ref blob (the original layer, usually already in the repository) comes with
  // its meta blob, which nydusd fetches from the same repository.
  const wanted: { id: string; refLayer?: string }[] = opts.ociRef
    ? sb.blobs.flatMap((b) => (b.metaBlobId === undefined ? [] : [{ id: b.metaBlobId, refLayer: b.blobId }]))
    : sb.blobs.flatMap((b) => (b.metaBlobId === undefined ? [{ id: b.blobId }] : [{ id: b.blobId }, { id: b.metaBlobId }]));
  if (opts.ociRef) {
    const native = sb.blobs.find((b) => !isRefBlob(b));
    if (native !== undefined) {
      throw new StorageError('ERR_STORAGE_MANIFEST', `failed to push ${opts.target} with --oci-ref: blob ${native.blobId} is a RAFS data blob, not an original layer (build with -t targz-ref or estargz-ref)`);
    }
  }
  for (const { id, refLayer: layer } of wanted) {
    if (opts.blobDir === undefined) throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to push ${opts.target}: meta blob ${id} needs --blob-dir`);
    const path = join(opts.blobDir, id);
    const st = await stat(path).catch(() => undefined);
    if (st === undefined || !st.isFile()) throw new StorageError('ERR_STORAGE_BLOB_NOT_FOUND', `failed to push ${opts.target}: blob ${id} is not in ${opts.blobDir}`);
    const hex = await sha256File(path);
    if (hex !== id) {
      throw new StorageError(
        'ERR_STORAGE_MANIFEST',
        `failed to push ${opts.target}: blob ${id} has content digest sha256:${hex}; registry images need blobs named by their sha256`,
      );
    }
    blobs.push({ id, path, size: st.size, refLayer: layer });
  }
  const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'nydus-push-'));
  const client = clientFor(ref, opts);
  try {
    if (opts.ociRef) {
      for (const b of sb.blobs) {
        if (!(await client.hasBlob(`sha256:${b.blobId}`, opts.signal))) {
          throw new StorageError(
            'ERR_STORAGE_BLOB_NOT_FOUND',
            `failed to push ${opts.target} with --oci-ref: the original layer sha256:${b.blobId} is not in ${ref.host}/${ref.repo}; push the original image there first`,
          );
        }
        log(`original layer sha256:${b.blobId}: referenced`);
      }
    }
    const layer = await packBootstrapLayer(opts.bootstrap, join(work, 'bootstrap.tar.gz'));
    const platform = opts.platform ?? { os: 'linux', architecture: ociArch() };
    const config = buildImageConfig([...blobs.map((b) => `sha256:${b.id}`), layer.diffId], platform, opts.runConfig);
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    let uploaded = 0;
    let skipped = 0;
    const upload = async (what: string, digest: string, size: number, open: () => Readable | Buffer): Promise<void> => {
      const r = await client.pushBlob(digest, size, open, opts.signal);
      if (r === 'uploaded') uploaded++;
      else skipped++;
      log(`${what} ${digest} (${size} bytes): ${r === 'uploaded' ? 'uploaded' : 'already present'}`);
    };
    for (const b of blobs) await upload('blob', `sha256:${b.id}`, b.size, () => createReadStream(b.path));
    await upload('bootstrap layer', layer.digest, layer.size, () => createReadStream(layer.path));
    await upload('config', configDigest, config.length, () => config);
    const manifest = buildManifest(
      { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: config.length },
      blobs.map((b): Descriptor => (b.refLayer === undefined ? blobLayer(b.id, b.size) : refLayer(b.id, b.size, b.refLayer))),
      bootstrapLayer(layer.digest, layer.size, sb.version),
    );
    const bytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = await client.putManifest(manifestRef(ref), MEDIA_TYPE_OCI_MANIFEST, bytes, opts.signal);
    log(`manifest ${manifestDigest}: ${formatReference(ref)}`);
    return { reference: formatReference(ref), manifestDigest, manifest, uploaded, skipped, uploadedBytes: client.stats.uploadedBytes };
  } finally {
    await client.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** A blob that is an original OCI layer: zran-indexed (targz-ref) or eStargz. */
function isRefBlob(b: BlobInfo): boolean {
  return b.metaBlobId !== undefined || isStargzBlob(b);
}
