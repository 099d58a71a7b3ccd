// Opens an image for the offline tools (check, inspect, unpack): the bootstrap, and when
// blobs are given, a storage stack without a disk cache so the tools never write beside
// the blobs. Blobs come from `--blob FILE` (one blob file for every id), `--blob-dir D`,
// a nydusd `--config` file, as upstream nydus-image accepts them, or a backend given by
// `--backend-type T --backend-config JSON|FILE` (that backend's keys alone).
import { readFile } from 'node:fs/promises';
import { backendOnlyConfig, parseConfig } from '../config/parse.js';
import type { NydusConfig } from '../config/types.js';
import { localfsDirConfig } from '../config/derive.js';
import { ConfigError } from '../errors.js';
import { openBootstrap, type AnyRafsSuper } from '../rafs/index.js';
import { createStorage, type Storage } from '../storage/factory.js';

export interface BlobSource {
  blob?: string;
  blobDir?: string;
  config?: string;
  /** A backend type and its keys: inline JSON (starting with `{`) or a file holding it. */
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
  else if (src.backend !== undefined) config = backendOnlyConfig(src.backend.type, await backendConfigText(src.backend.config));
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

/** `--backend-config`: inline JSON, or the path of a file holding it. */
export async function backendConfigText(value: string): Promise<string> {
  if (value.trimStart().startsWith('{')) return value;
  try {
    return await readFile(value, 'utf8');
  } catch (err) {
    throw new ConfigError('ERR_CLI_USAGE', `failed to read --backend-config ${value}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** Opens the bootstrap and, if a blob source is given, its storage. */
export async function openImage(bootstrap: string, src: BlobSource, digestValidate: boolean): Promise<OpenedImage> {
  const config = await toolConfig(src, digestValidate);
  const sb = await openBootstrap(bootstrap);
  const storage = config ? await createStorage(config, sb) : undefined;
  return { sb, storage, close: async () => storage?.close() };
}
