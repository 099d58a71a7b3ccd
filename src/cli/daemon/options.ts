// nydusd's command line, with upstream's flag names (docs/contract.md §1): the global
// flags, the fuse flags (top level or under the optional `fuse` subcommand, not both),
// and two of ours (--fuse-impl, --state-dir). Turns commander's parse into DaemonArgs,
// refusing what clap would refuse (exit 2) and what this daemon cannot do.
import { Command, Option } from 'commander';
import { FS_DRIVERS, type FsDriver } from '../../config/types.js';
import { ConfigError } from '../../errors.js';
import { FUSE_IMPLS, type FuseImpl } from '../../fuse/transport.js';
import type { FailoverPolicy } from '../../daemon/controller.js';
import type { RunDaemonOptions } from '../../daemon/run.js';
import { parseLogLevel, type LogLevel } from '../../util/logger.js';

/** Everything nydusd was asked to do: the daemon's options (daemon/run.ts) and the process's. */
export interface DaemonArgs extends Omit<RunDaemonOptions, 'logger' | 'stop' | 'serveApi'> {
  virtualMountpoint: string;
  upgrade: boolean;
  failoverPolicy: FailoverPolicy;
  rlimitNofile: number;
  fuseImpl: FuseImpl;
  logLevel: LogLevel | 'off';
  logFile?: string;
  logRotationSizeMiB: number;
  /** --fuse-threads: the size of libuv's threadpool. */
  threads: number;
}

const usage = (msg: string): ConfigError => new ConfigError('ERR_CLI_USAGE', msg);

const GLOBAL_FLAGS = ['apisock', 'config', 'id', 'supervisor', 'upgrade', 'logLevel', 'logFile', 'logRotationSize', 'rlimitNofile'];

/** Adds the global flags (§1.1). */
export function addGlobalFlags(cmd: Command): Command {
  return cmd
    .option('-A, --apisock <path>', 'admin API unix socket')
    .option('-C, --config <path>', 'daemon config file (JSON, legacy v1 or version 2)')
    .option('--id <id>', 'service instance id (requires --supervisor)')
    .option('--supervisor <path>', 'supervisor unix socket for state save/restore (requires --id)')
    .option('--upgrade', 'start in upgrade mode: mount nothing, stay INIT and wait for a takeover')
    .option('-l, --log-level <level>', 'trace, debug, info, warn or error', 'info')
    .option('-L, --log-file <path>', 'log to this file (".log" appended when it has no extension) instead of stderr')
    .option('--log-rotation-size <MiB>', 'rotate the log file at this size (0: never)', '0')
    .option('--rlimit-nofile <n>', 'raise RLIMIT_NOFILE to this (0: leave it)', '1000000');
}

/** Adds the fuse flags (§1.2) and ours. */
export function addFuseFlags(cmd: Command): Command {
  return cmd
    .option('-M, --mountpoint <path>', 'host FUSE mountpoint')
    .option('--failover-policy <policy>', 'none, resend or flush: what a takeover does with in-flight requests', 'resend')
    .option('--fuse-threads <n>', 'I/O concurrency: size of the libuv threadpool (1..1024)')
    .addOption(new Option('--thread-num <n>', 'alias of --fuse-threads').hideHelp())
    .option('--writable', 'mount read-write (refused: images are read-only)')
    .option('-B, --bootstrap <path>', 'RAFS bootstrap mounted at --virtual-mountpoint')
    .option('--image <reference>', 'mount a Nydus image from a registry (host/repo:tag) at --virtual-mountpoint, blobs read lazily')
    .option('-D, --localfs-dir <dir>', 'blobs directory; builds a localfs + blobcache config')
    .option('-s, --shared-dir <dir>', 'passthroughfs directory (refused: only RAFS is served)')
    .option('--prefetch-files <path>', 'file listing absolute paths to prefetch (requires --bootstrap)')
    .option('-m, --virtual-mountpoint <path>', 'where --bootstrap appears in the pseudo fs', '/')
    .addOption(new Option('--fuse-impl <impl>', 'FUSE transport').choices([...FUSE_IMPLS]).default('fusedev'))
    .addOption(new Option('--fs-driver <driver>', "fusedev: nydusd answers every file request; erofs: the kernel's erofs serves RAFS v6 images over blob views (default: the config's fs_driver, else fusedev)").choices([...FS_DRIVERS]))
    .option('--state-dir <dir>', 'journal directory (default /run/nydusd/<id>, or /run/nydusd/<escaped mountpoint>)');
}

