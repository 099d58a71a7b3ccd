// Encodes directory listings straight into a reply buffer as fuse_dirent or
// fuse_direntplus records (8-byte aligned), so a listing makes no per-entry
// objects. The FileSystem fills it through the DirentSink interface.
import { FuseError } from '../errors.js';
import { Size, direntAlign } from './abi.js';
import type { Attr, DirentSink } from './filesystem.js';
import { encodeEntryOut, type CacheTimeouts } from './reply.js';
import { writeU64 } from './request.js';

/** FUSE_NAME_MAX: the kernel rejects longer names in a listing. */
const NAME_MAX = 1024;

/** A reply page being filled with dirents. */
export class DirentBuffer implements DirentSink {
  readonly plus: boolean;
  readonly buf: Buffer;
  readonly #limit: number;
  readonly #timeouts: CacheTimeouts;
  /** Bytes used so far. */
  used = 0;

  constructor(buf: Buffer, limit: number, plus: boolean, timeouts: CacheTimeouts) {
    this.buf = buf;
    this.#limit = Math.min(limit, buf.length);
    this.plus = plus;
    this.#timeouts = timeouts;
  }

  add(name: Buffer | string, ino: number, mode: number, nextOffset: number, attr?: Attr): boolean {
    const nameLen = typeof name === 'string' ? Buffer.byteLength(name) : name.length;
    if (nameLen === 0 || nameLen > NAME_MAX) {
      throw new FuseError('ERR_FUSE_PROTOCOL', `failed to list directory entry: name length ${nameLen} is not in 1..${NAME_MAX}`);
    }
    if (name.indexOf('/') >= 0) {
      throw new FuseError('ERR_FUSE_PROTOCOL', 'failed to list directory entry: name contains "/"');
    }
    const head = this.plus ? Size.DIRENTPLUS_NAME_OFFSET : Size.DIRENT_NAME_OFFSET;
    const rec = direntAlign(head + nameLen);
    if (this.used + rec > this.#limit) return false;
    const b = this.buf;
    let off = this.used;
    if (this.plus) {
      if (attr) encodeEntryOut(b, off, attr, this.#timeouts);
      else b.fill(0, off, off + Size.ENTRY_OUT); // node id 0: the kernel skips its lookup cache
      off += Size.ENTRY_OUT;
    }
    writeU64(b, off, ino);
    writeU64(b, off + 8, nextOffset);
    b.writeUInt32LE(nameLen, off + 16);
    b.writeUInt32LE((mode >>> 12) & 0xf, off + 20);
    const nameAt = off + Size.DIRENT_NAME_OFFSET;
    if (typeof name === 'string') b.write(name, nameAt, nameLen, 'utf8');
    else name.copy(b, nameAt);
    b.fill(0, nameAt + nameLen, this.used + rec);
    this.used += rec;
    return true;
  }
}
