/*
 * Raw LZ4 block decoding into a buffer the caller owns (build/Release/nydus_lz4.node),
 * with the reference library (liblz4). The chunk reader decodes every fetched chunk:
 * decoding into its own destination spares the copy into a size-prefixed scratch and
 * the fresh external buffer per chunk that lz4-napi's API requires, and with them the
 * garbage collections that this churn of external memory triggers on the read path.
 * Loaded by src/storage/codec.ts.
 */
#include <lz4.h>
#include <stdint.h>
#define NAPI_VERSION 8
#include <node_api.h>

static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return -1;
  if (napi_get_typedarray_info(env, v, &type, len, (void **)data, &ab, &off) != napi_ok) return -1;
  return type == napi_uint8_array ? 0 : -1;
}

/*
 * decodeBlock(src: Uint8Array, dst: Uint8Array): number of bytes written to dst, or -1
 * when src is not a valid block or does not fit dst. Never writes past dst.
 */
static napi_value decode_block(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  uint8_t *src, *dst;
  size_t src_len, dst_len;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || get_bytes(env, argv[0], &src, &src_len) || get_bytes(env, argv[1], &dst, &dst_len)) {
    napi_throw_type_error(env, NULL, "decodeBlock(src: Uint8Array, dst: Uint8Array) expected");
    return NULL;
  }
  int n = -1;
  if (src_len <= INT32_MAX && dst_len <= INT32_MAX && src_len > 0) {
    n = LZ4_decompress_safe((const char *)src, (char *)dst, (int)src_len, (int)dst_len);
  }
  napi_create_int32(env, n < 0 ? -1 : n, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"decodeBlock", NULL, decode_block, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, 1, props);
  return exports;
}
