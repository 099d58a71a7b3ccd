// Helpers of the filesystem tests: configs whose blobcache lives in a temp dir (never in
// the shared fixtures), ImageFs over a fixture or a synthetic image with a real blob
// file, a DirentSink that records entries, and the expected bytes of synthetic files.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Attr, DirentSink } from '../../src/fuse/filesystem.js';
import { ImageFs } from '../../src/fs/image-fs.js';
import { parseConfig } from '../../src/config/parse.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { createStorage, type Storage } from '../../src/storage/factory.js';
import { buildV5 } from '../rafs/helpers/synth-v5.js';
import { DEFAULT_BLOB_ID, numberTree, type SynthNode } from '../rafs/helpers/synth.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `fs-${prefix}-`));
}

/** A v2 config JSON: localfs blobs in `blobDir`, blobcache in `workDir`. */
export function configJson(blobDir: string, workDir: string, rafs: Record<string, unknown> = {}, cache: Record<string, unknown> = {}): string {
  return JSON.stringify({
    version: 2,
    backend: { type: 'localfs', localfs: { dir: blobDir } },
    cache: { type: 'blobcache', filecache: { work_dir: workDir }, ...cache },
    rafs,
  });
}

export interface OpenedImage {
  fs: ImageFs;
  storage: Storage;
  close(): Promise<void>;
}

/** ImageFs over `bootstrap` with blobs in `blobDir` (cache in a fresh temp dir). */
export async function openImage(bootstrap: string, blobDir: string, opts: { rafs?: Record<string, unknown>; onReadError?: (e: unknown) => void } = {}): Promise<OpenedImage> {
  const work = tempDir('cache');
  const config = parseConfig(configJson(blobDir, work, opts.rafs));
  const sb = await openBootstrap(bootstrap);
  const storage = await createStorage(config, sb);
  const fs = new ImageFs(sb, storage.reader, {
    enableXattr: config.rafs.enable_xattr,
    uid: 4242,
    gid: 4343,
    startTime: 1_700_000_000,
    onReadError: opts.onReadError,
  });
  return {
    fs,
    storage,
    async close() {
      await storage.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Records what a listing added; accepts `limit` entries, then reports full. */
export class ListSink implements DirentSink {
  readonly entries: { name: string; ino: number; mode: number; next: number; attr?: Attr }[] = [];
  constructor(
    readonly plus = false,
    readonly limit = Infinity,
  ) {}
  add(name: Buffer | string, ino: number, mode: number, nextOffset: number, attr?: Attr): boolean {
    if (this.entries.length >= this.limit) return false;
    this.entries.push({ name: String(name), ino, mode, next: nextOffset, attr });
    return true;
  }
}

/** The bytes of chunk `k` of a synthetic file (a pattern no two chunks share). */
export function chunkBytes(path: string, k: number, len: number): Buffer {
  let seed = k * 131 + 7;
  for (const c of path) seed = (seed * 33 + c.charCodeAt(0)) >>> 0;
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (seed + i * 31 + (i >>> 8)) & 0xff;
  return b;
}

export interface SynthOnDisk {
  dir: string;
  bootstrap: string;
  blobDir: string;
  chunkSize: number;
  /** Bytes `[offset, offset + len)` a synthetic file must read as (zeros in holes, short at EOF). */
  expected(path: string, offset: number, len: number): Buffer;
  close(): void;
}

/**
 * Writes a synthetic v5 image (synth-v5.ts) and its uncompressed blob, whose chunks hold
 * chunkBytes() in the order the builder lays them out. Its digests are invented: read
 * it with digest validation off.
 */
export function writeSynthV5(root: SynthNode, chunkSize = 0x100000): SynthOnDisk {
  const dir = tempDir('synth');
  const blobDir = join(dir, 'blobs');
  mkdirSync(blobDir);
  const image = buildV5(root, { chunkSize });
  const bootstrap = join(dir, 'bootstrap');
  writeFileSync(bootstrap, image.bytes);
  const nodes = numberTree(root);
  const parts: Buffer[] = [];
  const files = new Map<string, { size: number; holes: Set<number> }>();
  for (const n of nodes) {
    if (n.node.type !== 'file' || n.primary !== n.index) continue;
    const size = n.node.size ?? 0;
    const holes = new Set(n.node.holes ?? []);
    for (let k = 0; k * chunkSize < size; k++) {
      if (!holes.has(k)) parts.push(chunkBytes(n.path, k, Math.min(chunkSize, size - k * chunkSize)));
    }
    files.set(n.path, { size, holes });
  }
  for (const n of nodes) {
    if (n.node.type === 'file' && n.primary !== n.index) files.set(n.path, files.get(nodes[n.primary - 1].path)!);
  }
  writeFileSync(join(blobDir, DEFAULT_BLOB_ID), Buffer.concat(parts));
  const primaryPath = new Map(nodes.filter((n) => n.node.type === 'file').map((n) => [n.path, nodes[n.primary - 1].path]));
  return {
    dir,
    bootstrap,
    blobDir,
    chunkSize,
    expected(path, offset, len) {
      const f = files.get(path);
      if (!f) throw new Error(`no synthetic file ${path}`);
      const end = Math.min(offset + len, f.size);
      const out = Buffer.alloc(Math.max(0, end - offset));
      for (let pos = offset; pos < end; ) {
        const k = Math.floor(pos / chunkSize);
        const cEnd = Math.min((k + 1) * chunkSize, end);
        if (!f.holes.has(k)) {
          const data = chunkBytes(primaryPath.get(path)!, k, Math.min(chunkSize, f.size - k * chunkSize));
          data.copy(out, pos - offset, pos - k * chunkSize, cEnd - k * chunkSize);
        }
        pos = cEnd;
      }
      return out;
    },
    close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
