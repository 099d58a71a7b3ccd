// An OCI (or Docker) image as `convert` reads it from a registry: the manifest of a
// reference (the platform's OCI manifest when the reference names an index; Nydus
// manifests in it are passed over), its layers in order, and from its config the
// platform and the run config (Env, Entrypoint, Cmd, ...) the converted image keeps.
import { StorageError } from '../errors.js';
import type { DistributionClient } from './distribution.js';
import { isIndex, manifestParts, ociArch, pickFromIndex, type Descriptor } from './nydus-manifest.js';
import { formatReference, manifestRef, type ImageReference } from './reference.js';

/** An image config is metadata: more than this is refused. */
const CONFIG_LIMIT = 4 * 1024 * 1024;

export interface OciImage {
  /** Digest of the image manifest (not of the index that named it). */
  manifestDigest: string;
  layers: Descriptor[];
  platform: { os: string; architecture: string };
  /** The config's `config` object ({} when it has none). */
  runConfig: Record<string, unknown>;
}

/** Reads image `ref` (for `platform`, default linux on this machine's architecture) through `client`. */
export async function readOciImage(client: DistributionClient, ref: ImageReference, platform?: { os: string; architecture: string }, signal?: AbortSignal): Promise<OciImage> {
  const want = platform ?? { os: 'linux', architecture: ociArch() };
  let fetched = await client.getManifest(manifestRef(ref), signal);
  if (isIndex(fetched.json, fetched.mediaType)) fetched = await client.getManifest(pickFromIndex(fetched.json, want, { nydus: false }).digest, signal);
  const { config, layers } = manifestParts(fetched.json);
  const bad = (why: string): StorageError => new StorageError('ERR_STORAGE_MANIFEST', `failed to read image ${formatReference(ref)}: ${why}`);
  if (layers.length === 0) throw bad('its manifest lists no layers');
  if (config.size > CONFIG_LIMIT) throw bad(`its config of ${config.size} bytes is too large`);
  let json: unknown;
  try {
    json = JSON.parse((await client.fetchBlob(config.digest, CONFIG_LIMIT, signal)).toString('utf8'));
  } catch (err) {
    if (err instanceof StorageError) throw err;
    throw bad(`its config ${config.digest} is not JSON`);
  }
  const c = json as { os?: unknown; architecture?: unknown; config?: unknown } | null;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw bad(`its config ${config.digest} is not a JSON object`);
  return {
    manifestDigest: fetched.digest,
    layers,
    platform: {
      os: typeof c.os === 'string' ? c.os : want.os,
      architecture: typeof c.architecture === 'string' ? c.architecture : want.architecture,
    },
    runConfig: typeof c.config === 'object' && c.config !== null && !Array.isArray(c.config) ? (c.config as Record<string, unknown>) : {},
  };
}
