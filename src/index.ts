// The library surface of nydus-ts, for programs that embed it rather than run the
// CLIs: read and check images, read their data, build them, serve them, drive a daemon.
export * from './errors.js';
export * as rafs from './rafs/index.js';
export { createStorage, type Storage } from './storage/factory.js';
export { ChunkReader } from './storage/chunk-reader.js';
export type { BlobInfo, ChunkInfo, Compressor, Digester } from './storage/types.js';
export { parseConfig, normalizeConfig } from './config/parse.js';
export { localfsDirConfig, redact } from './config/derive.js';
export type { NydusConfig } from './config/types.js';
export { createImage, type CreateOptions, type BuildResult } from './builder/build.js';
export { mergeImages, type MergeOptions, type MergeResult } from './builder/merge.js';
export { checkImage } from './image/check.js';
export { inspect } from './image/inspect.js';
export { unpackToTar } from './image/unpack.js';
export * as fs from './fs/index.js';
export { mountTransport, resumeTransport, FUSE_IMPLS, type FuseImpl, type FuseTransport } from './fuse/transport.js';
export type { FileSystem, Attr } from './fuse/filesystem.js';
export { DaemonController } from './daemon/controller.js';
export { runDaemon, type RunDaemonOptions } from './daemon/run.js';
export { createLogger, type Logger, type LoggerOptions } from './util/logger.js';
export type { DaemonControl, DaemonInfo, MountCmd } from './daemon/control.js';
export { startApiServer } from './api/server.js';
export { ApiClient } from './api/client.js';
export { daemonMachine } from '../machines/index.js';
