// `nydus-image create SOURCE`: a directory or a tar/tar.gz layer becomes a RAFS image,
// with upstream's flags. Prefetch patterns come from stdin when a policy is set.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Option, type Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { createImage, SOURCE_TYPES, type BuildResult, type SourceType } from '../../builder/build.js';
import { WHITEOUT_SPECS, type WhiteoutSpec } from '../../builder/overlay.js';
import { parsePrefetchPatterns, PREFETCH_POLICIES, type PrefetchPolicy } from '../../builder/prefetch.js';
import { createProgress } from '../../builder/progress.js';
import { buildInfo } from '../../util/build-info.js';
import type { Compressor, Digester } from '../../storage/types.js';
import type { CreateFlags } from './create-flags.js';
import { removeOutputsOnSignal, writeJson } from './shared.js';
import { createTargzRef, TARGZ_REF } from './targz-ref-command.js';
import { createEstargzRef, ESTARGZ_REF, ESTARGZTOC_REF, STARGZ_INDEX } from './estargz-ref-command.js';

const usage = (m: string): ConfigError => new ConfigError('ERR_CLI_USAGE', m);

/** Upstream's other conversion types: listed so that they get a clear refusal. */
const UNSUPPORTED_TYPES = ['tar-tarfs', 'estargz-rafs'] as const;
/** Types with a builder of their own. */
const REF_TYPES = [TARGZ_REF, ESTARGZ_REF, ESTARGZTOC_REF, STARGZ_INDEX] as const;

