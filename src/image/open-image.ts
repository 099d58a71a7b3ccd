// Opens an image for the offline tools (check, inspect, unpack): the bootstrap, and when
// blobs are given, a storage stack without a disk cache so the tools never write beside
// the blobs. Blobs come from `--blob FILE` (one blob file for every id), `--blob-dir D`,
// or a nydusd `--config` file, as upstream nydus-image accepts them.
import { readFile } from 'node:fs/promises';
import { parseConfig } from '../config/parse.js';
import type { NydusConfig } from '../config/types.js';
import { localfsDirConfig } from '../config/derive.js';
import { ConfigError } from '../errors.js';
import { openBootstrap, type AnyRafsSuper } from '../rafs/index.js';
import { createStorage, type Storage } from '../storage/factory.js';

export interface BlobSource {
  blob?: string;
  blobDir?: string;
  config?: string;
  /**
   * Older nydus-image's `--backend-type T --backend-config JSON`: the backend's own
   * config as a JSON string (`{"dir": ...}` or `{"blob_file": ...}` for localfs).
   */
  backend?: { type: string; config: string };
}

export interface OpenedImage {
  sb: AnyRafsSuper;
  /** Present when a blob source was given. */
  storage?: Storage;
  close(): Promise<void>;
}

/** The storage config the tools read blobs with, or undefined when no source is given. */
export async function toolConfig(src: BlobSource, digestValidate: boolean): Promise<NydusConfig | undefined> {
  const given = [src.blob, src.blobDir, src.config, src.backend].filter((x) => x !== undefined).length;
  if (given > 1) throw new ConfigError('ERR_CLI_USAGE', 'give only one of --blob, --blob-dir, --config and --backend-type');
  let config: NydusConfig;
  const warn = (m: string): void => void process.stderr.write(`nydus-image: warning: ${m}\n`);
  if (src.config !== undefined) config = parseConfig(await readFile(src.config), warn);
  else if (src.backend !== undefined) config = parseConfig(backendOnlyConfig(src.backend.type, src.backend.config), warn);
  else if (src.blobDir !== undefined) config = localfsDirConfig(src.blobDir);
  else if (src.blob !== undefined) {
    config = localfsDirConfig('');
    config.backend = { type: 'localfs', localfs: { blob_file: src.blob, dir: '', alt_dirs: [] } };
  } else return undefined;
  config.cache = { ...config.cache, type: '' };
  config.rafs = { ...config.rafs, validate: digestValidate };
  config.cache.validate = digestValidate;
  return config;
}

/** Opens the bootstrap and, if a blob source is given, its storage. */
export async function openImage(bootstrap: string, src: BlobSource, digestValidate: boolean): Promise<OpenedImage> {
  const config = await toolConfig(src, digestValidate);
  const sb = await openBootstrap(bootstrap);
  const storage = config ? await createStorage(config, sb) : undefined;
  return { sb, storage, close: async () => storage?.close() };
}

/** A v2 config holding only the backend given as `--backend-type` and its JSON config. */
function backendOnlyConfig(type: string, json: string): string {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new ConfigError('ERR_CLI_USAGE', `invalid --backend-config JSON: ${(err as Error).message}`, { cause: err });
  }
  return JSON.stringify({ version: 2, backend: { type, [type]: value } });
}
