// The OCI shape of a Nydus image, as nydus-snapshotter's converter (pkg/converter) and
// nydusify publish it: one layer per data blob (media type
// `application/vnd.oci.image.layer.nydus.blob.v1`, digest `sha256:<blob id>`, annotation
// `containerd.io/snapshot/nydus-blob: "true"`), then the bootstrap as a gzip'd tar
// holding `image/image.boot` (`application/vnd.oci.image.layer.v1.tar+gzip`, annotated
// `containerd.io/snapshot/nydus-bootstrap: "true"` and `...nydus-fs-version`). The image
// config's diff_ids are the blob digests and the bootstrap tar's uncompressed digest.
// Finding the bootstrap follows the snapshotter: the annotated layer, else the last
// tar+gzip layer. Pure: building and reading JSON only.
import { StorageError } from '../errors.js';

export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_NYDUS_BLOB = 'application/vnd.oci.image.layer.nydus.blob.v1';
export const MEDIA_TYPE_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const ANNOTATION_NYDUS_BLOB = 'containerd.io/snapshot/nydus-blob';
export const ANNOTATION_NYDUS_BOOTSTRAP = 'containerd.io/snapshot/nydus-bootstrap';
export const ANNOTATION_FS_VERSION = 'containerd.io/snapshot/nydus-fs-version';
/** On an `--oci-ref` meta blob layer: the original layer it indexes (`sha256:...`). */
export const ANNOTATION_NYDUS_REF = 'containerd.io/snapshot/nydus-ref';
/** The bootstrap's path inside its layer tar. */
export const BOOTSTRAP_IN_LAYER = 'image/image.boot';
/** OS feature a Nydus manifest carries in an image index. */
export const OS_FEATURE_NYDUS = 'nydus.remoteimage.v1';

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; 'os.features'?: string[] };
}

/** An OCI image manifest. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** OCI architecture name of a Node `process.arch`. */
export function ociArch(arch: string = process.arch): string {
  return ({ x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

/**
 * The image config JSON of a Nydus image whose layers have these diff ids; `runConfig`
 * is the `config` object (Env, Entrypoint, Cmd, ...) of the image it was converted from.
 */
export function buildImageConfig(diffIds: readonly string[], platform: { os: string; architecture: string }, runConfig: Record<string, unknown> = {}): Buffer {
  const history = diffIds.map((_, i) => ({
    created_by: 'nydus-image push',
    comment: i === diffIds.length - 1 ? 'Nydus Bootstrap Layer' : 'Nydus Blob Layer',
  }));
  return Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      config: runConfig,
      rootfs: { type: 'layers', diff_ids: diffIds },
      history,
    }),
  );
}

/** A data blob layer descriptor. */
export function blobLayer(blobId: string, size: number): Descriptor {
  return { mediaType: MEDIA_TYPE_NYDUS_BLOB, digest: `sha256:${blobId}`, size, annotations: { [ANNOTATION_NYDUS_BLOB]: 'true' } };
}

/** The meta blob layer of an `--oci-ref` image: a nydus blob naming the original layer it indexes. */
export function refLayer(metaBlobId: string, size: number, layerId: string): Descriptor {
  const d = blobLayer(metaBlobId, size);
  d.annotations = { ...d.annotations, [ANNOTATION_NYDUS_REF]: `sha256:${layerId}` };
  return d;
}

/** The bootstrap layer descriptor. */
export function bootstrapLayer(digest: string, size: number, fsVersion: 5 | 6): Descriptor {
  return {
    mediaType: MEDIA_TYPE_LAYER_GZIP,
    digest,
    size,
    annotations: { [ANNOTATION_NYDUS_BOOTSTRAP]: 'true', [ANNOTATION_FS_VERSION]: String(fsVersion) },
  };
}

/** The manifest: blobs first, bootstrap last. */
export function buildManifest(config: Descriptor, blobs: readonly Descriptor[], bootstrap: Descriptor): ImageManifest {
  return { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config, layers: [...blobs, bootstrap] };
}

function bad(why: string): StorageError {
  return new StorageError('ERR_STORAGE_MANIFEST', `failed to read image manifest: ${why}`);
}

function asDescriptor(v: unknown, where: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || typeof d.mediaType !== 'string' || typeof d.size !== 'number') {
    throw bad(`${where} is not a descriptor`);
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(d.digest)) throw bad(`${where} has an unsupported digest ${JSON.stringify(d.digest)}`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw bad(`${where} has an invalid size`);
  return d as Descriptor;
}

/** Whether a fetched document is an index (manifest list) rather than a manifest. */
export function isIndex(json: Record<string, unknown>, mediaType: string): boolean {
  return mediaType === MEDIA_TYPE_OCI_INDEX || mediaType === MEDIA_TYPE_DOCKER_LIST || Array.isArray(json.manifests);
}

/**
 * The manifest of an index to use: the Nydus one for this platform, else this platform's,
 * else the only one. With `nydus: false` (converting an OCI image) Nydus manifests are
 * passed over: the platform's OCI manifest is wanted.
 */
export function pickFromIndex(json: Record<string, unknown>, platform = { os: 'linux', architecture: ociArch() }, opts: { nydus?: boolean } = {}): Descriptor {
  const isNydus = (m: Descriptor): boolean => m.platform?.['os.features']?.includes(OS_FEATURE_NYDUS) === true;
  let list = Array.isArray(json.manifests) ? json.manifests.map((m, i) => asDescriptor(m, `manifests[${i}]`)) : [];
  if (opts.nydus === false) list = list.filter((m) => !isNydus(m));
  if (list.length === 0) throw bad(opts.nydus === false ? 'the index lists no OCI manifests' : 'the index lists no manifests');
  const here = list.filter((m) => m.platform === undefined || (m.platform.os === platform.os && m.platform.architecture === platform.architecture));
  const nydus = here.find(isNydus);
  const pick = nydus ?? (here.length === 1 ? here[0] : list.length === 1 ? list[0] : undefined);
  if (pick === undefined) throw bad(`no manifest for ${platform.os}/${platform.architecture} in the index`);
  return pick;
}

/** The config and layers of an image manifest, checked to be descriptors. */
export function manifestParts(json: Record<string, unknown>): { config: Descriptor; layers: Descriptor[] } {
  const config = asDescriptor(json.config, 'config');
  if (!Array.isArray(json.layers)) throw bad('no layers');
  return { config, layers: json.layers.map((l, i) => asDescriptor(l, `layers[${i}]`)) };
}

/** The bootstrap layer of a Nydus manifest (see the module comment); throws when there is none. */
export function findBootstrapLayer(json: Record<string, unknown>): Descriptor {
  const layers = Array.isArray(json.layers) ? json.layers.map((l, i) => asDescriptor(l, `layers[${i}]`)) : undefined;
  if (layers === undefined || layers.length === 0) throw bad('no layers');
  const annotated = layers.find((l) => l.annotations?.[ANNOTATION_NYDUS_BOOTSTRAP] === 'true');
  if (annotated !== undefined) return annotated;
  const isNydus = layers.some((l) => l.mediaType === MEDIA_TYPE_NYDUS_BLOB);
  const last = layers[layers.length - 1];
  if (isNydus && (last.mediaType === MEDIA_TYPE_LAYER_GZIP || last.mediaType === MEDIA_TYPE_DOCKER_LAYER_GZIP)) return last;
  throw bad(`not a Nydus image: no layer is annotated ${ANNOTATION_NYDUS_BOOTSTRAP}`);
}
