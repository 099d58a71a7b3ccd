// The persisted "which chunks of this blob are in the cache file" bitmap of blobcache
// (`<work_dir>/<blob_id>.blob.data.chunk_map`). The file is only ever replaced whole
// (temp file, fdatasync, rename, fsync of the directory), and carries the blob id, the
// chunk count and a sha256 over everything, so a torn, garbled, foreign or stale map is
// recognised on load and discarded: its chunks are refetched, never served.
//
// Layout (little-endian), 320-byte header then the bitmap:
//   0 magic "NTSCHMAP" | 8 u32 version (1) | 12 u32 chunk count | 16 u64 blob uncompressed size
//   24 u32 ready count | 28 u32 blob id length | 32 blob id (256 bytes, zero padded)
//   288 sha256(bytes [0,288) ++ bitmap) | 320 bitmap: bit i = byte i>>3, mask 1 << (i & 7)
import { createHash } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

const MAGIC = Buffer.from('NTSCHMAP', 'latin1');
const VERSION = 1;
/** Size of the fixed header before the bitmap. */
export const CHUNK_MAP_HEADER_SIZE = 320;
/** Longest blob id the header can hold, in bytes. */
export const MAX_BLOB_ID_BYTES = 256;
const CHECKSUM_OFFSET = 288;
let saveCounter = 0;

/** What a map must describe to be trusted for a blob. */
export interface ChunkMapIdentity {
  blobId: string;
  chunkCount: number;
  uncompressedSize: number;
}

/** The readiness bitmap of one blob's cache file, in memory. */
export class ChunkMap {
  readonly bits: Uint8Array;
  #ready = 0;

  constructor(readonly identity: ChunkMapIdentity) {
    this.bits = new Uint8Array(Math.ceil(identity.chunkCount / 8));
  }

  get readyCount(): number {
    return this.#ready;
  }

  get allReady(): boolean {
    return this.#ready === this.identity.chunkCount;
  }

  isSet(index: number): boolean {
    return index >= 0 && index < this.identity.chunkCount && (this.bits[index >> 3] & (1 << (index & 7))) !== 0;
  }

  /** Marks a chunk ready; returns false when it already was. */
  set(index: number): boolean {
    if (index < 0 || index >= this.identity.chunkCount || this.isSet(index)) return false;
    this.bits[index >> 3] |= 1 << (index & 7);
    this.#ready++;
    return true;
  }

  /** Marks a chunk not ready; returns false when it was not ready. */
  clear(index: number): boolean {
    if (!this.isSet(index)) return false;
    this.bits[index >> 3] &= ~(1 << (index & 7));
    this.#ready--;
    return true;
  }

  /** Forgets every chunk. */
  reset(): void {
    this.bits.fill(0);
    this.#ready = 0;
  }

  /** The file image of this map. */
  encode(): Buffer {
    const { blobId, chunkCount, uncompressedSize } = this.identity;
    const buf = Buffer.alloc(CHUNK_MAP_HEADER_SIZE + this.bits.length);
    MAGIC.copy(buf, 0);
    buf.writeUInt32LE(VERSION, 8);
    buf.writeUInt32LE(chunkCount, 12);
    buf.writeBigUInt64LE(BigInt(uncompressedSize), 16);
    buf.writeUInt32LE(this.#ready, 24);
    const id = Buffer.from(blobId, 'utf8');
    buf.writeUInt32LE(id.length, 28);
    id.copy(buf, 32);
    buf.set(this.bits, CHUNK_MAP_HEADER_SIZE);
    checksum(buf).copy(buf, CHECKSUM_OFFSET);
    return buf;
  }

  /**
   * Decodes a map file image for `identity`. Returns the map, or a reason why the image
   * cannot be trusted.
   */
  static decode(buf: Buffer, identity: ChunkMapIdentity): ChunkMap | string {
    const bitmapLen = Math.ceil(identity.chunkCount / 8);
    if (buf.length !== CHUNK_MAP_HEADER_SIZE + bitmapLen) {
      return `size ${buf.length}, expected ${CHUNK_MAP_HEADER_SIZE + bitmapLen}`;
    }
    if (!buf.subarray(0, 8).equals(MAGIC)) return 'bad magic';
    if (buf.readUInt32LE(8) !== VERSION) return `unknown version ${buf.readUInt32LE(8)}`;
    if (!checksum(buf).equals(buf.subarray(CHECKSUM_OFFSET, CHECKSUM_OFFSET + 32))) return 'checksum mismatch';
    const idLen = buf.readUInt32LE(28);
    const id = idLen <= MAX_BLOB_ID_BYTES ? buf.toString('utf8', 32, 32 + idLen) : '';
    if (id !== identity.blobId) return `blob id ${JSON.stringify(id)}, expected ${identity.blobId}`;
    if (buf.readUInt32LE(12) !== identity.chunkCount) return `chunk count ${buf.readUInt32LE(12)}, expected ${identity.chunkCount}`;
    if (buf.readBigUInt64LE(16) !== BigInt(identity.uncompressedSize)) return 'uncompressed size differs';
    const map = new ChunkMap(identity);
    map.bits.set(buf.subarray(CHUNK_MAP_HEADER_SIZE));
    const tail = identity.chunkCount & 7;
    if (tail !== 0 && (map.bits[bitmapLen - 1] & ~((1 << tail) - 1)) !== 0) return 'bits set past the last chunk';
    let ready = 0;
    for (const byte of map.bits) ready += popcount(byte);
    if (ready !== buf.readUInt32LE(24)) return 'ready count does not match the bitmap';
    map.#ready = ready;
    return map;
  }

  /**
   * Loads the map at `path`. A missing file gives an empty map; an untrusted one gives an
   * empty map and the reason it was discarded.
   */
  static async load(path: string, identity: ChunkMapIdentity): Promise<{ map: ChunkMap; discarded?: string }> {
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { map: new ChunkMap(identity) };
      throw err;
    }
    const decoded = ChunkMap.decode(buf, identity);
    if (typeof decoded === 'string') return { map: new ChunkMap(identity), discarded: decoded };
    return { map: decoded };
  }

  /** Durably replaces the file at `path` with this map. */
  async save(path: string): Promise<void> {
    // Unique per save: two caches (or daemons, during a hot upgrade) may share a work dir.
    const tmp = `${dirname(path)}/.${basename(path)}.${process.pid}.${++saveCounter}.tmp`;
    const image = this.encode();
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(image);
      await fh.datasync();
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await fh.close();
    await rename(tmp, path);
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

function checksum(image: Buffer): Buffer {
  return createHash('sha256')
    .update(image.subarray(0, CHECKSUM_OFFSET))
    .update(image.subarray(CHUNK_MAP_HEADER_SIZE))
    .digest();
}

function popcount(b: number): number {
  let n = 0;
  for (let x = b; x !== 0; x &= x - 1) n++;
  return n;
}