/** `--chunk-size`: `0x`-prefixed hex or decimal, as upstream parses it. */
export function parseSizeArg(v: string, what: string): number {
  const n = /^0[xX][0-9a-fA-F]+$/.test(v) ? parseInt(v.slice(2), 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw usage(`invalid ${what} ${JSON.stringify(v)}`);
  return n;
}

/** `--chunk-dict bootstrap=PATH` or `--chunk-dict PATH` (upstream `parse_chunk_dict_arg`). */
export function parseChunkDictArg(v: string): string {
  const eq = v.indexOf('=');
  if (eq < 0) return v;
  if (v.slice(0, eq) !== 'bootstrap') throw usage(`invalid chunk dict type ${v.slice(0, eq)}`);
  return v.slice(eq + 1);
}

export function registerCreate(program: Command): void {
  program
    .command('create')
    .description('Create RAFS filesystems from directories or tar files')
    .argument('<SOURCE>', 'source from which to build the RAFS filesystem')
    .addOption(new Option('-t, --type <type>', 'conversion type').choices([...SOURCE_TYPES, 'directory', ...REF_TYPES, ...UNSUPPORTED_TYPES]).default('dir-rafs'))
    .addOption(new Option('--source-type <type>', 'alias of --type').choices([...SOURCE_TYPES, 'directory', ...REF_TYPES, ...UNSUPPORTED_TYPES]).hideHelp())
    .option('-B, --bootstrap <path>', 'file path to save the generated RAFS metadata blob')
    .option('-D, --blob-dir <dir>', 'directory path to save generated RAFS metadata and data blobs')
    .option('-b, --blob <path>', 'file path to save the generated RAFS data blob')
    .addOption(new Option('-v, --fs-version <version>', 'RAFS format version').choices(['5', '6']).default('6'))
    .addOption(new Option('--compressor <algo>', 'algorithm to compress data chunks').choices(['none', 'lz4_block', 'zstd']).default('zstd'))
    .addOption(new Option('--digester <algo>', 'algorithm to digest data chunks').choices(['blake3', 'sha256']).default('blake3'))
    .option('--chunk-size <size>', 'size of data chunks, a power of two in 0x1000..0x1000000 (0x-prefixed hex or decimal)')
    .option('--aligned-chunk', 'align uncompressed data chunks to 4K, only for RAFS v5')
    .option('--repeatable', 'generate reproducible RAFS metadata')
    .addOption(new Option('--disable-check', 'accepted for compatibility; the build always validates its output').hideHelp())
    .addOption(new Option('--whiteout-spec <spec>', 'type of whiteout specification').choices([...WHITEOUT_SPECS]).default('oci'))
    .option('--parent-bootstrap <path>', 'file path of the parent/referenced RAFS metadata blob')
    .option('--chunk-dict <path>', 'file path of chunk dictionary for data deduplication (bootstrap=PATH or PATH)')
    .addOption(new Option('--prefetch-policy <policy>', 'data prefetch policy; patterns are read from stdin').choices([...PREFETCH_POLICIES]).default('none'))
    .addOption(new Option('--features <features>', 'enable features').choices(['blob-toc']))
    .option('-J, --output-json <file>', 'file path to save the operation result in JSON format')
    .option('--blob-inline-meta', 'inline RAFS metadata and blob metadata into the data blob')
    .addOption(new Option('--inline-bootstrap', 'alias of --blob-inline-meta').hideHelp())
    .option('--blob-id <id>', "the eStargz layer's sha256 digest (estargztoc-ref)")
    .option('--blob-data-size <size>', "the eStargz layer's size in bytes (estargztoc-ref)")
    .addOption(new Option('--batch-size <size>', 'not supported').hideHelp())
    .addOption(new Option('-E, --encrypt', 'not supported').hideHelp())
    .action(async (source: string, flags: CreateFlags) => {
      // The ref types (issue 15) have builders of their own: targz-ref-command.ts, estargz-ref-command.ts.
      const chunkSize = flags.chunkSize === undefined ? undefined : parseSizeArg(flags.chunkSize, 'chunk size');
      const ref = flags.sourceType ?? flags.type;
      if (ref === TARGZ_REF) return createTargzRef(source, flags, chunkSize);
      if (ref === ESTARGZ_REF || ref === ESTARGZTOC_REF || ref === STARGZ_INDEX) {
        return createEstargzRef(ref, source, flags, chunkSize, flags.blobDataSize === undefined ? undefined : parseSizeArg(flags.blobDataSize, 'blob data size'));
      }
      if (flags.blobDataSize !== undefined) throw usage('--blob-data-size is only for --type estargztoc-ref');
      if (flags.blobId !== undefined || flags.encrypt) throw usage('--blob-id is only for --type estargztoc-ref, and --encrypt is not supported by this nydus-image');
      if (flags.batchSize !== undefined && parseSizeArg(flags.batchSize, 'batch size') !== 0) throw usage('--batch-size is not supported (only 0)');
      const given = flags.sourceType ?? flags.type;
      if ((UNSUPPORTED_TYPES as readonly string[]).includes(given)) throw usage(`conversion type ${given} is not supported by this nydus-image`);
      const type = (given === 'directory' ? 'dir-rafs' : given) as SourceType;
      const policy = flags.prefetchPolicy as PrefetchPolicy;
      const warn = (m: string): void => void process.stderr.write(`nydus-image: warning: ${m}\n`);
      const patterns = policy === 'none' ? [] : parsePrefetchPatterns(readFileSync(0), warn);
      removeOutputsOnSignal();
      const r = await createImage({
        source,
        type,
        bootstrap: flags.bootstrap,
        blobDir: flags.blobDir,
        blob: flags.blob,
        fsVersion: Number(flags.fsVersion) as 5 | 6,
        compressor: flags.compressor as Compressor,
        digester: flags.digester as Digester,
        chunkSize: flags.chunkSize === undefined ? undefined : parseSizeArg(flags.chunkSize, 'chunk size'),
        alignedChunk: flags.alignedChunk,
        repeatable: flags.repeatable,
        whiteoutSpec: flags.whiteoutSpec as WhiteoutSpec,
        parentBootstrap: flags.parentBootstrap,
        chunkDict: flags.chunkDict === undefined ? undefined : parseChunkDictArg(flags.chunkDict),
        prefetchPolicy: policy,
        prefetchPatterns: patterns,
        blobToc: flags.features === 'blob-toc',
        inlineMeta: flags.blobInlineMeta === true || flags.inlineBootstrap === true,
        workers: Math.min(4, availableParallelism()),
        progress: createProgress(),
        warn,
      });
      process.stdout.write(summary(r));
      if (flags.outputJson) await writeJson(flags.outputJson, createJson(r));
    });
}

function summary(r: BuildResult): string {
  const d = r.dedup;
  return (
    `meta blob path: ${r.bootstrap ?? '(inlined in the data blob)'}\n` +
    `data blob size: 0x${(r.blob?.compressedSize ?? 0).toString(16)}\n` +
    `data blobs: ${JSON.stringify(r.blobs)}\n` +
    `chunks: ${d.chunks}, unique: ${d.uniqueChunks}, deduplicated: ${d.chunks - d.uniqueChunks}, bytes saved: ${d.bytesSaved}\n`
  );
}

/** Upstream's `{version, bootstrap, blobs, trace}` plus this builder's blob and dedup statistics. */
export function createJson(r: BuildResult): Record<string, unknown> {
  const b = buildInfo();
  const d = r.dedup;
  return {
    version: `${b.package_ver}-${b.git_commit}`,
    bootstrap: r.bootstrap ?? '',
    blobs: r.blobs,
    trace: Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, Number(v.toFixed(6))])),
    blob_size: r.blob?.compressedSize ?? 0,
    blob_path: r.blob?.path ?? null,
    dedup: {
      chunks: d.chunks,
      unique_chunks: d.uniqueChunks,
      deduplicated_chunks: d.chunks - d.uniqueChunks,
      dedup_within_build: d.dedupWithinBuild,
      dedup_from_parent: d.dedupFromParent,
      dedup_from_chunk_dict: d.dedupFromDict,
      bytes_saved: d.bytesSaved,
      file_bytes: d.fileBytes,
      stored_bytes: d.storedBytes,
    },
    inodes: r.counts.inodes,
  };
}
