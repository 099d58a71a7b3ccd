// Atomic placement of build outputs: everything is written to a hidden temp file beside
// its destination (`.NAME.partial-PID-N`) and renamed into place only when complete, so
// an interrupted build never leaves a file that looks finished. Live temp files are
// tracked so that a signal handler can remove them (`removeTempFiles`).
import { closeSync, copyFileSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BuildError } from '../errors.js';

/**
 * File modes as upstream nydus-image creates them: a file at a path the user named
 * (`--blob`, `--bootstrap`) is opened plainly, so 0666 less the umask; a file it names
 * itself inside `--blob-dir` comes from a mkstemp temp file renamed into place, so 0600.
 */
const NAMED_FILE_MODE = 0o666;
const BLOB_DIR_FILE_MODE = 0o600;

/** The mode of an output at `path`, which is `named` by the user or else placed in the blob dir. */
export function outputMode(named: boolean): number {
  return named ? NAMED_FILE_MODE : BLOB_DIR_FILE_MODE;
}

const live = new Set<string>();
let counter = 0;

/** A fresh temp path beside `finalPath`, tracked until placed or removed. */
export function tempPathFor(finalPath: string): string {
  const p = join(dirname(finalPath), `.${basename(finalPath)}.partial-${process.pid}-${counter++}`);
  live.add(p);
  return p;
}

/** Renames a finished temp file to its destination. */
export function placeFile(tmp: string, finalPath: string): void {
  try {
    renameSync(tmp, finalPath);
  } catch (err) {
    throw new BuildError('ERR_BUILD_SOURCE', `failed to place ${finalPath}: ${(err as Error).message}`, { cause: err });
  }
  live.delete(tmp);
}

/** Removes a temp file (ignoring one that is already gone). */
export function removeTemp(tmp: string): void {
  try {
    unlinkSync(tmp);
  } catch {
    // already gone
  }
  live.delete(tmp);
}

/** Copies `source` to `finalPath` through a temp file (ref images put their original layer in a blob directory). */
export function copyFileAtomic(source: string, finalPath: string): void {
  const tmp = tempPathFor(finalPath);
  try {
    copyFileSync(source, tmp);
    placeFile(tmp, finalPath);
  } catch (err) {
    removeTemp(tmp);
    throw new BuildError('ERR_BUILD_SOURCE', `failed to place the data blob ${finalPath}: ${(err as Error).message}`, { cause: err });
  }
}

/** Removes every temp file still live (for SIGINT/SIGTERM handlers). */
export function removeTempFiles(): void {
  for (const p of [...live]) removeTemp(p);
}

/** Writes `data` to `finalPath` atomically (temp file, fsync, rename), created with `mode` (less the umask). */
export function writeFileAtomic(finalPath: string, data: Buffer, mode: number): void {
  const tmp = tempPathFor(finalPath);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    placeFile(tmp, finalPath);
  } catch (err) {
    removeTemp(tmp);
    if (err instanceof BuildError) throw err;
    throw new BuildError('ERR_BUILD_SOURCE', `failed to write ${finalPath}: ${(err as Error).message}`, { cause: err });
  }
}
