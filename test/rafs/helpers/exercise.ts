// Drives every reader entry point over a (possibly hostile) bootstrap and insists that
// each one either succeeds or throws RafsFormatError: parse, full validation, a walk
// reading every attr, xattr, symlink, directory and chunk list, blob chunk lists,
// prefetch list, counts and the superblock JSON. Allocations made meanwhile through the
// public Buffer allocators are recorded, so tests can bound them by the input size.
import assert from 'node:assert/strict';
import { RafsFormatError } from '../../../src/errors.js';
import { parseBootstrap, validateMetadata, walk, type RafsSuper } from '../../../src/rafs/index.js';

export function assertFormatError(err: unknown, what: string): void {
  if (!(err instanceof RafsFormatError)) {
    assert.fail(`${what}: expected RafsFormatError, got ${(err as Error)?.stack ?? String(err)}`);
  }
}

function attempt(what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    assertFormatError(err, what);
  }
}

/** What one exercise did. */
export interface Outcome {
  parsed: boolean;
  valid: boolean;
  entries: number;
}

function readEverything(sb: RafsSuper): number {
  let entries = 0;
  attempt('walk', () => {
    for (const e of walk(sb)) {
      entries++;
      const type = e.attr.mode & 0o170000;
      attempt('xattrs', () => {
        for (const name of sb.listXattrs(e.ino)) sb.getXattr(e.ino, name);
      });
      if (type === 0o120000) attempt('readlink', () => sb.readlink(e.ino));
      if (type === 0o100000) attempt('fileChunks', () => sb.fileChunks(e.ino, 0, e.attr.size));
      if (type === 0o040000) {
        attempt('directory', () => {
          sb.childCount(e.ino);
          sb.parentOf(e.ino);
          for (const d of sb.readdir(e.ino)) sb.lookup(e.ino, d.name);
        });
      }
    }
  });
  for (let i = 0; i < sb.blobs.length; i++) attempt('blobChunks', () => sb.blobChunks(i));
  attempt('prefetchList', () => sb.prefetchList());
  attempt('inodeCount', () => sb.inodeCount);
  attempt('superblockJson', () => JSON.stringify(sb.superblockJson()));
  return entries;
}

export async function exercise(bytes: Buffer): Promise<Outcome> {
  let sb: RafsSuper;
  try {
    sb = parseBootstrap(bytes);
  } catch (err) {
    assertFormatError(err, 'parseBootstrap');
    return { parsed: false, valid: false, entries: 0 };
  }
  let valid = true;
  try {
    await validateMetadata(sb);
  } catch (err) {
    assertFormatError(err, 'validateMetadata');
    valid = false;
  }
  return { parsed: true, valid, entries: readEverything(sb) };
}

type Alloc = (size: number, ...rest: never[]) => Buffer;

/**
 * Runs `fn` with Buffer.alloc/allocUnsafe/allocUnsafeSlow/concat instrumented; resolves
 * to the largest single allocation seen.
 */
export async function largestAllocation(fn: () => Promise<void>): Promise<number> {
  const B = Buffer as unknown as Record<string, Alloc>;
  const names = ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const;
  const saved = names.map((n) => B[n]);
  const savedConcat = Buffer.concat;
  let max = 0;
  names.forEach((n, i) => {
    B[n] = ((size: number, ...rest: never[]) => {
      max = Math.max(max, size);
      return saved[i].call(Buffer, size, ...rest);
    }) as Alloc;
  });
  Buffer.concat = (list: readonly Uint8Array[], total?: number) => {
    max = Math.max(max, total ?? list.reduce((s, b) => s + b.length, 0));
    return savedConcat.call(Buffer, list, total);
  };
  try {
    await fn();
  } finally {
    names.forEach((n, i) => (B[n] = saved[i]));
    Buffer.concat = savedConcat;
  }
  return max;
}
