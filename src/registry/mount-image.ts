// `nydusd --image <reference>`: what a mount by reference needs before it is an ordinary
// bootstrap mount. The bootstrap is fetched from the registry into the work dir (the
// config's blobcache `work_dir`, else DEFAULT_IMAGE_WORK_DIR) and the mount's config is
// the given one (cache, prefetch, network settings) with its backend pointed at the
// image's repository. Registries on loopback are spoken to over plain http unless the
// config names a scheme; credentials come from IMAGE_PULL_AUTH or the config's `auth`.
import { parseConfig } from '../config/parse.js';
import { fetchImageBootstrap, imageConfig } from './pull.js';
import { formatReference, isLoopbackHost, parseReference } from './reference.js';

/** Where bootstraps and cache files of images mounted by reference go without a config. */
export const DEFAULT_IMAGE_WORK_DIR = '/var/lib/nydusd/cache';

export interface ImageMountOptions {
  /** `host[:port]/repo[:tag][@digest]`. */
  reference: string;
  /** A nydusd config (v1 or v2 JSON) to take cache, prefetch and registry settings from. */
  configText?: string;
  /** Overrides the work dir. */
  workDir?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** A mount by reference resolved to a bootstrap mount. */
export interface ImageMountSource {
  /** The image as `host/repo:tag@digest`. */
  reference: string;
  bootstrap: string;
  /** The config to mount with (JSON v2); it carries the registry auth when one was given. */
  configText: string;
  /** Whether the bootstrap was downloaded now (false: it was in the work dir already). */
  downloaded: boolean;
}

/** Fetches the bootstrap of `opts.reference` and derives the mount's config. */
export async function prepareImageMount(opts: ImageMountOptions): Promise<ImageMountSource> {
  const ref = parseReference(opts.reference);
  const base = opts.configText === undefined ? undefined : parseConfig(opts.configText);
  const template = base?.backend?.type === 'registry' ? base.backend.registry : undefined;
  const workDir = opts.workDir ?? base?.cache.filecache?.work_dir ?? DEFAULT_IMAGE_WORK_DIR;
  const plainHttp = template !== undefined && template.scheme !== '' ? template.scheme === 'http' : isLoopbackHost(ref.host);
  const auth = (opts.env ?? process.env).IMAGE_PULL_AUTH?.trim() || template?.auth;
  const fetched = await fetchImageBootstrap({
    reference: opts.reference,
    workDir,
    plainHttp,
    auth,
    skipVerify: template?.skip_verify,
    retryLimit: template?.retry_limit,
    signal: opts.signal,
  });
  const config = imageConfig(ref, workDir, base, { plainHttp });
  return {
    reference: `${formatReference({ ...ref, digest: undefined })}@${fetched.manifestDigest}`,
    bootstrap: fetched.bootstrap,
    configText: JSON.stringify(config),
    downloaded: fetched.downloaded,
  };
}
