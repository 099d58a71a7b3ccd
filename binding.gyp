{
  "targets": [
    {
      "target_name": "nydus_native",
      "sources": [
        "src/native/addon.c",
        "src/native/common.c",
        "src/native/fuse_dev.c",
        "src/native/fd_passing.c",
        "src/native/block_mount.c",
        "src/native/lz4.c",
        "src/native/zran.c",
        "src/native/xattr.c"
      ],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-llz4", "-lz"]
    }
  ]
}
