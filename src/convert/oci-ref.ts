// `nydus-image convert --oci-ref`: an OCI image in a registry becomes a lazily served
// Nydus image without a rewritten layer, as `nydusify convert --oci-ref` makes it. The
// source manifest (the platform's, from an index) is read and every layer classified
// before anything large is fetched; then, per layer in order, an eStargz layer gives its
// TOC through two ranged GETs (remote-toc.ts) and a gzip layer is downloaded (digest
// verified) and indexed (targz-ref, zran); the per-layer bootstraps are merged with
// overlay whiteouts and the artifact is published with `push --oci-ref`, beside the
// original layers, which the target repository must hold. Everything is built in the
// caller's scratch directory, removed at the end whatever the outcome; the manifest is
// the last thing written, so an interrupted run publishes nothing a later one trips on.
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError, NydusError, StorageError, type ErrorCode } from '../errors.js';
import { tocChunkSize, createEstargzRefFromToc } from '../builder/estargz-ref.js';
import { FOOTER_SIZE, type EstargzLayerToc } from '../builder/estargz-toc.js';
import { mergeImages } from '../builder/merge.js';
import { createTargzRefImage } from '../builder/targz-ref.js';
import { RAFS_DEFAULT_CHUNK_SIZE } from '../rafs/layout/common.js';
import { clientFor, type DistributionClient, type RegistryAccess } from '../registry/distribution.js';
import type { Descriptor } from '../registry/nydus-manifest.js';
import { readOciImage } from '../registry/oci-image.js';
import { pushImage, type PushResult } from '../registry/push.js';
import { formatReference, parseReference, type ImageReference } from '../registry/reference.js';
import { describeLayer, type DescribedKind } from './layer-kind.js';
import { readFooter, readRemoteToc } from './remote-toc.js';

export interface ConvertOptions extends RegistryAccess {
  /** The OCI image, `host[:port]/repo[:tag][@digest]`. */
  source: string;
  /** The Nydus image to publish, a tag; normally in the source's repository. */
  target: string;
  /** Accept any TLS certificate of the source's / target's registry (as `skipVerify` does for both). */
  sourceSkipVerify?: boolean;
  targetSkipVerify?: boolean;
  /** Platform picked from an index (default linux on this machine's architecture). */
  platform?: { os: string; architecture: string };
  /** An empty scratch directory the conversion fills; removed when it ends, whatever the outcome. */
  workDir: string;
  /** Told once per layer, in order, when its bootstrap is built. */
  onLayer?(layer: ConvertedLayer): void;
  /** Progress lines of the push, and builder warnings. */
  onProgress?(line: string): void;
  signal?: AbortSignal;
}

export interface ConvertedLayer {
  /** 1-based position and the layer count. */
  index: number;
  count: number;
  digest: string;
  mediaType: string;
  kind: 'targz-ref' | 'estargz';
  /** The layer's size. */
  size: number;
  /** Bytes of it read from the registry: its last bytes (the eStargz footer, or none), then the whole layer (targz-ref) or the TOC (eStargz). */
  fetched: number;
  /** Its own bootstrap, and its meta blob (targz-ref; 0 for eStargz). */
  bootstrapSize: number;
  metaBlobSize: number;
}

export interface ConvertResult {
  source: string;
  sourceManifestDigest: string;
  layers: ConvertedLayer[];
  push: PushResult;
  /** What the target adds to the repository: its meta blobs and bootstrap layer. */
  artifactSize: number;
}

/** A layer's plan, from its descriptor and (for gzip media types) its last bytes. */
type Planned = { d: Descriptor; where: string; fetched: number } & ({ kind: 'targz-ref' } | { kind: 'estargz'; toc: EstargzLayerToc });

const sameRepo = (a: ImageReference, b: ImageReference): boolean => a.host === b.host && a.repo === b.repo;

/** `err` with `where` in front of its message (same class and code), unless it names it already. */
function naming(err: unknown, where: string): unknown {
  if (!(err instanceof NydusError) || err.message.includes(where)) return err;
  const Same = err.constructor as new (code: ErrorCode, message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) => NydusError;
  return new Same(err.code, `failed to convert ${where}: ${err.message}`, { cause: err, detail: err.detail as Record<string, unknown> | undefined });
}

