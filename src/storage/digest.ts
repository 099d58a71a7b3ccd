// Chunk digests: sha256 (node:crypto, OpenSSL) and blake3-256 (hash-wasm). One-shot
// digests reuse a single blake3 instance, since hashing is synchronous and calls never
// interleave; whole-blob hashing uses a hasher of its own that is fed piece by piece.
import { createHash, hash as oneShotHash } from 'node:crypto';
import { createBLAKE3 } from 'hash-wasm';
import type { IHasher } from 'hash-wasm';
import { StorageError } from '../errors.js';
import type { Digester } from './types.js';

/** Digest length of both digesters, in bytes. */
export const DIGEST_SIZE = 32;

const sharedBlake3: IHasher = await createBLAKE3();

function wrap(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** The 32-byte digest of `data`. */
export function digest(digester: Digester, data: Uint8Array): Buffer {
  switch (digester) {
    case 'sha256':
      return oneShotHash('sha256', data, 'buffer');
    case 'blake3':
      return wrap(sharedBlake3.init().update(data).digest('binary'));
    default:
      throw new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to hash: unknown digester ${String(digester)}`);
  }
}

/** True when `data` hashes to `expected`. */
export function digestMatches(digester: Digester, data: Uint8Array, expected: Uint8Array): boolean {
  return expected.length === DIGEST_SIZE && digest(digester, data).equals(expected);
}

/** An incremental digest, for inputs that arrive in pieces (whole blobs). */
export interface Hasher {
  update(data: Uint8Array): Hasher;
  /** The digest of everything fed so far; the hasher is finished afterwards. */
  digest(): Buffer;
}

/** A new incremental hasher. */
export async function createHasher(digester: Digester): Promise<Hasher> {
  switch (digester) {
    case 'sha256': {
      const h = createHash('sha256');
      const self: Hasher = {
        update(data) {
          h.update(data);
          return self;
        },
        digest: () => h.digest(),
      };
      return self;
    }
    case 'blake3': {
      const h = (await createBLAKE3()).init();
      const self: Hasher = {
        update(data) {
          h.update(data);
          return self;
        },
        digest: () => wrap(h.digest('binary')),
      };
      return self;
    }
    default:
      throw new StorageError('ERR_STORAGE_UNSUPPORTED', `failed to hash: unknown digester ${String(digester)}`);
  }
}
