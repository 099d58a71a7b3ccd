// Registry flags that `push` and `convert` share: credentials (never on the command
// line: IMAGE_PUSH_AUTH or IMAGE_PULL_AUTH, base64 `user:password`, or `--username` with
// the password on stdin), `--platform os/arch` and `--retry-limit`.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { encodeAuth } from '../../http/auth.js';

export interface RegistryFlags {
  plainHttp?: boolean;
  insecure?: boolean;
  username?: string;
  passwordStdin?: boolean;
  platform?: string;
  retryLimit: string;
}

const usage = (m: string): ConfigError => new ConfigError('ERR_CLI_USAGE', m);

/** Adds `--plain-http`, `--insecure`, `-u/--username`, `--password-stdin`, `--platform` and `--retry-limit`. */
export function withRegistryFlags(cmd: Command): Command {
  return cmd
    .option('--plain-http', 'talk plain http to the registry (the default for localhost and 127.0.0.1)')
    .option('--insecure', 'accept any TLS certificate of the registry')
    .option('-u, --username <name>', 'registry user; the password is read from stdin (with --password-stdin)')
    .option('--password-stdin', 'read the registry password from stdin')
    .option('--platform <os/arch>', 'image platform (default linux/<this machine>)')
    .option('--retry-limit <n>', 'retries of a failed request', '2');
}

/** The registry credentials: `--username` + stdin, else IMAGE_PUSH_AUTH, else IMAGE_PULL_AUTH. */
export function credentials(flags: RegistryFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.passwordStdin && flags.username === undefined) throw usage('--password-stdin needs --username');
  if (flags.username !== undefined) {
    if (!flags.passwordStdin) throw usage('--username needs --password-stdin (passwords are not taken as arguments)');
    const password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
    return encodeAuth(flags.username, password);
  }
  return env.IMAGE_PUSH_AUTH?.trim() || env.IMAGE_PULL_AUTH?.trim() || undefined;
}

/** `--platform os/arch`, when given. */
export function parsePlatform(v: string | undefined): { os: string; architecture: string } | undefined {
  if (v === undefined) return undefined;
  const m = /^([a-z0-9]+)\/([a-z0-9]+)$/.exec(v);
  if (m === null) throw usage(`invalid --platform ${JSON.stringify(v)}, expected os/arch such as linux/amd64`);
  return { os: m[1], architecture: m[2] };
}

/** `--retry-limit`, checked. */
export function parseRetryLimit(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 255) throw usage(`invalid --retry-limit ${v}`);
  return n;
}
