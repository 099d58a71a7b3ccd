// nydusd's command line: serves RAFS images through FUSE, with upstream's flags (fuse flags
// at the top level or under `fuse`). Errors print one line `nydusd: CODE: message`; argument errors
// exit 2, startup failures 1, a clean stop (signal, API exit, lost connection) 0.
import { Command } from 'commander';
import { versionText } from '../../util/build-info.js';
import { addFuseFlags, addGlobalFlags, toDaemonArgs, type ParsedOptions } from './options.js';
import { runDaemon } from './run-daemon.js';
import { runCli } from '../run.js';

function parsed(cmd: Command): ParsedOptions {
  return { values: cmd.opts(), source: (k) => cmd.getOptionValueSource(k) };
}

const program = addFuseFlags(addGlobalFlags(new Command('nydusd')))
  .description('Serve RAFS (Nydus) images through FUSE')
  .version(versionText('nydusd'), '-V, --version')
  .enablePositionalOptions()
  .action(async () => {
    process.exitCode = await runDaemon(toDaemonArgs(parsed(program)));
  });

addFuseFlags(addGlobalFlags(program.command('fuse')))
  .description('Serve RAFS images through FUSE (the default)')
  .action(async (_opts, cmd: Command) => {
    process.exitCode = await runDaemon(toDaemonArgs(parsed(program), parsed(cmd)));
  });

await runCli(program);
// Worker threads and sockets of a stopped daemon must not keep the process alive.
process.exit(process.exitCode ?? 0);
