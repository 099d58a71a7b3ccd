// Zran (gzip random access) as upstream lays it out in the blob meta
// (docs/format.md §7.4): a table of 40-byte inflate contexts, then their windows. A
// context is a checkpoint at a deflate block boundary of the original gzip stream
// (compressed offset, the pending bits of the byte before it, the 32 KiB window) and
// the span of stream that its chunks' bytes come from. Decoding inflates from the
// checkpoint with the system zlib (src/native/zran.c).
import { StorageError } from '../errors.js';
import { loadAddon } from '../util/addon.js';

export const ZRAN_CONTEXT_SIZE = 40;
export const ZRAN_WINDOW_SIZE = 32768;

/** One inflate context (upstream `ZranInflateContext`), with its window resolved. */
export interface ZranContext {
  /** Offset of the checkpoint in the gzip stream. */
  inOffset: number;
  /** Offset of the checkpoint in the inflated stream. */
  outOffset: number;
  /** Compressed bytes from the checkpoint through the end of the context's last chunk. */
  inLen: number;
  /** Inflated bytes from the checkpoint through the end of the context's last chunk. */
  outLen: number;
  /** Byte before `inOffset`, whose top `ctxBits` bits start the next block. */
  ctxByte: number;
  ctxBits: number;
  /** The inflate window at the checkpoint (empty at the start of a gzip member). */
  window: Buffer;
}

interface ZranAddon {
  inflateAt(input: Uint8Array, bits: number, byte: number, dict: Uint8Array, out: Uint8Array): number;
  indexerCreate(): unknown;
  indexerFeed(h: unknown, piece: Uint8Array): void;
  indexerStep(h: unknown, out: Uint8Array, state: Float64Array): number;
  indexerWindow(h: unknown, dst: Uint8Array): number;
}
let addon: ZranAddon | undefined;

/** The zlib part of the native addon (src/native/zran.c), loaded on first use. */
export function zranAddon(): ZranAddon {
  addon ??= loadAddon<ZranAddon>((m) => new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to load the zran inflater: ${m}`));
  return addon;
}

/**
 * Inflates `out.length` bytes starting at context `ctx`'s checkpoint from `input` (the
 * gzip stream from `ctx.inOffset` on). Throws ERR_STORAGE_DECOMPRESS unless exactly
 * that many bytes come out.
 */
export function inflateFromContext(ctx: ZranContext, input: Uint8Array, out: Buffer): void {
  const n = zranAddon().inflateAt(input, ctx.ctxBits & 7, ctx.ctxByte, ctx.window, out);
  if (n !== out.length) {
    throw new StorageError(
      'ERR_STORAGE_DECOMPRESS',
      n < 0
        ? `failed to inflate gzip data from the zran context at offset ${ctx.inOffset}: invalid deflate data`
        : `failed to inflate gzip data from the zran context at offset ${ctx.inOffset}: ${n} of ${out.length} bytes`,
    );
  }
}

function bad(detail: string): StorageError {
  return new StorageError('ERR_STORAGE_BAD_CHUNK', `failed to decode the zran context table: ${detail}`);
}

/** Decodes `count` contexts and their windows from `buf` (the table, then the windows). */
export function decodeZranTable(buf: Buffer, count: number): ZranContext[] {
  const dicts = count * ZRAN_CONTEXT_SIZE;
  if (dicts > buf.length) throw bad(`${count} contexts do not fit ${buf.length} bytes`);
  const out: ZranContext[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * ZRAN_CONTEXT_SIZE;
    const dictOffset = Number(buf.readBigUInt64LE(o + 16));
    const dictSize = buf.readUInt32LE(o + 32);
    if (dictSize > ZRAN_WINDOW_SIZE || dicts + dictOffset + dictSize > buf.length) throw bad(`context ${i} window out of range`);
    const ctxBits = buf[o + 37];
    if (ctxBits > 7) throw bad(`context ${i} has ${ctxBits} pending bits`);
    out.push({
      inOffset: Number(buf.readBigUInt64LE(o)),
      outOffset: Number(buf.readBigUInt64LE(o + 8)),
      inLen: buf.readUInt32LE(o + 24),
      outLen: buf.readUInt32LE(o + 28),
      ctxByte: buf[o + 36],
      ctxBits,
      window: buf.subarray(dicts + dictOffset, dicts + dictOffset + dictSize),
    });
  }
  return out;
}

/** Encodes contexts as upstream stores them: the 40-byte entries, then every window in order. */
export function encodeZranTable(contexts: readonly ZranContext[]): Buffer {
  const head = Buffer.alloc(contexts.length * ZRAN_CONTEXT_SIZE);
  let dictOffset = 0;
  contexts.forEach((c, i) => {
    const o = i * ZRAN_CONTEXT_SIZE;
    head.writeBigUInt64LE(BigInt(c.inOffset), o);
    head.writeBigUInt64LE(BigInt(c.outOffset), o + 8);
    head.writeBigUInt64LE(BigInt(dictOffset), o + 16);
    head.writeUInt32LE(c.inLen, o + 24);
    head.writeUInt32LE(c.outLen, o + 28);
    head.writeUInt32LE(c.window.length, o + 32);
    head[o + 36] = c.ctxByte;
    head[o + 37] = c.ctxBits;
    dictOffset += c.window.length;
  });
  return Buffer.concat([head, ...contexts.map((c) => c.window)]);
}
