// `nydus-image inspect --request stats|blobs|prefetch`: one JSON answer on stdout.
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { inspect, INSPECT_REQUESTS } from '../../image/inspect.js';
import { openBootstrap } from '../../rafs/index.js';
import { bootstrapPath, withBlobDirOrConfig, withBootstrap, type BootstrapOptions } from './shared.js';

interface InspectOptions extends BootstrapOptions {
  request?: string;
}

export function registerInspect(program: Command): void {
  const cmd = program.command('inspect').description('Inspect RAFS filesystem metadata in request mode');
  withBlobDirOrConfig(withBootstrap(cmd))
    .option('-R, --request <request>', `one of ${INSPECT_REQUESTS.join(', ')}`)
    .action(async (positional: string | undefined, opts: InspectOptions) => {
      const bootstrap = bootstrapPath(positional, opts);
      if (opts.request === undefined) {
        throw new ConfigError('ERR_CLI_USAGE', `inspect needs --request (${INSPECT_REQUESTS.join(', ')}); there is no interactive mode`);
      }
      const sb = await openBootstrap(bootstrap);
      process.stdout.write(JSON.stringify(inspect(sb, opts.request)) + '\n');
    });
}
