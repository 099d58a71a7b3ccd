// Options shared by nydus-image subcommands, spelled as upstream's clap definitions:
// the bootstrap as a positional argument or the deprecated `-B/--bootstrap`, and the
// blob sources `-b/--blob`, `-D/--blob-dir`, `-C/--config`.
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { removeTempFiles } from '../../builder/output.js';
import { ConfigError, describeError } from '../../errors.js';

export interface BootstrapOptions {
  bootstrap?: string;
}

/** Adds `[BOOTSTRAP]` and `-B, --bootstrap`. */
export function withBootstrap(cmd: Command): Command {
  return cmd.argument('[BOOTSTRAP]', 'file path of RAFS metadata').option('-B, --bootstrap <path>', 'file path of RAFS metadata (deprecated form)');
}

/** The bootstrap given either way; exactly one is required. */
export function bootstrapPath(positional: string | undefined, opts: BootstrapOptions): string {
  if (positional !== undefined && opts.bootstrap !== undefined) {
    throw new ConfigError('ERR_CLI_USAGE', 'the bootstrap is given twice (BOOTSTRAP and --bootstrap)');
  }
  const p = positional ?? opts.bootstrap;
  if (p === undefined) throw new ConfigError('ERR_CLI_USAGE', 'a bootstrap is required (BOOTSTRAP or --bootstrap)');
  return p;
}

/** Adds `-D, --blob-dir` and `-C, --config`. */
export function withBlobDirOrConfig(cmd: Command): Command {
  return cmd
    .option('-D, --blob-dir <dir>', 'directory of the localfs backend holding the data blobs')
    .option('-C, --config <file>', 'nydusd configuration file for the storage backend');
}

/** Writes `value` as JSON to `file` (upstream `-J/--output-json`). */
export async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, JSON.stringify(value, null, 2) + '\n');
}

export interface BackendFlags {
  config?: string;
  backendType?: string;
  backendConfig?: string;
}

/** Adds `--backend-type` and `--backend-config` (upstream's flag pair; unpack's `--backend-config` alone is a nydusd config file, as upstream). */
export function withBackendFlags(cmd: Command): Command {
  return cmd
    .option('--backend-type <type>', 'storage backend of the blobs: localfs, registry, http-proxy, s3 or oss (with --backend-config)')
    .option('--backend-config <json|file>', "with --backend-type: that backend's keys as JSON, inline or in a file; alone: a nydusd configuration file");
}

/** The blob source the backend flags give: a nydusd config file, or a backend type with its keys. */
export function backendSource(opts: BackendFlags): { config?: string; backend?: { type: string; config: string } } {
  if (opts.backendType === undefined) return { config: opts.config ?? opts.backendConfig };
  if (opts.backendConfig === undefined) throw new ConfigError('ERR_CLI_USAGE', '--backend-type needs --backend-config');
  if (opts.config !== undefined) throw new ConfigError('ERR_CLI_USAGE', 'give either --config or --backend-type, not both');
  return { backend: { type: opts.backendType, config: opts.backendConfig } };
}

/** On SIGINT or SIGTERM: remove the partial outputs (and what `alsoRemove` removes), say so, and exit 130 or 143. */
export function removeOutputsOnSignal(alsoRemove?: () => void): void {
  const onSignal = (sig: NodeJS.Signals): void => {
    removeTempFiles();
    try {
      alsoRemove?.();
    } catch (err) {
      process.stderr.write(`nydus-image: warning: ${describeError(err)}\n`);
    }
    process.stderr.write(`nydus-image: interrupted by ${sig}, partial outputs removed\n`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}
