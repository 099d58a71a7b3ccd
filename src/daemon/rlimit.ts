// `--rlimit-nofile`: raises the daemon's open-file limit as upstream does (clamped to
// fs.file-max − 16384, never lowered, refused when fs.file-max < 32768). Node cannot call
// setrlimit itself, so util-linux prlimit(1) sets it on this process, before serving.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ConfigError } from '../errors.js';
import type { Logger } from '../util/logger.js';

const RESERVED = 16384;
const MIN_FILE_MAX = 32768;

/** The soft and hard RLIMIT_NOFILE of this process, from /proc/self/limits. */
async function currentLimits(): Promise<{ soft: number; hard: number }> {
  const text = await readFile('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  const num = (s: string | undefined): number => (s === undefined || s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
  return { soft: num(m?.[1]), hard: num(m?.[2]) };
}

/** Whether this process may raise hard limits (CAP_SYS_RESOURCE, bit 24 of CapEff). */
async function canRaiseHard(): Promise<boolean> {
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(await readFile('/proc/self/status', 'utf8'));
  return m !== null && (BigInt('0x' + m[1]) & (1n << 24n)) !== 0n;
}

/** Raises RLIMIT_NOFILE towards `wanted` (0: leave it). A failure to set it is logged, not fatal. */
export async function raiseNofileLimit(wanted: number, logger: Logger): Promise<void> {
  if (wanted === 0) return;
  const fileMax = Number((await readFile('/proc/sys/fs/file-max', 'utf8')).trim());
  if (!(fileMax >= MIN_FILE_MAX)) {
    throw new ConfigError('ERR_CONFIG_INVALID', `failed to set rlimit-nofile: fs.file-max ${fileMax} is below ${MIN_FILE_MAX}`);
  }
  const target = Math.min(fileMax - RESERVED, wanted);
  const { soft, hard } = await currentLimits();
  if (soft >= target) return;
  if (soft >= hard && hard < target && !(await canRaiseHard())) {
    logger.debug(`daemon: RLIMIT_NOFILE stays at ${soft}: the hard limit is lower than ${target} and may not be raised`);
    return;
  }
  const set = (lim: string) => promisify(execFile)('prlimit', ['--pid', String(process.pid), `--nofile=${lim}`]);
  try {
    // Raising the hard limit needs CAP_SYS_RESOURCE; without it, the soft limit goes up to the hard one.
    await set(hard >= target ? `${target}:${hard}` : `${target}:${target}`).catch(() => (hard > soft ? set(`${hard}:${hard}`) : Promise.reject(new Error('no room below the hard limit'))));
    logger.debug(`daemon: RLIMIT_NOFILE raised towards ${target}`);
  } catch (err) {
    logger.warn(`daemon: failed to raise RLIMIT_NOFILE to ${target}: ${(err as Error).message}`);
  }
}
