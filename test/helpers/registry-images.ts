// Images for the registry tests: built from generated directories with the project's own
// `nydus-image create` (as a user would), pushed to a test registry, and described by a
// nydusd config that reads them through the registry backend; plain OCI images put as
// they are. Also a collector of the network backends' diagnostics events.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Owner } from './registry-server.js';
import { normalizeConfig } from '../../src/config/parse.js';
import type { NydusConfig } from '../../src/config/types.js';
import type { DistributionClient } from '../../src/registry/distribution.js';
import { MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_MANIFEST, type Descriptor } from '../../src/registry/nydus-manifest.js';
import { pushImage, type PushResult } from '../../src/registry/push.js';
import type { BackendEvent } from '../../src/storage/backend/events.js';
import { runProgram } from './run.js';

/** A built image: its bootstrap and the directory of its blobs. */
export interface BuiltImage {
  bootstrap: string;
  blobDir: string;
  /** Blob ids, in blob-table order. */
  blobIds: string[];
  /** Total bytes of the blob files. */
  blobBytes: number;
  /** The source directory. */
  source: string;
}

const SENTENCES = ((): Buffer[] => {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'nydus', 'registry', 'chunk', 'blob', 'lazy', 'mount', 'image', 'layer'];
  let x = 7;
  return Array.from({ length: 4096 }, () => {
    const n = 6 + (x % 9);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      parts.push(words[(x >>> 8) % words.length]);
    }
    return Buffer.from(parts.join(' ') + '\n');
  });
})();

/** `n` bytes that compress well (lines of words), deterministic in `seed`, different per seed. */
export function textLike(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  let i = 0;
  while (i < n) {
    x = (x * 1664525 + 1013904223) >>> 0;
    i += SENTENCES[x >>> 20].copy(out, i);
  }
  return out;
}

/** Builds a RAFS image of `files` (path → contents) with `nydus-image create`; removed when the test ends. */
/** File contents, or contents with a mode (e.g. 0o755 for programs). */
export type FileSpec = Buffer | string | { data: Buffer | string; mode: number };

export async function buildImage(t: Owner, files: Record<string, FileSpec>, args: string[] = [], input?: string): Promise<BuiltImage> {
  const dir = mkdtempSync('/tmp/registry-img-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const source = join(dir, 'src');
  const blobDir = join(dir, 'blobs');
  mkdirSync(source);
  mkdirSync(blobDir);
  for (const [path, spec] of Object.entries(files)) {
    const full = join(source, path);
    mkdirSync(dirname(full), { recursive: true });
    if (typeof spec === 'object' && !Buffer.isBuffer(spec)) writeFileSync(full, spec.data, { mode: spec.mode });
    else writeFileSync(full, spec);
  }
  const bootstrap = join(dir, 'image.boot');
  const r = await runProgram('nydus-image', ['create', '--bootstrap', bootstrap, '--blob-dir', blobDir, ...args, source], { timeoutMs: 600_000, input });
  if (r.code !== 0) throw new Error(`nydus-image create failed (${r.code}): ${r.stderr}`);
  const blobIds = JSON.parse(/data blobs: (\[.*\])/.exec(r.stdout)?.[1] ?? '[]') as string[];
  let blobBytes = 0;
  for (const name of readdirSync(blobDir)) blobBytes += statSync(join(blobDir, name)).size;
  return { bootstrap, blobDir, blobIds, blobBytes, source };
}

/** Random (incompressible) bytes. */
export function random(n: number): Buffer {
  return randomBytes(n);
}

/** Puts an OCI image under `tag`: its config and a manifest of `layers` (blobs already pushed). Answers the manifest's descriptor. */
export async function putOciImage(client: DistributionClient, tag: string, layers: Descriptor[], config: Record<string, unknown>): Promise<Descriptor> {
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;
  await client.pushBlob(configDigest, configBytes.length, () => configBytes);
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: configBytes.length }, layers }),
  );
  const digest = await client.putManifest(tag, MEDIA_TYPE_OCI_MANIFEST, manifest);
  return { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest, size: manifest.length };
}

/** Pushes `image` to `host/repo:tag` over plain http. */
export function pushTo(image: BuiltImage, host: string, repo: string, tag = 'latest', auth?: string): Promise<PushResult> {
  return pushImage({ bootstrap: image.bootstrap, blobDir: image.blobDir, target: `${host}/${repo}:${tag}`, plainHttp: true, auth, retryLimit: 0 });
}

/** A v2 nydusd config reading `host/repo` over plain http, with `registry` fields and `rest` merged in. */
export function registryConfig(host: string, repo: string, registry: Record<string, unknown> = {}, rest: Record<string, unknown> = {}): NydusConfig {
  return normalizeConfig({
    version: 2,
    backend: { type: 'registry', registry: { scheme: 'http', host, repo, timeout: 5, connect_timeout: 2, ...registry } },
    ...rest,
  });
}

/** Collects every event of the network backends' channels until the test ends. */
export function collectEvents(t: Owner): BackendEvent[] {
  const events: BackendEvent[] = [];
  const names = ['nydus:storage:backend-retry', 'nydus:storage:backend-error', 'nydus:storage:backend-health'];
  const fn = (msg: unknown): void => void events.push(msg as BackendEvent);
  for (const n of names) subscribe(n, fn);
  t.after(() => {
    for (const n of names) unsubscribe(n, fn);
  });
  return events;
}
