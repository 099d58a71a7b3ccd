// The table of contents of an eStargz layer (`stargz.index.json`, containerd's
// stargz-snapshotter format, docs/estargz.md there): where it is in a layer (the footer,
// a last empty gzip member whose extra field holds the TOC's offset), how it is read
// (one gzip member holding a one-entry tar), and the checks its entries must pass
// before they describe an image.
import { open, readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { BuildError } from '../errors.js';
import { TarReader } from '../util/tar-reader.js';

/** One TOC entry, as the JSON holds it (fields this builder reads). */
export interface TocEntry {
  name: string;
  type: 'dir' | 'reg' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'chunk';
  size: number;
  modtime?: string;
  linkName: string;
  mode: number;
  uid: number;
  gid: number;
  devMajor: number;
  devMinor: number;
  /** Name → base64 value. */
  xattrs: Record<string, string>;
  /** Offset of the gzip member holding the chunk (reg and chunk entries). */
  offset: number;
  chunkOffset: number;
  /** 0 on the last (or only) chunk of a file: it runs to the file's end. */
  chunkSize: number;
  chunkDigest: string;
  innerOffset: number;
}

export interface EstargzLayerToc {
  entries: TocEntry[];
  /** Offset of the TOC's gzip member: where the last chunk's member ends at the latest. */
  tocOffset: number;
  layerSize: number;
}

const TYPES = new Set(['dir', 'reg', 'symlink', 'hardlink', 'char', 'block', 'fifo', 'chunk']);
/** eStargz's footer (51 bytes) and the legacy stargz one (47 bytes): the last FOOTER_SIZE bytes of a layer hold either. */
export const FOOTER_SIZE = 51;
const LEGACY_FOOTER_SIZE = 47;
/** The TOC is metadata of a layer: more than this is refused rather than held in memory. */
export const MAX_TOC_BYTES = 256 << 20;

function bad(where: string, detail: string): BuildError {
  return new BuildError('ERR_BUILD_SOURCE', `failed to read the eStargz TOC of ${where}: ${detail}`);
}

/** The TOC's offset from the last bytes of a layer (at least FOOTER_SIZE), and the footer's size. */
export function parseFooter(tail: Buffer, where: string): { tocOffset: number; footerSize: number } {
  const footer = findFooter(tail);
  if (footer === undefined) throw bad(where, 'no eStargz footer at the end of the layer (is it an eStargz layer? a plain .tar.gz builds with -t targz-ref)');
  return footer;
}

/** parseFooter's answer, or undefined when the bytes end in no eStargz footer (a plain .tar.gz). */
export function findFooter(tail: Buffer): { tocOffset: number; footerSize: number } | undefined {
  for (const footerSize of [FOOTER_SIZE, LEGACY_FOOTER_SIZE]) {
    if (tail.length < footerSize) continue;
    const f = tail.subarray(tail.length - footerSize);
    if (f[0] !== 0x1f || f[1] !== 0x8b || (f[3] & 0x04) === 0) continue;
    // eStargz: extra subfield "SG" of 22 bytes; legacy: the 22 bytes are the whole extra field.
    const payload = footerSize === FOOTER_SIZE ? f.subarray(16, 38) : f.subarray(12, 34);
    if (footerSize === FOOTER_SIZE && (f[12] !== 0x53 || f[13] !== 0x47)) continue;
    const text = payload.toString('latin1');
    if (!/^[0-9a-f]{16}STARGZ$/.test(text)) continue;
    return { tocOffset: parseInt(text.slice(0, 16), 16), footerSize };
  }
  return undefined;
}

/** The bytes `[start, end)` of a layer of `layerSize` bytes that hold its TOC member, from the footer `parseFooter` read. */
export function tocMemberSpan(footer: { tocOffset: number; footerSize: number }, layerSize: number, where: string): { start: number; end: number } {
  const end = layerSize - footer.footerSize;
  if (footer.tocOffset >= end || end - footer.tocOffset > MAX_TOC_BYTES) throw bad(where, `TOC offset ${footer.tocOffset} is outside the layer's ${layerSize} bytes`);
  return { start: footer.tocOffset, end };
}

/** Reads the TOC of the eStargz layer at `path`. */
export async function readLayerToc(path: string): Promise<EstargzLayerToc> {
  const fh = await open(path, 'r');
  let compressed: Buffer;
  let layerSize: number;
  let tocOffset: number;
  try {
    layerSize = (await fh.stat()).size;
    const tail = Buffer.alloc(Math.min(FOOTER_SIZE, layerSize));
    await fh.read(tail, 0, tail.length, layerSize - tail.length);
    const span = tocMemberSpan(parseFooter(tail, path), layerSize, path);
    tocOffset = span.start;
    compressed = Buffer.alloc(span.end - span.start);
    await fh.read(compressed, 0, compressed.length, tocOffset);
  } finally {
    await fh.close();
  }
  return { entries: parseToc(await tocJsonOfMember(compressed, path), path), tocOffset, layerSize };
}

/** The `stargz.index.json` bytes of a TOC member (one gzip member holding a one-entry tar). */
export async function tocJsonOfMember(compressed: Buffer, where: string): Promise<Buffer> {
  let tar: Buffer;
  try {
    tar = gunzipSync(compressed, { maxOutputLength: MAX_TOC_BYTES });
  } catch (err) {
    throw bad(where, `the TOC member does not inflate: ${(err as Error).message}`);
  }
  const reader = new TarReader((async function* () {
    yield tar;
  })());
  const m = await reader.next();
  if (!m || m.kind !== 'file' || m.path.toString('latin1') !== 'stargz.index.json') throw bad(where, 'the TOC member holds no stargz.index.json');
  return reader.read(m.size);
}

/** Reads a TOC saved on its own (`estargztoc-ref`). */
export async function readTocFile(path: string): Promise<TocEntry[]> {
  let json: Buffer;
  try {
    const fh = await open(path, 'r');
    try {
      if ((await fh.stat()).size > MAX_TOC_BYTES) throw bad(path, `larger than ${MAX_TOC_BYTES} bytes`);
    } finally {
      await fh.close();
    }
    json = await readFile(path);
  } catch (err) {
    if (err instanceof BuildError) throw err;
    throw new BuildError('ERR_BUILD_SOURCE', `failed to build from ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseToc(json, path);
}

function uint(v: unknown, what: string, where: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(where, `${what} ${JSON.stringify(v)} is not a non-negative integer`);
  return v;
}

function str(v: unknown, what: string, where: string): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') throw bad(where, `${what} is not a string`);
  return v;
}

/** Parses and checks the TOC JSON: version 1, typed fields, digests where data is. */
export function parseToc(json: Buffer, where: string): TocEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw bad(where, `not JSON: ${(err as Error).message}`);
  }
  const d = doc as { version?: unknown; entries?: unknown };
  if (typeof doc !== 'object' || doc === null || d.version !== 1) throw bad(where, `unsupported TOC version ${JSON.stringify(d?.version)}`);
  if (!Array.isArray(d.entries) || d.entries.length === 0) throw bad(where, 'the TOC has no entries');
  return d.entries.map((raw: unknown, i: number): TocEntry => {
    const e = raw as Record<string, unknown>;
    const at = `entry ${i}`;
    if (typeof e !== 'object' || e === null) throw bad(where, `${at} is not an object`);
    const name = str(e.name, `${at} name`, where);
    const type = str(e.type, `${at} type`, where);
    if (name === '') throw bad(where, `${at} has no name`);
    if (!TYPES.has(type)) throw bad(where, `${at} (${JSON.stringify(name)}) has unknown type ${JSON.stringify(type)}`);
    const xattrs = e.xattrs ?? {};
    if (typeof xattrs !== 'object' || xattrs === null || Object.values(xattrs).some((v) => typeof v !== 'string')) {
      throw bad(where, `${at} (${JSON.stringify(name)}) has malformed xattrs`);
    }
    const entry: TocEntry = {
      name,
      type: type as TocEntry['type'],
      size: uint(e.size, `${at} size`, where),
      modtime: e.modtime === undefined ? undefined : str(e.modtime, `${at} modtime`, where),
      linkName: str(e.linkName, `${at} linkName`, where),
      mode: uint(e.mode, `${at} mode`, where),
      uid: uint(e.uid, `${at} uid`, where),
      gid: uint(e.gid, `${at} gid`, where),
      devMajor: uint(e.devMajor, `${at} devMajor`, where),
      devMinor: uint(e.devMinor, `${at} devMinor`, where),
      xattrs: xattrs as Record<string, string>,
      offset: uint(e.offset, `${at} offset`, where),
      chunkOffset: uint(e.chunkOffset, `${at} chunkOffset`, where),
      chunkSize: uint(e.chunkSize, `${at} chunkSize`, where),
      chunkDigest: str(e.chunkDigest, `${at} chunkDigest`, where),
      innerOffset: uint(e.innerOffset, `${at} innerOffset`, where),
    };
    const data = (type === 'reg' && entry.size > 0) || type === 'chunk';
    if (data && !/^sha256:[0-9a-f]{64}$/.test(entry.chunkDigest)) throw bad(where, `${at} (${JSON.stringify(name)}) has no sha256 chunkDigest`);
    if ((type === 'symlink' || type === 'hardlink') && entry.linkName === '') throw bad(where, `${at} (${JSON.stringify(name)}) has an empty link target`);
    if (type === 'chunk' && entry.chunkOffset === 0) throw bad(where, `${at} (${JSON.stringify(name)}) is a chunk at file offset 0`);
    // Several payloads in one gzip stream (newer writers' small-file packing) would need a
    // different read (inflate past the others): refused by name.
    if (entry.innerOffset !== 0) throw bad(where, `${at} (${JSON.stringify(name)}) uses innerOffset, which this builder does not support`);
    return entry;
  });
}
