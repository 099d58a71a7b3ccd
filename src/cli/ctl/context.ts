// What every nydusctl command shares: the global options (--sock, --json, upstream's
// -r/--raw), a client of the daemon's API that is closed after the command, and stdout.
import type { Command } from 'commander';
import { ApiClient } from '../../api/client.js';
import { ConfigError } from '../../errors.js';
import { json } from './format.js';

/** nydusctl's global options. */
export interface CtlOptions {
  sock: string;
  json: boolean;
  /** Upstream's `-r/--raw`: the API answer as one line of JSON. */
  raw: boolean;
}

/** The global options as seen from any subcommand. */
export function ctlOptions(cmd: Command): CtlOptions {
  const o = cmd.optsWithGlobals() as { sock?: string; json?: boolean; raw?: boolean };
  if (o.sock === undefined || o.sock === '') throw new ConfigError('ERR_CLI_USAGE', 'failed to parse arguments: --sock <path> is required');
  return { sock: o.sock, json: o.json === true, raw: o.raw === true };
}

/** Runs `fn` with a client of the daemon at --sock, closing it afterwards. */
export async function withClient(cmd: Command, fn: (client: ApiClient, opts: CtlOptions) => Promise<void>): Promise<void> {
  const opts = ctlOptions(cmd);
  const client = new ApiClient(opts.sock);
  try {
    await fn(client, opts);
  } finally {
    client.close();
  }
}

/** Writes text to stdout. */
export function print(text: string): void {
  process.stdout.write(text);
}

/** Prints `value` as one JSON line with --raw, as JSON with --json, otherwise the human rendering. */
export function printAs(opts: CtlOptions, value: unknown, human: () => string): void {
  print(opts.raw ? JSON.stringify(value) + '\n' : opts.json ? json(value) : human());
}
