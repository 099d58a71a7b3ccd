// The chunk and blob shapes storage reads by: a blob's compressor, digester and address
// spaces, and where one chunk's stored bytes are. The image formats (src/rafs) describe
// their blobs and file chunks with these; storage needs nothing else of an image.

/** Chunk compression algorithms, by their nydus CLI names. */
export type Compressor = 'none' | 'lz4_block' | 'gzip' | 'zstd';
/** Chunk digest algorithms, by their nydus CLI names. */
export type Digester = 'blake3' | 'sha256';

/** One data blob of an image, from the v5 blob tables or the v6 blob table. */
export interface BlobInfo {
  /** Position in the image's blob table; chunks refer to blobs by it. */
  index: number;
  /** Blob id (usually 64 hex chars); the blob file in a localfs directory has this name. */
  blobId: string;
  /** The id the blob table records, when the reader named the blob otherwise (inlined metadata). */
  recordedBlobId?: string;
  chunkSize: number;
  /** Distinct chunks stored in the blob; 0 when the image does not record it (old v5). */
  chunkCount: number;
  /** Size of the blob file; 0 when the image does not record it (old v5). */
  compressedSize: number;
  /** Size of the blob's uncompressed address space (what a cache file holds). */
  uncompressedSize: number;
  compressor: Compressor;
  digester: Digester;
  /** BlobFeatures bits (docs/format.md §1.3). */
  features: number;
  /** v5 blob-level readahead range (0/0 when none). */
  readaheadOffset: number;
  readaheadSize: number;
  /** v6: where the chunk-info array sits in the blob file (0s when absent). */
  metaCiCompressor: Compressor;
  metaCiOffset: number;
  metaCiCompressedSize: number;
  metaCiUncompressedSize: number;
  /** v6: ToC entries + its tar header, 0 when the blob has no ToC. */
  blobTocSize: number;
  /**
   * v6 SEPARATE blobs (targz-ref): the id of the blob holding this blob's chunk-info
   * array (hex of `blob_meta_digest`); undefined otherwise.
   */
  metaBlobId?: string;
}

/** One chunk of one file: where its stored bytes are and what they must hash to. */
export interface ChunkInfo {
  /** Digest of the uncompressed bytes (32 bytes, the image's digester). */
  digest: Buffer;
  blobIndex: number;
  /** Chunk number within its blob (deduplicated chunks share it). */
  index: number;
  /** Stored bytes are compressed with the blob's compressor. */
  compressed: boolean;
  compressedOffset: number;
  compressedSize: number;
  /** Offset in the blob's uncompressed address space (cache file offset). */
  uncompressedOffset: number;
  uncompressedSize: number;
  /** Offset of this chunk within the file it belongs to. */
  fileOffset: number;
}

/** What the chunk reader needs of an opened image (an image's RafsSuper has it). */
export interface ImageBlobs {
  readonly blobs: readonly BlobInfo[];
  /** Every distinct chunk stored in blob `blobIndex`, ordered by compressed offset. */
  blobChunks(blobIndex: number): readonly ChunkInfo[];
}

/** `BlobFeatures` bits (v5 extended blob table, v6 blob table, blob meta header). */
export const BlobFeatures = {
  ALIGNED: 0x1,
  INLINED_FS_META: 0x2,
  CHUNK_INFO_V2: 0x4,
  ZRAN: 0x8,
  SEPARATE: 0x10,
  INLINED_CHUNK_DIGEST: 0x20,
  TARFS: 0x40,
  BATCH: 0x80,
  ENCRYPTED: 0x100,
  IS_CHUNKDICT_GENERATED: 0x200,
  IS_SEPARATED_WITH_PREFETCH_FILES: 0x400,
  EXTERNAL: 0x800,
  HAS_TAR_HEADER: 0x1000_0000,
  HAS_TOC: 0x2000_0000,
  CAP_TAR_TOC: 0x4000_0000,
  V5_NO_EXT_BLOB_TABLE: 0x8000_0000,
} as const;
