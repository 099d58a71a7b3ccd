// Entry points of the reader: recognise a bootstrap by its magic (v5 at offset 0, EROFS
// at 1024, the order upstream tries them) and hand it to the version's RafsSuper.
// `openBootstrap` reads the file asynchronously, refusing files over upstream's limit;
// it also takes a data blob with an inlined bootstrap (inline-meta.ts).
import { open } from 'node:fs/promises';
import { RafsFormatError } from '../../errors.js';
import { RAFS_MAX_METADATA_SIZE } from '../layout/common.js';
import { V5_SUPER_MAGIC, V5_SUPER_VERSION, V5_SUPERBLOCK_SIZE } from '../layout/v5.js';
import { EROFS_SUPER_MAGIC, EROFS_SUPER_OFFSET, EROFS_SUPER_SIZE } from '../layout/v6.js';
import { nameInlineMetaBlobs, readInlineBootstrap } from './inline-meta.js';
import { RafsV5Super } from './v5-super.js';
import { RafsV6Super } from './v6-super.js';

/** Either reader; both implement RafsSuper and expose their own superblocks. */
export type AnyRafsSuper = RafsV5Super | RafsV6Super;

/** Parses a bootstrap held in memory (the buffer is kept, not copied). */
export function parseBootstrap(bytes: Buffer): AnyRafsSuper {
  if (bytes.length > RAFS_MAX_METADATA_SIZE) {
    throw new RafsFormatError('ERR_RAFS_BAD_SUPERBLOCK', `failed to open bootstrap: ${bytes.length} bytes exceed the metadata limit`);
  }
  if (bytes.length >= 8 && bytes.readUInt32LE(0) === V5_SUPER_MAGIC) {
    const version = bytes.readUInt32LE(4);
    if (version === 0x400) {
      throw new RafsFormatError('ERR_RAFS_UNSUPPORTED', 'failed to open bootstrap: RAFS v4 images are not supported');
    }
    if (version === V5_SUPER_VERSION) {
      if (bytes.length < V5_SUPERBLOCK_SIZE) {
        throw new RafsFormatError('ERR_RAFS_TRUNCATED', `failed to open v5 bootstrap: ${bytes.length} bytes hold no superblock`);
      }
      return new RafsV5Super(bytes);
    }
  }
  if (bytes.length >= EROFS_SUPER_OFFSET + 4 && bytes.readUInt32LE(EROFS_SUPER_OFFSET) === EROFS_SUPER_MAGIC) {
    if (bytes.length < EROFS_SUPER_OFFSET + EROFS_SUPER_SIZE) {
      throw new RafsFormatError('ERR_RAFS_TRUNCATED', `failed to open v6 bootstrap: ${bytes.length} bytes hold no superblock`);
    }
    return new RafsV6Super(bytes);
  }
  if (bytes.length >= 8 && bytes.readUInt32LE(0) === V5_SUPER_MAGIC) {
    const version = bytes.readUInt32LE(4);
    throw new RafsFormatError('ERR_RAFS_BAD_SUPERBLOCK', `failed to open bootstrap: unknown RAFS version 0x${version.toString(16)}`);
  }
  throw new RafsFormatError('ERR_RAFS_BAD_MAGIC', 'failed to open bootstrap: neither a RAFS v5 nor a RAFS v6 (EROFS) image');
}

/**
 * Reads and parses the bootstrap at `path`: a bootstrap file, or a data blob with the
 * bootstrap inlined (`--blob-inline-meta`). Blobs with inlined metadata are named after
 * the file's name, as upstream names them. File-system errors (ENOENT, EACCES) are
 * passed through as they are; format errors are RafsFormatError.
 */
export async function openBootstrap(path: string): Promise<AnyRafsSuper> {
  const sb = parseBootstrap(await readBootstrapFile(path));
  nameInlineMetaBlobs(sb.blobs, path);
  return sb;
}

/** The bootstrap bytes of a bootstrap file or of a blob with an inlined bootstrap. */
export async function readBootstrapFile(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  let bytes: Buffer;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new RafsFormatError('ERR_RAFS_BAD_SUPERBLOCK', `failed to open bootstrap ${path}: not a regular file`);
    const inline = looksLikeBootstrap(await fh.read(Buffer.alloc(EROFS_SUPER_OFFSET + 4), 0, EROFS_SUPER_OFFSET + 4, 0))
      ? undefined
      : await readInlineBootstrap(fh, st.size);
    if (inline) bytes = inline;
    else if (st.size > RAFS_MAX_METADATA_SIZE) {
      throw new RafsFormatError('ERR_RAFS_BAD_SUPERBLOCK', `failed to open bootstrap ${path}: ${st.size} bytes exceed the metadata limit`);
    } else bytes = await fh.readFile();
  } finally {
    await fh.close();
  }
  return bytes;
}

/** Whether the first bytes of a file carry a v5 or an EROFS superblock magic. */
function looksLikeBootstrap(head: { bytesRead: number; buffer: Buffer }): boolean {
  const b = head.buffer.subarray(0, head.bytesRead);
  return (b.length >= 4 && b.readUInt32LE(0) === V5_SUPER_MAGIC) || (b.length >= EROFS_SUPER_OFFSET + 4 && b.readUInt32LE(EROFS_SUPER_OFFSET) === EROFS_SUPER_MAGIC);
}
