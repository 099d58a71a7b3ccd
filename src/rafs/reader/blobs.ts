// Builds the format-neutral BlobInfo list from the v5 blob tables or the v6 blob table,
// with upstream's per-entry checks. A blob id becomes a file name in a blob directory,
// so ids that could escape it (`/`, `..`, control bytes) are rejected here.
import { RafsFormatError } from '../../errors.js';
import {
  BlobFeatures,
  compressorFromId,
  corrupt,
  digesterFromId,
  isSafeBlobId,
  isValidChunkSize,
  KNOWN_LOW_BLOB_FEATURES,
  RAFS_MAX_CHUNKS_PER_BLOB,
} from '../layout/common.js';
import { decodeV5BlobTable, decodeV5ExtBlobEntry, V5_EXT_BLOB_ENTRY_SIZE, type V5Superblock } from '../layout/v5.js';
import { decodeV6BlobEntry, V6_BLOB_ENTRY_SIZE, V6_BLOB_ID_LEN, type V6SuperblockExt } from '../layout/v6.js';
import type { BlobInfo, Compressor, Digester } from '../../storage/types.js';

const MAX_UNCOMPRESSED_BLOB = 2 ** 44;
const MAX_COMPRESSED_BLOB = 2 ** 40;

function checkFeatures(features: number, where: string): void {
  if ((features & 0xffff & ~KNOWN_LOW_BLOB_FEATURES) !== 0 || (features & BlobFeatures.V5_NO_EXT_BLOB_TABLE) !== 0) {
    throw corrupt(`failed to decode ${where}: unknown blob features 0x${(features >>> 0).toString(16)}`);
  }
}

function checkBlobId(id: string, where: string): void {
  if (!isSafeBlobId(id)) throw corrupt(`failed to decode ${where}: blob id ${JSON.stringify(id)} is not a safe name`);
}

/** The blobs of a v5 image: the blob table joined with the extended blob table. */
export function readV5Blobs(
  buf: Buffer,
  sb: V5Superblock,
  compressor: Compressor,
  digester: Digester,
): BlobInfo[] {
  const entries = decodeV5BlobTable(buf, sb.blobTableOffset, sb.blobTableSize);
  const ext = sb.extendedBlobTableEntries;
  if (ext > 0 && ext < entries.length) {
    throw corrupt(`failed to decode v5 blob table: ${entries.length} blobs but ${ext} extended entries`);
  }
  return entries.map((e, index) => {
    const where = `v5 blob table entry ${index}`;
    checkBlobId(e.blobId, where);
    const x =
      ext > 0
        ? decodeV5ExtBlobEntry(buf, sb.extendedBlobTableOffset + index * V5_EXT_BLOB_ENTRY_SIZE)
        : { chunkCount: 0, features: 0, uncompressedSize: 0, compressedSize: 0 };
    checkFeatures(x.features, where);
    return {
      index,
      blobId: e.blobId,
      chunkSize: sb.blockSize,
      chunkCount: x.chunkCount,
      compressedSize: x.compressedSize,
      uncompressedSize: x.uncompressedSize,
      compressor,
      digester,
      features: x.features,
      readaheadOffset: e.readaheadOffset,
      readaheadSize: e.readaheadSize,
      metaCiCompressor: 'none',
      metaCiOffset: 0,
      metaCiCompressedSize: 0,
      metaCiUncompressedSize: 0,
      blobTocSize: 0,
    };
  });
}

/** The blobs of a v6 image, each entry checked as upstream's `RafsV6Blob::validate`. */
export function readV6Blobs(buf: Buffer, ext: V6SuperblockExt): BlobInfo[] {
  const count = ext.blobTableSize / V6_BLOB_ENTRY_SIZE;
  const out: BlobInfo[] = [];
  for (let index = 0; index < count; index++) {
    const b = decodeV6BlobEntry(buf, ext.blobTableOffset + index * V6_BLOB_ENTRY_SIZE);
    const where = `v6 blob table entry ${index}`;
    checkBlobId(b.blobId, where);
    if (b.blobId.length !== V6_BLOB_ID_LEN) throw corrupt(`failed to decode ${where}: blob id is not ${V6_BLOB_ID_LEN} chars`);
    if (b.blobIndex !== index) throw corrupt(`failed to decode ${where}: blob_index ${b.blobIndex}`);
    if (!isValidChunkSize(b.chunkSize) || b.chunkSize !== ext.chunkSize) {
      throw corrupt(`failed to decode ${where}: chunk size 0x${b.chunkSize.toString(16)}`);
    }
    if (b.chunkCount > RAFS_MAX_CHUNKS_PER_BLOB) throw corrupt(`failed to decode ${where}: chunk count ${b.chunkCount}`);
    if (b.uncompressedSize > MAX_UNCOMPRESSED_BLOB || b.compressedSize > MAX_COMPRESSED_BLOB) {
      throw corrupt(`failed to decode ${where}: blob sizes ${b.compressedSize}/${b.uncompressedSize} too large`);
    }
    checkFeatures(b.features, where);
    if ((b.features & BlobFeatures.ALIGNED) === 0) throw corrupt(`failed to decode ${where}: feature ALIGNED is missing`);
    if (b.cipherAlgo !== 0 || (b.features & BlobFeatures.ENCRYPTED) !== 0) {
      throw new RafsFormatError('ERR_RAFS_UNSUPPORTED', `failed to load ${where}: encrypted blobs are not supported`);
    }
    if (b.ciCompressedSize > b.ciUncompressedSize) {
      throw corrupt(`failed to decode ${where}: chunk-info array sizes ${b.ciCompressedSize}/${b.ciUncompressedSize}`);
    }
    checkCiSize(b.features, b.chunkCount, b.ciUncompressedSize, where);
    out.push({
      index,
      blobId: b.blobId,
      chunkSize: b.chunkSize,
      chunkCount: b.chunkCount,
      compressedSize: b.compressedSize,
      uncompressedSize: b.uncompressedSize,
      compressor: compressorFromId(b.compressionAlgo, where),
      digester: digesterFromId(b.digestAlgo, where),
      features: b.features,
      readaheadOffset: 0,
      readaheadSize: 0,
      metaCiCompressor: compressorFromId(b.ciCompressor, where),
      metaCiOffset: b.ciOffset,
      metaCiCompressedSize: b.ciCompressedSize,
      metaCiUncompressedSize: b.ciUncompressedSize,
      blobTocSize: b.blobTocSize,
      ...((b.features & BlobFeatures.SEPARATE) !== 0 && b.blobMetaDigest.some((x) => x !== 0) ? { metaBlobId: b.blobMetaDigest.toString('hex') } : {}),
    });
  }
  return out;
}

/** The chunk-info array size rules: v1 16 B and v2 24 B per chunk; ZRan/batch add context. */
function checkCiSize(features: number, count: number, size: number, where: string): void {
  const extra = BlobFeatures.BATCH | BlobFeatures.ZRAN;
  const bad = (): RafsFormatError =>
    corrupt(`failed to decode ${where}: chunk-info array of ${size} bytes for ${count} chunks`);
  if (features & BlobFeatures.CHUNK_INFO_V2) {
    if (features & extra ? size < count * 24 : size !== count * 24) throw bad();
  } else if (features & extra) {
    throw corrupt(`failed to decode ${where}: features 0x${(features >>> 0).toString(16)} need CHUNK_INFO_V2`);
  } else if ((features & BlobFeatures.IS_CHUNKDICT_GENERATED) === 0 && size !== count * 16) {
    throw bad();
  }
}