function intIn(name: string, text: unknown, lo: number, hi: number): number {
  const n = Number(text);
  if (typeof text !== 'string' || !/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < lo || n > hi) {
    throw usage(`invalid value ${JSON.stringify(text)} for --${name}: expected an integer in ${lo}..${hi}`);
  }
  return n;
}

/** Parsed options of one command and where each value came from (commander's getOptionValueSource). */
export interface ParsedOptions {
  values: Record<string, unknown>;
  source(key: string): string | undefined;
}

/** Top-level and `fuse` options merged: globals may sit on either side, fuse flags only after `fuse`. */
function merge(top: ParsedOptions, sub: ParsedOptions | undefined): Record<string, unknown> {
  if (sub === undefined) return top.values;
  const fuseOnTop = Object.keys(top.values).filter((k) => !GLOBAL_FLAGS.includes(k) && top.source(k) === 'cli');
  if (fuseOnTop.length > 0) throw usage(`fuse options cannot be given before the fuse subcommand: ${fuseOnTop.join(', ')}`);
  const o: Record<string, unknown> = { ...sub.values };
  for (const k of GLOBAL_FLAGS) if (top.source(k) === 'cli' && sub.source(k) !== 'cli') o[k] = top.values[k];
  return o;
}

/**
 * DaemonArgs from the top-level options and, when the `fuse` subcommand was used, its
 * options. Throws ERR_CLI_USAGE (exit 2) for what clap would reject.
 */
export function toDaemonArgs(top: ParsedOptions, sub?: ParsedOptions): DaemonArgs {
  const o = merge(top, sub);
  const str = (k: string): string | undefined => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  if (o.writable === true) throw usage('--writable is not supported: RAFS images are served read-only');
  if (o.sharedDir !== undefined) throw usage('--shared-dir is not supported: passthroughfs is not served, only RAFS images');
  const mountpoint = str('mountpoint');
  if (mountpoint === undefined) throw usage("the following required argument was not provided: '--mountpoint <path>'");
  if ((o.id === undefined) !== (o.supervisor === undefined)) throw usage('--id and --supervisor must be given together');
  if (o.config !== undefined && o.localfsDir !== undefined) throw usage('--config cannot be used with --localfs-dir');
  if (o.image !== undefined && (o.bootstrap !== undefined || o.localfsDir !== undefined)) throw usage('--image cannot be used with --bootstrap or --localfs-dir');
  if (o.prefetchFiles !== undefined && o.bootstrap === undefined && o.image === undefined) throw usage('--prefetch-files requires --bootstrap or --image');
  const logLevel = parseLogLevel(String(o.logLevel ?? 'info'));
  if (logLevel === undefined || logLevel === 'off') throw usage(`invalid value ${JSON.stringify(o.logLevel)} for --log-level: expected trace, debug, info, warn or error`);
  const policy = String(o.failoverPolicy ?? 'resend');
  if (!['none', 'resend', 'flush'].includes(policy)) throw usage(`invalid value ${JSON.stringify(policy)} for --failover-policy: expected none, resend or flush`);
  const threadsText = o.fuseThreads ?? o.threadNum ?? '4';
  if (o.fsDriver === 'erofs' && o.fuseImpl === 'fuse-native') throw usage('--fs-driver erofs serves its blob views with --fuse-impl fusedev, not fuse-native');
  return {
    mountpoint,
    apisock: str('apisock'),
    config: str('config'),
    bootstrap: str('bootstrap'),
    image: str('image'),
    localfsDir: str('localfsDir'),
    virtualMountpoint: str('virtualMountpoint') ?? '/',
    prefetchFiles: str('prefetchFiles'),
    id: str('id'),
    supervisor: str('supervisor'),
    upgrade: o.upgrade === true,
    failoverPolicy: policy as FailoverPolicy,
    logLevel,
    logFile: str('logFile'),
    logRotationSizeMiB: intIn('log-rotation-size', o.logRotationSize ?? '0', 0, 1 << 20),
    threads: intIn('fuse-threads', threadsText, 1, 1024),
    rlimitNofile: intIn('rlimit-nofile', o.rlimitNofile ?? '1000000', 0, 2 ** 31),
    fuseImpl: (str('fuseImpl') ?? 'fusedev') as FuseImpl,
    fsDriver: str('fsDriver') as FsDriver | undefined,
    stateDir: str('stateDir'),
  };
}
