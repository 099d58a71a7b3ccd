// `nydus-image stat`: image statistics and chunk deduplication across bootstraps.
import { readdirSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { formatStat, ImageStat } from '../../builder/stat.js';
import { writeJson } from './shared.js';

interface StatFlags {
  bootstrap?: string;
  blobDir?: string;
  target?: string;
  config?: string;
  outputJson?: string;
}

export function registerStat(program: Command): void {
  program
    .command('stat')
    .description('Generate statistics information for RAFS filesystems')
    .option('-B, --bootstrap <path>', 'statistics of this RAFS filesystem')
    .option('-D, --blob-dir <dir>', 'statistics of all RAFS filesystems (files without extension) in the directory, with deduplication')
    .option('-T, --target <path>', 'statistics of this RAFS filesystem against the others')
    .addOption(new Option('--digester <algo>', 'accepted for compatibility (chunk digests come from the images)').choices(['blake3', 'sha256']).default('blake3'))
    .addOption(new Option('-C, --config <file>', 'not supported').hideHelp())
    .option('-J, --output-json <file>', 'file path to save the result in JSON format')
    .action(async (flags: StatFlags) => {
      if (flags.config !== undefined) throw new ConfigError('ERR_CLI_USAGE', '--config is not supported by stat: blobs are never read');
      const stat = new ImageStat();
      let dedup = false;
      if (flags.bootstrap !== undefined) {
        await stat.add(flags.bootstrap, true);
      } else if (flags.blobDir !== undefined) {
        dedup = true;
        const target = flags.target === undefined ? undefined : resolve(flags.target);
        for (const name of readdirSync(flags.blobDir).sort()) {
          const path = join(flags.blobDir, name);
          if (extname(name) !== '' || resolve(path) === target || !statSync(path).isFile()) continue;
          // Like upstream, files that are not bootstraps (data blobs) are skipped quietly.
          await stat.add(path, true).catch(() => undefined);
        }
      } else {
        throw new ConfigError('ERR_CLI_USAGE', 'one of --bootstrap and --blob-dir must be specified');
      }
      if (flags.target !== undefined) await stat.add(flags.target, false);
      const r = stat.finish(dedup);
      if (flags.outputJson) await writeJson(flags.outputJson, r);
      else process.stdout.write(formatStat(r));
    });
}
