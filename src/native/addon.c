/*
 * Entry point of the nydus native addon (build/Release/nydus_native.node):
 * /dev/fuse primitives (fuse_dev.c), supervisor fd passing (fd_passing.c), and
 * loop devices and mount(2) for the erofs fs driver (block_mount.c).
 * Loaded through src/native/index.ts, which gives it types and errors.
 */
#include "common.h"

NAPI_MODULE_INIT() {
  nn_fuse_dev_init(env, exports);
  nn_fd_passing_init(env, exports);
  nn_block_mount_init(env, exports);
  return exports;
}
