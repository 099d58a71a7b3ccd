// The upstream fixtures as the tests read them (rafs, and storage and fs over real
// images): paths of bootstraps and blobs (read in place, never copied into the repo),
// the v6 blob's table entry, and the expected v5 tree from `tree.json`, whose file
// holds `tree -J` output followed by an md5 list of the files' contents.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BlobInfo } from '../../../src/storage/types.js';
import { V5_FIXTURE, V6_FIXTURE } from '../../helpers/env.js';

export const V5_BOOTSTRAP = join(V5_FIXTURE, 'bootstrap');
export const V6_BOOTSTRAP = join(V6_FIXTURE, 'bootstrap');
/** The fixtures' blob directories (each blob file named by its id). */
export const V5_BLOBS = join(V5_FIXTURE, 'blobs');
export const V6_BLOBS = join(V6_FIXTURE, 'blobs');
export const V5_BLOB_ID = '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00';
export const V6_BLOB_ID = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';

/** The v6 fixture's one blob as its blob table describes it (docs/format.md §9.3). */
export const V6_BLOB_INFO: BlobInfo = {
  index: 0,
  blobId: V6_BLOB_ID,
  chunkSize: 0x100000,
  chunkCount: 2,
  compressedSize: 14554,
  uncompressedSize: 36864,
  compressor: 'zstd',
  digester: 'blake3',
  features: 0x7000_0021,
  readaheadOffset: 0,
  readaheadSize: 0,
  metaCiCompressor: 'none',
  metaCiOffset: 8314,
  metaCiCompressedSize: 32,
  metaCiUncompressedSize: 32,
  blobTocSize: 1024,
};

export function readV5(): Buffer {
  return readFileSync(V5_BOOTSTRAP);
}

export function readV6(): Buffer {
  return readFileSync(V6_BOOTSTRAP);
}

/** A node of `tree -J` output. */
export interface TreeJsonNode {
  type: 'directory' | 'file' | 'link' | 'report';
  name: string;
  target?: string;
  contents?: TreeJsonNode[];
}

/** The expected tree and the md5 of each file path (`/a/b`), from tree.json. */
export function readTreeJson(): { root: TreeJsonNode; md5: Map<string, string> } {
  const text = readFileSync(join(V5_FIXTURE, 'tree.json'), 'utf8');
  const end = text.indexOf('\n]\n');
  const nodes = JSON.parse(text.slice(0, end + 2)) as TreeJsonNode[];
  const md5 = new Map<string, string>();
  for (const line of text.slice(end + 3).split('\n')) {
    const m = /^([0-9a-f]{32})\s+(\/.*)$/.exec(line);
    if (m) md5.set(m[2], m[1]);
  }
  return { root: nodes[0], md5 };
}
