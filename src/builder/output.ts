// Atomic placement of build outputs: everything is written to a hidden temp file beside
// its destination (`.NAME.partial-PID-N`) and renamed into place only when complete, so
// an interrupted build never leaves a file that looks finished. Live temp files are
// tracked so that a signal handler can remove them (`removeTempFiles`). An output that
// already exists as a FIFO or a device (the converter's) is written in place instead.
import { closeSync, copyFileSync, fsyncSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
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

/** Whether `path` exists and is neither a regular file nor a directory (a FIFO, a device). */
export function isSpecialFile(path: string): boolean {
  const st = statSync(path, { throwIfNoEntry: false });
  return st !== undefined && !st.isFile() && !st.isDirectory();
}

/**
 * An output written front to back with no seek, so that it may be a FIFO the caller
 * reads while the build runs (written in place and never removed); any other path gets
 * a temp file, placed by `commit` under a name that may be known only at the end.
 */
export class SequentialOutput {
  private constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    private readonly tmp: string | undefined,
  ) {}

  /**
   * Opens the output for `path`, created with `mode` (less the umask); `inPlace` (by
   * default: when `path` is a FIFO or a device the user named) writes it directly.
   */
  static async open(path: string, mode: number, inPlace = isSpecialFile(path)): Promise<SequentialOutput> {
    if (inPlace) return new SequentialOutput(await open(path, 'w'), path, undefined);
    const tmp = tempPathFor(path);
    try {
      return new SequentialOutput(await open(tmp, 'wx', mode), path, tmp);
    } catch (err) {
      removeTemp(tmp);
      throw new BuildError('ERR_BUILD_SOURCE', `failed to create ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async write(data: Buffer): Promise<void> {
    try {
      for (let off = 0; off < data.length; ) off += (await this.fh.write(data, off, data.length - off, null)).bytesWritten;
    } catch (err) {
      throw new BuildError('ERR_BUILD_SOURCE', `failed to write ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Closes, and places a temp file at `finalPath` (the path it was opened for by default). */
  async commit(finalPath = this.path): Promise<void> {
    await this.fh.close();
    if (this.tmp !== undefined) placeFile(this.tmp, finalPath);
  }

  /** Closes and removes a temp file; a special file is only closed. */
  async discard(): Promise<void> {
    try {
      await this.fh.close();
    } catch {
      // already closed
    }
    if (this.tmp !== undefined) removeTemp(this.tmp);
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
