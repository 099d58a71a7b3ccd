// Running the builder the way users do (the CLI as a subprocess) and looking at what it
// built: `nydus-image unpack` + GNU tar, the Linux kernel mounting a v6 bootstrap with its
// blobs attached as loop devices (`mount -t erofs -o ro,device=/dev/loopN`), and this
// project's nydusd serving it through FUSE.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBootstrap } from '../../src/rafs/index.js';
import { isMounted, programArgv } from '../helpers/env.js';
import { runCommand, runProgram, type RunResult } from '../helpers/run.js';

/**
 * A scratch directory removed by `cleanup`: in /dev/shm when it exists (tmpfs creates and
 * removes thousands of small files far faster than a disk), else in the temp directory.
 */
export function scratch(prefix: string): { dir: string; cleanup(): void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, `builder-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Built {
  bootstrap: string;
  blobDir: string;
  json: {
    bootstrap: string;
    blobs: string[];
    blob_size: number;
    dedup: Record<string, number>;
    [k: string]: unknown;
  };
  run: RunResult;
}

/** `nydus-image create SOURCE -B <out>/bootstrap -D <out>/blobs -J ... <args>`; asserts success. */
export async function create(source: string, out: string, args: string[] = [], input?: string): Promise<Built> {
  const blobDir = join(out, 'blobs');
  mkdirSync(blobDir, { recursive: true });
  const bootstrap = join(out, 'bootstrap');
  const jsonPath = join(out, 'output.json');
  const run = await runProgram('nydus-image', ['create', source, '-B', bootstrap, '-D', blobDir, '-J', jsonPath, ...args], { input });
  assert.equal(run.code, 0, `create failed: ${run.stderr}`);
  return { bootstrap, blobDir, json: JSON.parse(readFileSync(jsonPath, 'utf8')), run };
}

/** Unpacks an image with `nydus-image unpack` and extracts it with GNU tar into `dest`. */
export async function unpackTo(bootstrap: string, blobDir: string, dest: string): Promise<void> {
  const tar = `${dest}.tar`;
  const r = await runProgram('nydus-image', ['unpack', bootstrap, '--blob-dir', blobDir, '--output', tar]);
  assert.equal(r.code, 0, `unpack failed: ${r.stderr}`);
  mkdirSync(dest, { recursive: true });
  const x = await runCommand('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tar, '-C', dest]);
  assert.equal(x.code, 0, `tar failed: ${x.stderr}`);
  rmSync(tar);
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await runCommand(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** A kernel mount of a v6 image; `close` unmounts and detaches the loop devices. */
export interface KernelMount {
  dir: string;
  close(): Promise<void>;
}

/**
 * Serves `bootstrap` with this project's nydusd (`--localfs-dir`, blobcache in
 * `stateDir`) at `dir`; `close` stops the daemon and makes sure nothing stays mounted.
 */
export async function nydusdMount(bootstrap: string, blobDir: string, dir: string, stateDir: string): Promise<KernelMount> {
  mkdirSync(dir, { recursive: true });
  mkdirSync(stateDir, { recursive: true });
  const [cmd, ...pre] = programArgv('nydusd');
  const child = spawn(cmd, [...pre, '--bootstrap', bootstrap, '--localfs-dir', blobDir, '--mountpoint', dir, '--state-dir', stateDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  for (let i = 0; !isMounted(dir); i++) {
    if (child.exitCode !== null || i > 300) {
      child.kill('SIGKILL');
      throw new Error(`nydusd did not mount ${dir}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    dir,
    async close() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (isMounted(dir)) await runCommand('umount', ['-l', dir]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * Mounts `bootstrap` with the kernel's EROFS driver, each blob of its blob table attached
 * read-only as a loop device, in slot order (`device=` once per blob).
 */
export async function kernelMount(bootstrap: string, blobDir: string, dir: string): Promise<KernelMount> {
  const sb = await openBootstrap(bootstrap);
  const loops: string[] = [];
  mkdirSync(dir, { recursive: true });
  try {
    for (const b of sb.blobs) loops.push(await must('losetup', ['-f', '--show', '-r', join(blobDir, b.blobId)]));
    const opts = ['ro', ...loops.map((l) => `device=${l}`)].join(',');
    await must('mount', ['-t', 'erofs', '-o', opts, bootstrap, dir]);
  } catch (err) {
    for (const l of loops) await runCommand('losetup', ['-d', l]);
    throw err;
  }
  return {
    dir,
    async close() {
      await runCommand('umount', [dir]);
      for (const l of loops) await runCommand('losetup', ['-d', l]);
    },
  };
}
