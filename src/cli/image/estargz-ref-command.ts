// `nydus-image create -t estargz-ref LAYER` and `-t estargztoc-ref TOC --blob-id ID`: the
// hook create-command.ts calls for these types. As upstream: gzip chunks, sha256 digests,
// RAFS v6; estargztoc-ref names the layer by --blob-id (and --blob-data-size) and writes
// only the bootstrap. Flags that only make sense for a rewritten blob are refused.
import { ConfigError } from '../../errors.js';
import { createEstargzRefImage } from '../../builder/estargz-ref.js';
import { buildInfo } from '../../util/build-info.js';
import type { CreateFlags } from './create-flags.js';
import { removeOutputsOnSignal, writeJson } from './shared.js';

export const ESTARGZ_REF = 'estargz-ref';
export const ESTARGZTOC_REF = 'estargztoc-ref';
/** Upstream's older name of estargztoc-ref. */
export const STARGZ_INDEX = 'stargz_index';

export type EstargzRefFlags = Pick<
  CreateFlags,
  'bootstrap' | 'blobDir' | 'blob' | 'fsVersion' | 'repeatable' | 'parentBootstrap' | 'chunkDict' | 'prefetchPolicy' | 'features' | 'outputJson' | 'blobInlineMeta' | 'inlineBootstrap' | 'blobId' | 'encrypt' | 'blobDataSize'
>;

export async function createEstargzRef(type: string, source: string, flags: EstargzRefFlags, chunkSize: number | undefined, blobDataSize: number | undefined): Promise<void> {
  const tocOnly = type !== ESTARGZ_REF;
  const shown = tocOnly ? ESTARGZTOC_REF : ESTARGZ_REF;
  const refuse = (what: string): ConfigError => new ConfigError('ERR_CLI_USAGE', `${what} is not supported with --type ${shown}`);
  if (flags.fsVersion !== '6') throw refuse(`--fs-version ${flags.fsVersion}`);
  if (flags.parentBootstrap !== undefined) throw refuse('--parent-bootstrap');
  if (flags.chunkDict !== undefined) throw refuse('--chunk-dict');
  if (flags.prefetchPolicy !== 'none') throw refuse('--prefetch-policy');
  if (flags.features !== undefined) throw refuse(`--features ${flags.features}`);
  if (flags.blobInlineMeta || flags.inlineBootstrap) throw refuse('--blob-inline-meta');
  if (flags.encrypt) throw refuse('--encrypt');
  if (flags.blob !== undefined) throw refuse('--blob (the data blob is the layer itself)');
  if (tocOnly) {
    if (flags.blobId === undefined) throw new ConfigError('ERR_CLI_USAGE', `--blob-id (the layer's sha256) is required with --type ${shown}`);
    if (flags.blobDir !== undefined) throw refuse('--blob-dir (only the bootstrap is written)');
  } else {
    if (flags.blobId !== undefined) throw refuse('--blob-id (the layer\'s digest is its id)');
    if (blobDataSize !== undefined) throw refuse('--blob-data-size');
  }
  const blobId = flags.blobId?.replace(/^sha256:/, '');
  if (blobId !== undefined && !/^[0-9a-f]{64}$/.test(blobId)) throw new ConfigError('ERR_CLI_USAGE', `invalid --blob-id ${JSON.stringify(flags.blobId)}: a sha256 digest expected`);
  removeOutputsOnSignal();
  const r = await createEstargzRefImage({
    source,
    tocOnly,
    blobId,
    blobSize: blobDataSize,
    bootstrap: flags.bootstrap,
    blobDir: flags.blobDir,
    chunkSize,
    repeatable: flags.repeatable,
    warn: (m) => void process.stderr.write(`nydus-image: warning: ${m}\n`),
  });
  process.stdout.write(
    `meta blob path: ${r.bootstrap}\n` +
      `data blob: ${r.blobId} (the eStargz layer${r.compressedSize > 0 ? `, 0x${r.compressedSize.toString(16)} bytes` : ''})\n` +
      `data blobs: ${JSON.stringify([r.blobId])}\n` +
      `chunks: ${r.chunkCount}, chunk size: 0x${r.chunkSize.toString(16)}\n`,
  );
  if (flags.outputJson) {
    const b = buildInfo();
    await writeJson(flags.outputJson, {
      version: `${b.package_ver}-${b.git_commit}`,
      bootstrap: r.bootstrap,
      blobs: [r.blobId],
      blob_size: r.compressedSize,
      chunks: r.chunkCount,
      chunk_size: r.chunkSize,
    });
  }
}
