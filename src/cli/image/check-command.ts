// `nydus-image check`: metadata validation and, with blobs, chunk digest verification.
import type { Command } from 'commander';
import { StorageError, type ErrorCode } from '../../errors.js';
import { checkImage, formatCheck } from '../../image/check.js';
import { openImage } from '../../image/open-image.js';
import { walk } from '../../rafs/walk.js';
import { backendSource, bootstrapPath, withBackendFlags, withBlobDirOrConfig, withBootstrap, writeJson, type BackendFlags, type BootstrapOptions } from './shared.js';

interface CheckOptions extends BootstrapOptions, BackendFlags {
  blobDir?: string;
  verbose?: boolean;
  outputJson?: string;
}

export function registerCheck(program: Command): void {
  const cmd = program.command('check').description('Validate RAFS filesystem metadata (and chunk data when blobs are given)');
  withBackendFlags(withBlobDirOrConfig(withBootstrap(cmd)))
    .option('-v, --verbose', 'print every entry of the image')
    .option('-J, --output-json <file>', 'file path to save the result in JSON format')
    .action(async (positional: string | undefined, opts: CheckOptions) => {
      const bootstrap = bootstrapPath(positional, opts);
      const image = await openImage(bootstrap, { blobDir: opts.blobDir, ...backendSource(opts) }, true);
      try {
        const summary = await checkImage(bootstrap, image.sb, image.storage);
        if (opts.verbose) for (const e of walk(image.sb)) process.stdout.write(`${e.ino}\t0${e.attr.mode.toString(8)}\t${e.path}\n`);
        process.stdout.write(formatCheck(summary));
        if (opts.outputJson) await writeJson(opts.outputJson, summary);
        const f = summary.chunk_failures;
        if (f.length > 0) {
          // One cause for every failure (refused keys, a missing blob) is reported as itself.
          const same = f.every((x) => x.code === f[0].code) && f[0].code.startsWith('ERR_STORAGE_');
          const code = same ? (f[0].code as ErrorCode) : 'ERR_STORAGE_DIGEST_MISMATCH';
          throw new StorageError(code, `image check failed: ${f.length} chunk(s) bad, first: ${f[0].message}`);
        }
      } finally {
        await image.close();
      }
    });
}
