// `nydus-image unpack --output OUT.tar`: the whole tree as a PAX tar.
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { openImage } from '../../image/open-image.js';
import { unpackToTar } from '../../image/unpack.js';
import { bootstrapPath, withBlobDirOrConfig, withBootstrap, type BootstrapOptions } from './shared.js';

interface UnpackOptions extends BootstrapOptions {
  blob?: string;
  blobDir?: string;
  config?: string;
  backendConfig?: string;
  backendType?: string;
  output: string;
}

export function registerUnpack(program: Command): void {
  const cmd = program.command('unpack').description('Unpack a RAFS filesystem to a tar file');
  withBlobDirOrConfig(withBootstrap(cmd))
    .option('-b, --blob <file>', 'path to the RAFS data blob file')
    .option('--backend-config <config>', 'nydusd configuration file for the storage backend (same as --config); with --backend-type, the backend\'s JSON config itself')
    .option('--backend-type <type>', 'backend type of the older form --backend-type T --backend-config JSON (e.g. localfs)')
    .requiredOption('--output <file>', 'path of the tar file to write')
    .action(async (positional: string | undefined, opts: UnpackOptions) => {
      const bootstrap = bootstrapPath(positional, opts);
      if (opts.backendType !== undefined && opts.backendConfig === undefined) throw new ConfigError('ERR_CLI_USAGE', '--backend-type needs --backend-config');
      const backend = opts.backendType !== undefined ? { type: opts.backendType, config: opts.backendConfig as string } : undefined;
      const config = opts.config ?? (backend ? undefined : opts.backendConfig);
      const image = await openImage(bootstrap, { blob: opts.blob, blobDir: opts.blobDir, config, backend }, true);
      try {
        const r = await unpackToTar(image.sb, image.storage?.reader, opts.output);
        for (const s of r.skipped) process.stderr.write(`nydus-image: skipped socket ${s}\n`);
        process.stdout.write(`unpacked ${r.entries} entries, ${r.bytes} bytes of file data to ${opts.output}\n`);
      } finally {
        await image.close();
      }
    });
}
