// nydusctl commands about the daemon itself and its mount table: info, mounts, mount,
// umount, set log-level, exit. Each is one API call and a rendering of its answer.
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type { DaemonInfo } from '../../daemon/control.js';
import { ConfigError } from '../../errors.js';
import { print, printAs, withClient } from './context.js';
import { table } from './format.js';

function backendType(config: Record<string, unknown> | null): string {
  const pick = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((v, k) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined), o);
  const t = pick(config, 'backend', 'type') ?? pick(config, 'device', 'backend', 'type');
  return typeof t === 'string' ? t : '-';
}

/** A value as upstream prints a JSON value (strings keep their quotes). */
const shown = (v: unknown): string => JSON.stringify(v ?? null);

/**
 * Upstream's `info` block (values as JSON, left in a 24-column field), then this
 * project's additions and the backend list as upstream prints it.
 */
function renderInfo(info: DaemonInfo): string {
  const v = info.version;
  const field = (k: string, value: string): string => `${(k + ':').padEnd(24)}${value}\n`;
  let out = '\n' + field('Version', shown(v.package_ver)) + field('Status', shown(info.state)) + field('Profile', shown(v.profile)) + field('Commit', shown(v.git_commit));
  const mounts = Object.entries(info.backend_collection ?? {});
  out += field('ID', shown(info.id)) + field('Supervisor', shown(info.supervisor)) + field('Mounts', String(mounts.length));
  if (mounts.length > 0) out += 'Backend list:\n';
  for (const [mountpoint, b] of mounts) {
    out += `  ${mountpoint}\n`;
    out += `    ${'type:'.padEnd(24)}${b.backend_type}\n    ${'mountpoint:'.padEnd(24)}${b.mountpoint}\n    ${'mounted_time:'.padEnd(24)}${b.mounted_time}\n`;
  }
  return out;
}

function renderMounts(info: DaemonInfo): string {
  const entries = Object.values(info.backend_collection ?? {});
  if (entries.length === 0) return 'no mounts\n';
  return table(
    ['MOUNTPOINT', 'TYPE', 'BACKEND', 'MOUNTED'],
    entries.map((e) => [e.mountpoint, e.backend_type, backendType(e.config), e.mounted_time]),
  );
}

const LEVELS = ['off', 'error', 'warn', 'info', 'debug', 'trace'];

/** Registers info, mounts, mount, umount, set and exit on `program`. */
export function registerDaemonCommands(program: Command): void {
  program
    .command('info')
    .description('show the daemon state, version and number of mounts')
    .action((_o, cmd: Command) => withClient(cmd, async (c, opts) => {
      const info = await c.info();
      printAs(opts, info, () => renderInfo(info));
    }));

  program
    .command('mounts')
    .description('list the images mounted in the daemon')
    .action((_o, cmd: Command) => withClient(cmd, async (c, opts) => {
      const info = await c.info();
      printAs(opts, info.backend_collection, () => renderMounts(info));
    }));

  program
    .command('mount')
    .description('mount an image at a mountpoint inside the daemon (POST /api/v1/mount)')
    .requiredOption('-m, --mountpoint <path>', 'mountpoint inside the daemon, e.g. /sub')
    .option('-s, --source <file>', 'RAFS bootstrap of the image')
    .addOption(new Option('--bootstrap <file>', 'alias of --source').hideHelp())
    .requiredOption('-c, --config <file>', 'nydusd config file (JSON) for the image')
    .option('-t, --type <fs_type>', 'filesystem type', 'rafs')
    .option('--prefetch-files <paths...>', 'absolute paths inside the image to prefetch')
    .action((o: { mountpoint: string; source?: string; bootstrap?: string; config: string; type: string; prefetchFiles?: string[] }, cmd: Command) =>
      withClient(cmd, async (c, opts) => {
        const source = o.source ?? o.bootstrap;
        if (source === undefined) throw new ConfigError('ERR_CLI_USAGE', 'failed to parse arguments: -s/--source <file> is required');
        const config = await readFile(o.config, 'utf8').catch((err: Error) => {
          throw new ConfigError('ERR_CONFIG_INVALID', `failed to read config ${o.config}: ${err.message}`, { cause: err });
        });
        await c.mount(o.mountpoint, { source, fs_type: o.type, config, prefetch_files: o.prefetchFiles ?? null });
        printAs(opts, { mounted: o.mountpoint }, () => `mounted ${source} at ${o.mountpoint}\n`);
      }));

  program
    .command('umount')
    .description('unmount the image at a mountpoint inside the daemon (DELETE /api/v1/mount)')
    .argument('[mountpoint]', 'mountpoint inside the daemon (or -m)')
    .option('-m, --mountpoint <path>', 'mountpoint inside the daemon')
    .action((positional: string | undefined, o: { mountpoint?: string }, cmd: Command) => withClient(cmd, async (c, opts) => {
      const mountpoint = o.mountpoint ?? positional;
      if (mountpoint === undefined) throw new ConfigError('ERR_CLI_USAGE', 'failed to parse arguments: -m/--mountpoint <path> is required');
      await c.umount(mountpoint);
      printAs(opts, { umounted: mountpoint }, () => `unmounted ${mountpoint}\n`);
    }));

  program
    .command('set')
    .description('change a daemon setting; the one setting is log-level')
    .argument('<setting>', 'log-level')
    .argument('<value>', `one of ${LEVELS.join(', ')}`)
    .action((setting: string, value: string, _o, cmd: Command) => withClient(cmd, async (c, opts) => {
      if (setting !== 'log-level' && setting !== 'log_level') {
        throw new ConfigError('ERR_CLI_USAGE', `failed to set ${setting}: unknown setting (known: log-level)`);
      }
      await c.setLogLevel(value);
      printAs(opts, { log_level: value.toLowerCase() }, () => `log level set to ${value.toLowerCase()}\n`);
    }));

  program
    .command('exit')
    .description('stop the daemon, keeping the FUSE mount for a successor (PUT /api/v1/daemon/exit)')
    .action((_o, cmd: Command) => withClient(cmd, async (c, opts) => {
      await c.exit();
      if (opts.json) print('{}\n');
      else print('daemon stopped; it exits now, the FUSE mount stays\n');
    }));
}
