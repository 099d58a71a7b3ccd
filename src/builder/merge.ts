// `nydus-image merge`: stacks per-layer bootstraps (lowest first) into one image with
// overlay semantics (overlay.ts), over an optional parent image. The merged blob table
// holds the parent's blobs, then each layer's in order, each blob once; a layer's own
// blob may be renamed or resized with upstream's per-layer lists (--blob-digests,
// --original-blob-ids, --blob-sizes, --blob-toc-digests, --blob-toc-sizes); for a
// targz-ref layer the digest and size lists name its meta blob instead.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BuildError } from '../errors.js';
import { BlobFeatures } from '../rafs/layout/common.js';
import { parseBootstrap } from '../rafs/reader/open.js';
import { validateMetadata, type MetadataCounts } from '../rafs/validate.js';
import { writeV5Bootstrap } from './bootstrap-v5.js';
import { writeV6Bootstrap } from './bootstrap-v6.js';
import { settleBlobTable } from './build.js';
import { checkCompatible, loadImage, treeFromImage, type ImageSettings } from './from-bootstrap.js';
import type { OutBlob } from './image-spec.js';
import { applyLayer, type WhiteoutSpec } from './overlay.js';
import { outputMode, writeFileAtomic } from './output.js';
import { resolvePattern, type PrefetchPolicy } from './prefetch.js';
import { newDir, type BuildInode } from './tree.js';

/** Per-layer overrides, one list entry per source (upstream's comma-separated lists). */
export interface LayerOverrides {
  blobDigests?: string[];
  originalBlobIds?: string[];
  blobSizes?: number[];
  blobTocDigests?: string[];
  blobTocSizes?: number[];
}

export interface MergeOptions extends LayerOverrides {
  /** Layer bootstraps, lowest first. */
  sources: string[];
  bootstrap?: string;
  blobDir?: string;
  parentBootstrap?: string;
  /** Blobs of this image are not a layer's own blob. */
  chunkDict?: string;
  prefetchPolicy?: PrefetchPolicy;
  prefetchPatterns?: Buffer[][];
  /** Whiteout rules applied between layers (upstream merges with `oci`). */
  whiteoutSpec?: WhiteoutSpec;
}

export interface MergeResult {
  bootstrap: string;
  blobs: string[];
  counts: MetadataCounts;
}

function fail(m: string): BuildError {
  return new BuildError('ERR_BUILD_SOURCE', `failed to merge: ${m}`);
}

function hex32(s: string, what: string): Buffer {
  if (!/^[0-9a-f]{64}$/.test(s)) throw fail(`${what} ${JSON.stringify(s)} is not 64 lower-case hex digits`);
  return Buffer.from(s, 'hex');
}

export async function mergeImages(o: MergeOptions): Promise<MergeResult> {
  if (o.sources.length === 0) throw fail('at least one source bootstrap is required');
  if (!o.bootstrap && !o.blobDir) throw fail('both --bootstrap and --blob-dir are missing');
  for (const [name, list] of Object.entries({
    'blob digest': o.blobDigests,
    'original blob id': o.originalBlobIds,
    'blob size': o.blobSizes,
    'blob toc digest': o.blobTocDigests,
    'blob toc size': o.blobTocSizes,
  })) {
    if (list && list.length !== o.sources.length) throw fail(`${list.length} ${name} entries for ${o.sources.length} sources`);
  }
  const spec: WhiteoutSpec = o.whiteoutSpec ?? 'oci';
  const blobs: OutBlob[] = [];
  const indexById = new Map<string, number>();
  const addBlob = (b: OutBlob): number => {
    let i = indexById.get(b.blobId);
    if (i === undefined) {
      i = blobs.push(b) - 1;
      indexById.set(b.blobId, i);
    }
    return i;
  };
  const dictIds = new Set<string>();
  if (o.chunkDict) for (const b of (await loadImage(o.chunkDict, 'chunk dictionary')).blobs) dictIds.add(b.blobId);

  let settings: ImageSettings | undefined;
  let root: BuildInode = newDir();
  if (o.parentBootstrap) {
    const parent = await loadImage(o.parentBootstrap, 'parent bootstrap');
    settings = { version: parent.sb.version, chunkSize: parent.sb.chunkSize, compressor: parent.sb.compressor, digester: parent.sb.digester };
    root = treeFromImage(parent.sb, parent.blobs.map(addBlob));
  }
  let explicitUidGid = false;
  for (const [layer, path] of o.sources.entries()) {
    const img = await loadImage(path, 'bootstrap');
    settings ??= { version: img.sb.version, chunkSize: img.sb.chunkSize, compressor: img.sb.compressor, digester: img.sb.digester };
    checkCompatible(img, settings, 'bootstrap');
    explicitUidGid ||= img.sb.explicitUidGid;
    const own = img.blobs.filter((b) => !dictIds.has(b.blobId));
    const hasOverride = [o.blobDigests, o.originalBlobIds, o.blobSizes, o.blobTocDigests, o.blobTocSizes].some((l) => l !== undefined);
    if (hasOverride && own.length > 1) throw fail(`bootstrap ${path} has ${own.length} data blobs of its own; per-layer lists need one`);
    const renamed = img.blobs.map((b) => {
      if (!own.includes(b)) return b;
      const r: OutBlob = { ...b };
      if (o.originalBlobIds) r.blobId = o.originalBlobIds[layer];
      // A separate (zran) blob is the original layer: the lists name the converter's
      // blob, its meta blob, as upstream's merge reads them.
      const separate = (b.features & BlobFeatures.SEPARATE) !== 0;
      if (o.blobDigests) {
        const digest = hex32(o.blobDigests[layer], 'blob digest');
        if (separate) r.blobMetaDigest = digest;
        else r.blobId = digest.toString('hex');
      }
      if (o.blobSizes) {
        if (separate) r.blobMetaSize = o.blobSizes[layer];
        else r.compressedSize = o.blobSizes[layer];
      }
      if (o.blobTocDigests) r.blobTocDigest = hex32(o.blobTocDigests[layer], 'blob toc digest');
      if (o.blobTocSizes) r.blobTocSize = o.blobTocSizes[layer];
      return r;
    });
    root = applyLayer(root, treeFromImage(img.sb, renamed.map(addBlob)), spec);
  }
  const s = settings as ImageSettings;
  const table = settleBlobTable(root, blobs, new Set());
  const prefetch =
    o.prefetchPolicy === 'fs' ? (o.prefetchPatterns ?? []).map((p) => resolvePattern(root, p)).filter((i): i is BuildInode => i !== undefined) : [];
  const imageSpec = { root, ...s, explicitUidGid, blobs: table, prefetch };
  const bytes = s.version === 5 ? writeV5Bootstrap(imageSpec) : writeV6Bootstrap(imageSpec);
  const counts = await validateMetadata(parseBootstrap(bytes));
  const bootstrap = o.bootstrap ?? join(o.blobDir as string, createHash('sha256').update(bytes).digest('hex'));
  writeFileAtomic(bootstrap, bytes, outputMode(o.bootstrap !== undefined));
  return { bootstrap, blobs: table.map((b) => b.blobId), counts };
}
