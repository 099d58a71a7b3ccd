// Runs a program as a child process and collects what it printed. The
// conformance and session tests touch FUSE mounts only through children:
// a FUSE server and its own fs calls in one process can deadlock, and a
// synchronous spawn would stop the event loop that answers the kernel. Even
// spawn's `cwd` is a trap: the child chdirs before exec while uv_spawn blocks
// the event loop until that exec, so a cwd inside the mount deadlocks. The
// working directory is therefore entered by `sh` after the exec.
import { spawn } from 'node:child_process';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `cmd args` (no shell) and resolves when it exits. */
export function run(cmd: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const argv = opts.cwd ? ['-c', 'cd "$0" && exec "$@"', opts.cwd, cmd, ...args] : args;
    const child = spawn(opts.cwd ? 'sh' : cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

/** Runs a shell snippet (in `cwd`, entered after exec). */
export function sh(script: string, cwd?: string): Promise<ChildResult> {
  return run('sh', ['-c', script], { cwd });
}

/** Runs a CommonJS snippet in a fresh node (no loader: fast to start). `args` become process.argv[1..]. */
export function nodeEval(code: string, args: readonly string[] = []): Promise<ChildResult> {
  return run(process.execPath, ['-e', code, ...args]);
}

/** Like run(), but fails unless the child exits 0; returns stdout as text. */
export async function runOk(cmd: string, args: readonly string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, { cwd });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout.toString();
}
