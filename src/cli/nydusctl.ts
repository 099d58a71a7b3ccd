#!/usr/bin/env node
// nydusctl: the command-line client of a running nydusd's admin API (--sock).
// Upstream's syntax (-S/--sock, -r/--raw, info, set log-level, metrics CATEGORY, mount
// -s -c -m -t, umount -m) with upstream's output, plus this project's own commands and
// --json; a dead or missing socket is one line on stderr and exit 1.
import { Command } from 'commander';
import { versionText } from '../util/build-info.js';
import { registerDaemonCommands } from './ctl/daemon-commands.js';
import { registerEventsCommand } from './ctl/events-command.js';
import { registerMachineCommand } from './ctl/machine-command.js';
import { registerMetricsCommand } from './ctl/metrics-command.js';
import { runCli } from './run.js';

const program = new Command('nydusctl')
  .description('Query and control a running nydusd through its API socket')
  .version(versionText('nydusctl'), '-V, --version')
  .requiredOption('-S, --sock <path>', 'the daemon API socket (nydusd --apisock)')
  .option('--json', 'print JSON for scripts instead of tables')
  .option('-r, --raw', 'print the API answer as plain JSON (one line), as upstream nydusctl')
  .showHelpAfterError(false);

registerDaemonCommands(program);
registerMetricsCommand(program);
registerEventsCommand(program);
registerMachineCommand(program);

await runCli(program);
