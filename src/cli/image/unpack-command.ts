// `nydus-image unpack --output OUT.tar`: the whole tree as a PAX tar.
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { openImage } from '../../image/open-image.js';
import { unpackToTar } from '../../image/unpack.js';
import { backendSource, bootstrapPath, withBackendFlags, withBlobDirOrConfig, withBootstrap, type BackendFlags, type BootstrapOptions } from './shared.js';

interface UnpackOptions extends BootstrapOptions, BackendFlags {
  blob?: string;
  blobDir?: string;
  output: string;
}

export function registerUnpack(program: Command): void {
  const cmd = program.command('unpack').description('Unpack a RAFS filesystem to a tar file');
  withBackendFlags(withBlobDirOrConfig(withBootstrap(cmd)))
    .option('-b, --blob <file>', 'path to the RAFS data blob file')
    .requiredOption('--output <file>', 'path of the tar file to write')
    .action(async (positional: string | undefined, opts: UnpackOptions) => {
      const bootstrap = bootstrapPath(positional, opts);
      const image = await openImage(bootstrap, { blob: opts.blob, blobDir: opts.blobDir, ...backendSource(opts) }, true);
      try {
        const r = await unpackToTar(image.sb, image.storage?.reader, opts.output);
        for (const s of r.skipped) process.stderr.write(`nydus-image: skipped socket ${s}\n`);
        process.stdout.write(`unpacked ${r.entries} entries, ${r.bytes} bytes of file data to ${opts.output}\n`);
      } finally {
        await image.close();
      }
    });
}
