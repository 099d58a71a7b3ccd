// `nydus-image merge SOURCE...`: per-layer bootstraps (lowest first) become one image.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { mergeImages } from '../../builder/merge.js';
import { WHITEOUT_SPECS, type WhiteoutSpec } from '../../builder/overlay.js';
import { parsePrefetchPatterns, PREFETCH_POLICIES, type PrefetchPolicy } from '../../builder/prefetch.js';
import { buildInfo } from '../../util/build-info.js';
import { parseChunkDictArg } from './create-command.js';
import { writeJson } from './shared.js';

interface MergeFlags {
  bootstrap?: string;
  blobDir?: string;
  parentBootstrap?: string;
  chunkDict?: string;
  prefetchPolicy: string;
  outputJson?: string;
  blobDigests?: string;
  originalBlobIds?: string;
  blobSizes?: string;
  blobTocDigests?: string;
  blobTocSizes?: string;
  config?: string;
  whiteoutSpec: string;
}

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim());
}

function numbers(v: string | undefined, what: string): number[] | undefined {
  return list(v)?.map((s) => {
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new ConfigError('ERR_CLI_USAGE', `invalid number ${JSON.stringify(s)} in --${what}`);
    return Number(s);
  });
}

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('Merge multiple bootstraps into a overlaid bootstrap')
    .argument('<SOURCE...>', 'bootstrap paths (allow one or more), lowest layer first')
    .option('-B, --bootstrap <path>', 'output path of nydus overlaid bootstrap')
    .option('-D, --blob-dir <dir>', 'directory path to save generated RAFS metadata and data blobs')
    .option('--parent-bootstrap <path>', 'file path of the parent/referenced RAFS metadata blob')
    .option('--chunk-dict <path>', 'file path of chunk dictionary (its blobs are not layer blobs)')
    .addOption(new Option('--prefetch-policy <policy>', 'data prefetch policy; patterns are read from stdin').choices([...PREFETCH_POLICIES]).default('none'))
    .option('-J, --output-json <file>', 'file path to save the operation result in JSON format')
    .option('--blob-digests <list>', 'RAFS blob digest list separated by comma')
    .option('--original-blob-ids <list>', 'original blob id list separated by comma')
    .option('--blob-sizes <list>', 'RAFS blob size list separated by comma')
    .option('--blob-toc-digests <list>', 'RAFS blob toc digest list separated by comma')
    .option('--blob-toc-sizes <list>', 'RAFS blob toc size list separated by comma')
    .addOption(new Option('--whiteout-spec <spec>', 'whiteout rules between layers (an extension; upstream always uses oci)').choices([...WHITEOUT_SPECS]).default('oci'))
    .addOption(new Option('-C, --config <file>', 'not supported').hideHelp())
    .action(async (sources: string[], flags: MergeFlags) => {
      if (flags.config !== undefined) throw new ConfigError('ERR_CLI_USAGE', '--config is not supported by merge: blobs are never read');
      const warn = (m: string): void => void process.stderr.write(`nydus-image: warning: ${m}\n`);
      const policy = flags.prefetchPolicy as PrefetchPolicy;
      const r = await mergeImages({
        sources,
        bootstrap: flags.bootstrap,
        blobDir: flags.blobDir,
        parentBootstrap: flags.parentBootstrap,
        chunkDict: flags.chunkDict === undefined ? undefined : parseChunkDictArg(flags.chunkDict),
        prefetchPolicy: policy,
        prefetchPatterns: policy === 'none' ? [] : parsePrefetchPatterns(readFileSync(0), warn),
        blobDigests: list(flags.blobDigests),
        originalBlobIds: list(flags.originalBlobIds),
        blobSizes: numbers(flags.blobSizes, 'blob-sizes'),
        blobTocDigests: list(flags.blobTocDigests),
        blobTocSizes: numbers(flags.blobTocSizes, 'blob-toc-sizes'),
        whiteoutSpec: flags.whiteoutSpec as WhiteoutSpec,
      });
      process.stdout.write(`meta blob path: ${r.bootstrap}\ndata blobs: ${JSON.stringify(r.blobs)}\n`);
      if (flags.outputJson) {
        const b = buildInfo();
        await writeJson(flags.outputJson, { version: `${b.package_ver}-${b.git_commit}`, bootstrap: r.bootstrap, blobs: r.blobs, trace: {}, inodes: r.counts.inodes });
      }
    });
}
