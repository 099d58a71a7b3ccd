// The format-neutral view of a RAFS image that every layer above src/rafs uses:
// storage reads chunks described by ChunkInfo from blobs described by BlobInfo;
// fs, unpack and check walk inodes through RafsSuper. v5 and v6 readers both
// produce exactly these shapes, so nothing above this module branches on version.

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
  chunkSize: number;
  /** Distinct chunks stored in the blob; 0 when the image does not record it (old v5). */
  chunkCount: number;
  /** Size of the blob file; 0 when the image does not record it (old v5). */
  compressedSize: number;
  /** Size of the blob's uncompressed address space (what a cache file holds). */
  uncompressedSize: number;
  compressor: Compressor;
  digester: Digester;
  /** BlobFeatures bits (rafs-format.md §1.3). */
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

/** Attributes of an inode as stat(2) reports them. */
export interface InodeAttr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte blocks. */
  blocks: number;
  rdev: number;
  mtime: number;
  mtimeNsec: number;
}

/** A directory entry as the image lists it ("." and ".." are not included). */
export interface DirEntry {
  name: Buffer;
  ino: number;
  /** The S_IFMT bits of the child's mode. */
  type: number;
}
