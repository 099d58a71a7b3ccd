// `nydus-image inspect -R REQUEST`: one answer on stdout, JSON or upstream's text.
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { inspectRequest, INSPECT_REQUESTS } from '../../image/inspect.js';
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
      const answer = inspectRequest(sb, opts.request);
      // Upstream prints the text, then the request's JSON value, which is null for these.
      process.stdout.write('json' in answer ? JSON.stringify(answer.json) + '\n' : answer.text + 'null');
    });
}
