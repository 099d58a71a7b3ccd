// Loop devices for the erofs fs driver, through the addon's ioctls (src/native/
// block_mount.c): attach a file read-only with autoclear, so the device goes away at its
// last close (ours, then the erofs mount's) and neither a failed mount nor a crash can
// leave one behind; detach one; list the attached ones by backing file, from sysfs.
import { readdir, readFile } from 'node:fs/promises';
import { DaemonError } from '../errors.js';
import { closeFd, native, systemError } from '../native/index.js';

/** An attached loop device, held by `fd` until released. */
export interface HeldLoop {
  /** N of /dev/loopN. */
  readonly index: number;
  readonly path: string;
  /** Whether the kernel reads the backing file with O_DIRECT (no second page cache). */
  readonly directIo: boolean;
  /** Drops our hold: the device detaches itself once nothing else has it open. */
  release(): void;
}

/** A loop device as sysfs shows it. */
export interface LoopInfo {
  index: number;
  /** The backing file as the kernel names it (a deleted file ends in " (deleted)"). */
  backingFile: string;
  directIo: boolean;
}

export function loopDevice(index: number): string {
  return `/dev/loop${index}`;
}

/** Attaches `path` read-only (with `directIo`, when the file allows it); `blockSize` 0 keeps 512. */
export async function attachLoop(path: string, opts: { blockSize: number; directIo: boolean }): Promise<HeldLoop> {
  let got: { index: number; fd: number; directIo: boolean };
  try {
    got = await native().loopAttach(path, opts.directIo, opts.blockSize);
  } catch (err) {
    const cause = systemError(err);
    throw new DaemonError('ERR_DAEMON_EROFS', `failed to attach ${path} to a loop device: ${cause.message}`, { cause });
  }
  let held = true;
  return {
    index: got.index,
    path,
    directIo: got.directIo,
    release: () => {
      if (!held) return;
      held = false;
      closeFd(got.fd);
    },
  };
}

/** Asks /dev/loop<index> to detach (at once when unused, else at its last close). */
export async function detachLoop(index: number): Promise<void> {
  try {
    await native().loopDetach(index);
  } catch (err) {
    const cause = systemError(err);
    if (cause.code === 'ENXIO' || cause.code === 'ENOENT') return; // not attached any more
    throw new DaemonError('ERR_DAEMON_EROFS', `failed to detach ${loopDevice(index)}: ${cause.message}`, { cause });
  }
}

/** Every attached loop device. */
export async function listLoops(): Promise<LoopInfo[]> {
  const names = await readdir('/sys/block').catch(() => [] as string[]);
  const out: LoopInfo[] = [];
  await Promise.all(
    names.map(async (name) => {
      const m = /^loop(\d+)$/.exec(name);
      if (m === null) return;
      const dir = `/sys/block/${name}/loop`;
      const backing = await readFile(`${dir}/backing_file`, 'utf8').catch(() => undefined);
      if (backing === undefined) return; // not attached
      const dio = await readFile(`${dir}/dio`, 'utf8').catch(() => '0');
      out.push({ index: Number(m[1]), backingFile: backing.trimEnd(), directIo: dio.trim() === '1' });
    }),
  );
  return out.sort((a, b) => a.index - b.index);
}
