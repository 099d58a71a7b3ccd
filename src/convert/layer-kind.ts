// Which layers `convert --oci-ref` can serve in place, by media type and annotations:
// gzip tar layers (OCI or Docker), eStargz ones among them marked by their TOC digest
// annotation (others are recognised later by their footer). Everything else is refused
// by name before anything is fetched: zstd and zstd:chunked (no gzip members to index),
// uncompressed tar (nothing to index; a plain `create` converts it), non-distributable
// layers (not in the registry), and Nydus layers (already lazily loadable).
import { BuildError } from '../errors.js';
import { ANNOTATION_NYDUS_BLOB, ANNOTATION_NYDUS_BOOTSTRAP, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_NYDUS_BLOB, type Descriptor } from '../registry/nydus-manifest.js';

/** The annotation eStargz producers put on a layer: sha256 of its TOC JSON. */
export const ANNOTATION_TOC_DIGEST = 'containerd.io/snapshot/stargz/toc.digest';
/** zstd:chunked layers carry this (their media type is plain tar+zstd). */
const ANNOTATION_ZSTD_CHUNKED = 'io.github.containers.zstd-chunked.manifest-checksum';

const GZIP = new Set([MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_DOCKER_LAYER_GZIP]);

/** What a layer is, as far as its descriptor tells. */
export type DescribedKind = { kind: 'estargz'; tocDigest: string } | { kind: 'gzip' };

/** Human name of a refused layer's format. */
function refusedFormat(d: Descriptor): string {
  const a = d.annotations ?? {};
  if (d.mediaType === MEDIA_TYPE_NYDUS_BLOB || a[ANNOTATION_NYDUS_BLOB] === 'true' || a[ANNOTATION_NYDUS_BOOTSTRAP] === 'true') return 'a Nydus layer (the image is already lazily loadable)';
  if (a[ANNOTATION_ZSTD_CHUNKED] !== undefined) return 'zstd:chunked';
  if (d.mediaType.endsWith('+zstd')) return 'zstd';
  if (/nondistributable|foreign/.test(d.mediaType)) return 'a non-distributable layer (not in the registry)';
  if (d.mediaType.endsWith('.tar')) return 'an uncompressed tar';
  return 'not a gzip tar layer';
}

/** Classifies layer `n` (1-based, of `count`); throws a BuildError naming it and its media type when it cannot be served in place. */
export function describeLayer(d: Descriptor, n: number, count: number): DescribedKind {
  const a = d.annotations ?? {};
  if (!GZIP.has(d.mediaType) || a[ANNOTATION_NYDUS_BOOTSTRAP] === 'true') {
    throw new BuildError(
      'ERR_BUILD_SOURCE',
      `failed to convert layer ${n}/${count} ${d.digest}: media type ${d.mediaType} is ${refusedFormat(d)}; --oci-ref serves gzip and eStargz layers only`,
    );
  }
  const toc = a[ANNOTATION_TOC_DIGEST];
  if (toc === undefined) return { kind: 'gzip' };
  if (!/^sha256:[0-9a-f]{64}$/.test(toc)) throw new BuildError('ERR_BUILD_SOURCE', `failed to convert layer ${n}/${count} ${d.digest}: its ${ANNOTATION_TOC_DIGEST} annotation ${JSON.stringify(toc)} is not a sha256 digest`);
  return { kind: 'estargz', tocDigest: toc };
}
