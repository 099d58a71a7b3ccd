// The flags of `nydus-image create` as commander parses them (strings, as given), apart
// from create-command.ts so that the per-type hooks it calls (targz-ref-command.ts) can
// read them without importing it back.
export interface CreateFlags {
  type: string;
  sourceType?: string;
  bootstrap?: string;
  blobDir?: string;
  blob?: string;
  fsVersion: string;
  compressor: string;
  digester: string;
  chunkSize?: string;
  alignedChunk?: boolean;
  repeatable?: boolean;
  whiteoutSpec: string;
  parentBootstrap?: string;
  chunkDict?: string;
  prefetchPolicy: string;
  features?: string;
  outputJson?: string;
  blobInlineMeta?: boolean;
  inlineBootstrap?: boolean;
  blobId?: string;
  encrypt?: boolean;
  batchSize?: string;
  blobDataSize?: string;
}