/**
 * The chunk size of the image: eStargz layers whose files span several chunks fix it
 * (they must agree); others only bound it from below; gzip layers take any, by default
 * RAFS's 1 MiB.
 */
function imageChunkSize(plans: readonly Planned[]): number {
  let fixed: { size: number; where: string } | undefined;
  let least = 0;
  let leastWhere = '';
  for (const p of plans) {
    if (p.kind !== 'estargz') continue;
    let c: { chunkSize: number; fixed: boolean };
    try {
      c = tocChunkSize(p.toc.entries);
    } catch (err) {
      throw naming(err, p.where);
    }
    if (!c.fixed) {
      if (c.chunkSize > least) [least, leastWhere] = [c.chunkSize, p.where];
    } else if (fixed === undefined) fixed = { size: c.chunkSize, where: p.where };
    else if (fixed.size !== c.chunkSize) {
      throw new BuildError('ERR_BUILD_SOURCE', `failed to convert: ${p.where} is chunked by 0x${c.chunkSize.toString(16)} bytes and ${fixed.where} by 0x${fixed.size.toString(16)}; one image has one chunk size`);
    }
  }
  if (fixed === undefined) return Math.max(RAFS_DEFAULT_CHUNK_SIZE, least);
  if (least > fixed.size) throw new BuildError('ERR_BUILD_SOURCE', `failed to convert: ${leastWhere} has a 0x${least.toString(16)}-byte chunk, larger than the 0x${fixed.size.toString(16)} bytes ${fixed.where} is chunked by`);
  return fixed.size;
}

type Described = { d: Descriptor; where: string; kind: DescribedKind };

/** Every layer as its descriptor tells; throws for the first one that cannot be served in place. */
function describeLayers(layers: readonly Descriptor[]): Described[] {
  return layers.map((d, i) => ({ d, where: `layer ${i + 1}/${layers.length} ${d.digest}`, kind: describeLayer(d, i + 1, layers.length) }));
}

/** Reads each layer's end: eStargz ones (annotated, or ending in an eStargz footer) come with their TOC. */
async function planLayers(client: DistributionClient, described: readonly Described[], signal?: AbortSignal): Promise<Planned[]> {
  const plans: Planned[] = [];
  for (const { d, where, kind } of described) {
    try {
      const footer = await readFooter(client, d, signal);
      const tail = Math.min(d.size, FOOTER_SIZE);
      if (footer === undefined) {
        if (kind.kind === 'estargz') throw new BuildError('ERR_BUILD_SOURCE', `failed to convert ${where}: it is annotated as eStargz but ends in no eStargz footer`);
        plans.push({ d, where, kind: 'targz-ref', fetched: tail });
        continue;
      }
      const { toc, fetched } = await readRemoteToc(client, d, footer, kind.kind === 'estargz' ? kind.tocDigest : undefined, where, signal);
      plans.push({ d, where, kind: 'estargz', toc, fetched: tail + fetched });
    } catch (err) {
      throw naming(err, where);
    }
  }
  return plans;
}

