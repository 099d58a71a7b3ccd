// The CLI edge of the error model: a program's main runs here; any failure becomes one
// line `<program>: <code>: <message>` on stderr and a non-zero exit (2 for usage errors,
// as clap does upstream, 1 for everything else). Stack traces only with NODE_DEBUG=nydus.
import { CommanderError, type Command } from 'commander';
import { describeError, NydusError } from '../errors.js';

const debug = /\bnydus\b/.test(process.env.NODE_DEBUG ?? '');

/** Exit code for a failure: 2 for command-line misuse, 1 otherwise. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof NydusError && err.code === 'ERR_CLI_USAGE') return 2;
  return 1;
}

/** Prints one line for `err` and sets the exit code. */
export function reportFailure(program: string, err: unknown): void {
  if (debug && err instanceof Error) console.error(err.stack);
  process.stderr.write(`${program}: ${describeError(err)}\n`);
  process.exitCode = exitCodeFor(err);
}

/**
 * Parses argv with `program` and runs the chosen action. Commander's own usage errors
 * exit 2 with its one-line message; `--help`/`--version` exit 0.
 */
export async function runCli(program: Command, argv = process.argv): Promise<void> {
  const name = program.name();
  const configure = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `${name}: ${s}` : s) });
    cmd.commands.forEach(configure);
  };
  configure(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    reportFailure(name, err);
  }
}
