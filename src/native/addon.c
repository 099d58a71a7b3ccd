/*
 * Entry point of the nydus native addon (build/Release/nydus_native.node), the only one
 * the project builds: /dev/fuse primitives (fuse_dev.c), supervisor fd passing
 * (fd_passing.c), loop devices and mount(2) for the erofs fs driver (block_mount.c),
 * LZ4 blocks with liblz4 (lz4.c), gzip random access with zlib (zran.c) and xattrs for
 * the builder (xattr.c). Each layer types the part it uses: src/native/index.ts,
 * src/storage/codec.ts, src/storage/zran.ts, src/builder/xattr.ts.
 */
#include "common.h"

NAPI_MODULE_INIT() {
  nn_fuse_dev_init(env, exports);
  nn_fd_passing_init(env, exports);
  nn_block_mount_init(env, exports);
  nn_lz4_init(env, exports);
  nn_zran_init(env, exports);
  nn_xattr_init(env, exports);
  return exports;
}