/** Converts `opts.source` into `opts.target` (see the module comment). */
export async function convertToOciRef(opts: ConvertOptions): Promise<ConvertResult> {
  const src = parseReference(opts.source);
  const dst = parseReference(opts.target);
  const failed = `failed to convert ${formatReference(src)} to ${formatReference(dst)}`;
  if (dst.digest !== undefined) throw new StorageError('ERR_STORAGE_MANIFEST', `${failed}: the target must be a tag, not a digest`);
  if (sameRepo(src, dst) && src.digest === undefined && (src.tag ?? 'latest') === dst.tag) {
    throw new StorageError('ERR_STORAGE_MANIFEST', `${failed}: the target must be another tag (the source's manifest is what keeps its layers in the repository)`);
  }
  const targetSkipVerify = opts.targetSkipVerify || opts.skipVerify;
  const client = clientFor(src, { ...opts, skipVerify: opts.sourceSkipVerify || opts.skipVerify });
  const target = sameRepo(src, dst) ? client : clientFor(dst, { ...opts, skipVerify: targetSkipVerify });
  try {
    const image = await readOciImage(client, src, opts.platform, opts.signal);
    const described = describeLayers(image.layers);
    if (target !== client) {
      // The target's bootstrap names the original layers by digest; nydusd reads them from the target repository.
      for (const p of described) {
        if (!(await target.hasBlob(p.d.digest, opts.signal))) {
          throw new StorageError(
            'ERR_STORAGE_BLOB_NOT_FOUND',
            `${failed} with --oci-ref: ${p.where} is not in ${dst.host}/${dst.repo}, and the target's bootstrap reads the original layers from the target repository; ` +
              `convert to a tag of ${src.host}/${src.repo}, or copy the image to ${dst.host}/${dst.repo} first`,
          );
        }
      }
    }
    const plans = await planLayers(client, described, opts.signal);
    const chunkSize = imageChunkSize(plans);
    const blobDir = join(opts.workDir, 'blobs');
    await mkdir(blobDir);
    const warn = (m: string): void => opts.onProgress?.(`warning: ${m}`);
    const layers: ConvertedLayer[] = [];
    const bootstraps: string[] = [];
    for (const [i, p] of plans.entries()) {
      const bootstrap = join(opts.workDir, `layer-${i + 1}.boot`);
      const done = await (p.kind === 'estargz'
        ? createEstargzRefFromToc({ toc: p.toc, blobId: p.d.digest.slice('sha256:'.length), bootstrap, chunkSize, warn }).then(() => ({ fetched: 0, metaBlobSize: 0 }))
        : indexGzipLayer(client, p.d, bootstrap, blobDir, opts.workDir, chunkSize, warn, opts.signal)
      ).catch((err: unknown) => {
        throw naming(err, p.where);
      });
      const layer: ConvertedLayer = {
        index: i + 1,
        count: plans.length,
        digest: p.d.digest,
        mediaType: p.d.mediaType,
        kind: p.kind,
        size: p.d.size,
        fetched: p.fetched + done.fetched,
        bootstrapSize: (await stat(bootstrap)).size,
        metaBlobSize: done.metaBlobSize,
      };
      layers.push(layer);
      bootstraps.push(bootstrap);
      opts.onLayer?.(layer);
    }
    const merged = join(opts.workDir, 'image.boot');
    await mergeImages({ sources: bootstraps, bootstrap: merged });
    const push = await pushImage({
      bootstrap: merged,
      blobDir,
      target: opts.target,
      ociRef: true,
      platform: image.platform,
      runConfig: image.runConfig,
      plainHttp: opts.plainHttp,
      auth: opts.auth,
      skipVerify: targetSkipVerify,
      retryLimit: opts.retryLimit,
      workDir: opts.workDir,
      onProgress: opts.onProgress,
      signal: opts.signal,
    });
    const artifactSize = push.manifest.layers.reduce((n, l) => n + l.size, 0);
    return { source: formatReference(src), sourceManifestDigest: image.manifestDigest, layers, push, artifactSize };
  } finally {
    await client.close();
    if (target !== client) await target.close();
    await rm(opts.workDir, { recursive: true, force: true });
  }
}

/** Downloads gzip layer `d` into `workDir` and indexes it (targz-ref); its meta blob goes to `blobDir` under its digest. */
async function indexGzipLayer(
  client: DistributionClient,
  d: Descriptor,
  bootstrap: string,
  blobDir: string,
  workDir: string,
  chunkSize: number,
  warn: (m: string) => void,
  signal?: AbortSignal,
): Promise<{ fetched: number; metaBlobSize: number }> {
  const layer = join(workDir, 'layer.tar.gz');
  const meta = join(workDir, 'layer.meta');
  try {
    const fetched = await client.downloadBlob(d.digest, layer, d.size, signal);
    const r = await createTargzRefImage({ source: layer, bootstrap, blob: meta, chunkSize, warn });
    await rename(meta, join(blobDir, r.metaId));
    return { fetched, metaBlobSize: (await stat(join(blobDir, r.metaId))).size };
  } finally {
    await rm(layer, { force: true });
    await rm(meta, { force: true });
  }
}
