{
  "targets": [
    {
      "target_name": "nydus_native",
      "sources": [
        "src/native/addon.c",
        "src/native/common.c",
        "src/native/fuse_dev.c",
        "src/native/fd_passing.c",
        "src/native/block_mount.c"
      ],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "nydus_lz4",
      "sources": ["src/storage/native/lz4.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "libraries": ["-llz4"]
    },
    {
      "target_name": "nydus_zran",
      "sources": ["src/storage/native/zran.c", "src/native/common.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lz"]
    },
    {
      "target_name": "nydus_xattr",
      "sources": ["src/builder/native/xattr.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
