/*
 * Raw LZ4 blocks (no frame, no size prefix), as nydus stores lz4_block chunks, with the
 * reference library (liblz4), between buffers the caller owns. The chunk reader decodes
 * every fetched chunk straight into its destination, so the read path allocates nothing
 * here (decision 0008). The builder compresses with LZ4_compress_default into a buffer of
 * LZ4_compressBound bytes, the same call upstream's nydus-image makes, so its chunks are
 * the bytes upstream would write. Typed by src/storage/codec.ts.
 */
#include <lz4.h>

#include "common.h"

/* The (src, dst) byte arguments of both calls; non-zero when they are not two Uint8Arrays. */
static int src_dst_args(napi_env env, napi_callback_info info, uint8_t **src, size_t *src_len, uint8_t **dst,
                        size_t *dst_len) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return -1;
  return nn_get_bytes(env, argv[0], src, src_len) || nn_get_bytes(env, argv[1], dst, dst_len);
}

/*
 * lz4DecodeBlock(src: Uint8Array, dst: Uint8Array): number of bytes written to dst, or -1
 * when src is not a valid block or does not fit dst. Never writes past dst.
 */
static napi_value decode_block(napi_env env, napi_callback_info info) {
  uint8_t *src, *dst;
  size_t src_len, dst_len;
  if (src_dst_args(env, info, &src, &src_len, &dst, &dst_len)) {
    return nn_throw_type(env, "lz4DecodeBlock(src: Uint8Array, dst: Uint8Array) expected");
  }
  int n = -1;
  if (src_len <= INT32_MAX && dst_len <= INT32_MAX && src_len > 0) {
    n = LZ4_decompress_safe((const char *)src, (char *)dst, (int)src_len, (int)dst_len);
  }
  return nn_int(env, n < 0 ? -1 : n);
}

/* lz4CompressBound(size): the largest block `size` bytes can compress to; 0 when too large. */
static napi_value compress_bound(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double size;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || nn_get_double(env, argv[0], &size) || !(size >= 0)) {
    return nn_throw_type(env, "lz4CompressBound(size >= 0) expected");
  }
  return nn_int(env, size > LZ4_MAX_INPUT_SIZE ? 0 : LZ4_compressBound((int)size));
}

/*
 * lz4CompressBlock(src: Uint8Array, dst: Uint8Array): bytes of the block written to dst, or
 * 0 when src is too large or the block does not fit dst (a dst of lz4CompressBound(src)
 * bytes always fits).
 */
static napi_value compress_block(napi_env env, napi_callback_info info) {
  uint8_t *src, *dst;
  size_t src_len, dst_len;
  if (src_dst_args(env, info, &src, &src_len, &dst, &dst_len)) {
    return nn_throw_type(env, "lz4CompressBlock(src: Uint8Array, dst: Uint8Array) expected");
  }
  if (src_len > LZ4_MAX_INPUT_SIZE) return nn_int(env, 0);
  int cap = dst_len > INT32_MAX ? INT32_MAX : (int)dst_len;
  return nn_int(env, LZ4_compress_default((const char *)src, (char *)dst, (int)src_len, cap));
}

napi_value nn_lz4_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"lz4DecodeBlock", NULL, decode_block, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lz4CompressBound", NULL, compress_bound, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lz4CompressBlock", NULL, compress_block, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
