// `nydus-image create -t targz-ref SOURCE.tar.gz`: the hook create-command.ts calls for
// this type. Upstream's ref conversions force gzip chunks and sha256 digests; flags that
// only make sense for a rewritten blob are refused rather than ignored. The converter's
// packRef runs `--blob-inline-meta --features blob-toc --blob FIFO FIFO`.
import { ConfigError } from '../../errors.js';
import { createTargzRefImage } from '../../builder/targz-ref.js';
import { buildInfo } from '../../util/build-info.js';
import type { CreateFlags } from './create-flags.js';
import { removeOutputsOnSignal, writeJson } from './shared.js';

export const TARGZ_REF = 'targz-ref';

/** The create flags this type reads. */
export type TargzRefFlags = Pick<
  CreateFlags,
  'bootstrap' | 'blobDir' | 'blob' | 'fsVersion' | 'repeatable' | 'parentBootstrap' | 'chunkDict' | 'prefetchPolicy' | 'features' | 'outputJson' | 'blobInlineMeta' | 'inlineBootstrap' | 'blobId' | 'encrypt'
>;

export async function createTargzRef(source: string, flags: TargzRefFlags, chunkSize: number | undefined): Promise<void> {
  const refuse = (what: string): ConfigError => new ConfigError('ERR_CLI_USAGE', `${what} is not supported with --type targz-ref`);
  if (flags.fsVersion !== '6') throw refuse(`--fs-version ${flags.fsVersion}`);
  if (flags.parentBootstrap !== undefined) throw refuse('--parent-bootstrap');
  if (flags.chunkDict !== undefined) throw refuse('--chunk-dict');
  if (flags.prefetchPolicy !== 'none') throw refuse('--prefetch-policy');
  if (flags.blobId !== undefined) throw refuse('--blob-id');
  if (flags.encrypt) throw refuse('--encrypt');
  removeOutputsOnSignal();
  const r = await createTargzRefImage({
    source,
    bootstrap: flags.bootstrap,
    blobDir: flags.blobDir,
    blob: flags.blob,
    chunkSize,
    repeatable: flags.repeatable,
    inlineMeta: flags.blobInlineMeta === true || flags.inlineBootstrap === true,
    blobToc: flags.features === 'blob-toc',
    warn: (m) => void process.stderr.write(`nydus-image: warning: ${m}\n`),
  });
  process.stdout.write(
    `meta blob path: ${r.bootstrap}\n` +
      `data blob: ${r.blobId} (the source, 0x${r.compressedSize.toString(16)} bytes)\n` +
      `blob meta: ${r.metaPath}\n` +
      `chunks: ${r.chunkCount}, zran contexts: ${r.contextCount}\n`,
  );
  if (flags.outputJson) {
    const b = buildInfo();
    await writeJson(flags.outputJson, {
      version: `${b.package_ver}-${b.git_commit}`,
      // Upstream's value for an inlined bootstrap: no bootstrap file.
      bootstrap: r.bootstrap === r.metaPath ? '' : r.bootstrap,
      blobs: [r.blobId],
      blob_size: r.compressedSize,
      blob_meta: r.metaId,
      blob_meta_path: r.metaPath,
      chunks: r.chunkCount,
      zran_contexts: r.contextCount,
    });
  }
}
