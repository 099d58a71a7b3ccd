/*
 * Random access into gzip streams with the system zlib, for `targz-ref` images (docs/decisions/0015-zran.md). node:zlib exposes neither
 * inflatePrime, inflateSetDictionary on a raw stream nor the Z_BLOCK stops that mark
 * deflate block boundaries, which is what both sides of zran need:
 *
 *   inflateAt(input, bits, byte, dict, out)   the reader: raw inflate from a checkpoint
 *       (bit offset primed from the previous byte, 32 KiB window as dictionary) into the
 *       caller's buffer. One z_stream per addon instance, reset per call: no allocation
 *       per chunk read.
 *   Indexer                                   the builder: inflates a gzip stream piece
 *       by piece, stopping at each deflate block boundary so the caller can take a
 *       checkpoint (positions, pending bits, previous byte, window) there.
 *
 * Memory is bounded: one input buffer per indexer (as large as the largest piece fed)
 * and zlib's own 32 KiB window; nothing grows with the stream.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common.h"

#define WINDOW_SIZE 32768

/* ---- reader ---------------------------------------------------------------------- */

/* The reader's z_stream is the addon's instance data: no other module of the addon uses that slot. */

typedef struct {
  z_stream strm;
  int ready;
} reader_state;

static void reader_free(napi_env env, void *data, void *hint) {
  reader_state *r = data;
  if (r->ready) inflateEnd(&r->strm);
  free(r);
}

static reader_state *reader_of(napi_env env) {
  reader_state *r = NULL;
  if (napi_get_instance_data(env, (void **)&r) == napi_ok && r != NULL) return r;
  r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  if (inflateInit2(&r->strm, -15) != Z_OK) {
    free(r);
    return NULL;
  }
  r->ready = 1;
  napi_set_instance_data(env, r, reader_free, NULL);
  return r;
}

/*
 * inflateAt(input, bits, byte, dict, out): bytes written to out (inflation stops when
 * out is full, at the end of the deflate stream, or when input runs out), or -1 when the
 * data is not valid deflate from that checkpoint.
 */
static napi_value inflate_at(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  uint8_t *in, *dict, *out;
  size_t in_len, dict_len, out_len;
  int32_t bits, byte;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5 || nn_get_bytes(env, argv[0], &in, &in_len) || nn_get_int(env, argv[1], &bits) ||
      nn_get_int(env, argv[2], &byte) || nn_get_bytes(env, argv[3], &dict, &dict_len) ||
      nn_get_bytes(env, argv[4], &out, &out_len) || bits < 0 || bits > 7 || byte < 0 || byte > 255 ||
      dict_len > WINDOW_SIZE || in_len > UINT32_MAX || out_len > UINT32_MAX) {
    return nn_throw_type(env, "inflateAt(input, bits 0-7, byte 0-255, dict <= 32 KiB, out) expected");
  }
  reader_state *r = reader_of(env);
  if (r == NULL) return nn_throw_errno(env, 12 /* ENOMEM */, "inflateInit2");
  z_stream *s = &r->strm;
  if (inflateReset(s) != Z_OK) return nn_int(env, -1);
  if (bits != 0 && inflatePrime(s, bits, byte >> (8 - bits)) != Z_OK) return nn_int(env, -1);
  if (dict_len > 0 && inflateSetDictionary(s, dict, (uInt)dict_len) != Z_OK) return nn_int(env, -1);
  s->next_in = in;
  s->avail_in = (uInt)in_len;
  s->next_out = out;
  s->avail_out = (uInt)out_len;
  int ret = Z_OK;
  while (s->avail_out > 0 && ret == Z_OK) ret = inflate(s, Z_NO_FLUSH);
  if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) return nn_int(env, -1);
  return nn_int(env, (int64_t)(out_len - s->avail_out));
}

/* ---- indexer --------------------------------------------------------------------- */

typedef struct {
  z_stream strm;
  uint8_t *input;
  size_t cap;
  uint8_t last_byte; /* last byte of the previous input piece */
  uint64_t total_in, total_out;
} indexer;

static void indexer_free(napi_env env, void *data, void *hint) {
  indexer *x = data;
  inflateEnd(&x->strm);
  free(x->input);
  free(x);
}

static indexer *indexer_arg(napi_env env, napi_value v) {
  indexer *x = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_get_value_external(env, v, (void **)&x) != napi_ok) return NULL;
  return x;
}

/* indexerCreate(): a handle inflating a gzip stream (one or more members). */
static napi_value indexer_create(napi_env env, napi_callback_info info) {
  indexer *x = calloc(1, sizeof *x);
  napi_value out;
  if (x == NULL) return nn_throw_errno(env, 12, "calloc");
  if (inflateInit2(&x->strm, 31) != Z_OK) {
    free(x);
    return nn_throw_errno(env, 12, "inflateInit2");
  }
  NAPI_CALL(env, napi_create_external(env, x, indexer_free, NULL, &out));
  return out;
}

/* indexerFeed(h, piece): copies the next compressed bytes in; only once the last are used. */
static napi_value indexer_feed(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint8_t *data;
  size_t len;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  indexer *x = argc == 2 ? indexer_arg(env, argv[0]) : NULL;
  if (x == NULL || nn_get_bytes(env, argv[1], &data, &len) || len == 0 || len > UINT32_MAX) {
    return nn_throw_type(env, "indexerFeed(handle, non-empty Uint8Array) expected");
  }
  if (x->strm.avail_in != 0) return nn_throw_type(env, "indexerFeed: previous input not consumed yet");
  if (x->strm.next_in != NULL && x->strm.next_in > x->input) x->last_byte = x->strm.next_in[-1];
  if (len > x->cap) {
    uint8_t *p = realloc(x->input, len);
    if (p == NULL) return nn_throw_errno(env, 12, "realloc");
    x->input = p;
    x->cap = len;
  }
  memcpy(x->input, data, len);
  x->strm.next_in = x->input;
  x->strm.avail_in = (uInt)len;
  return NULL;
}

enum { STEP_OK = 0, STEP_NEED_INPUT = 1, STEP_MEMBER_END = 2, STEP_BAD_DATA = -1 };

/*
 * indexerStep(h, out, state: Float64Array(6)): one inflate(Z_BLOCK) into out. Returns 0
 * (progress; state[3] = 1 when stopped at a deflate block boundary, where a checkpoint
 * may be taken), 1 (needs input), 2 (a gzip member ended; the next one may follow) or
 * -1 (bad data). state = [produced, total_in, total_out, at_boundary, pending_bits,
 * previous_byte].
 */
static napi_value indexer_step(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint8_t *out;
  size_t out_len;
  double *state;
  size_t state_len;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  indexer *x = argc == 3 ? indexer_arg(env, argv[0]) : NULL;
  if (x == NULL || nn_get_bytes(env, argv[1], &out, &out_len) || out_len > UINT32_MAX ||
      napi_get_typedarray_info(env, argv[2], &type, &state_len, (void **)&state, &ab, &off) != napi_ok ||
      type != napi_float64_array || state_len < 6) {
    return nn_throw_type(env, "indexerStep(handle, Uint8Array, Float64Array(6)) expected");
  }
  z_stream *s = &x->strm;
  state[0] = 0;
  state[3] = 0;
  if (s->avail_in == 0) return nn_int(env, STEP_NEED_INPUT);
  s->next_out = out;
  s->avail_out = (uInt)out_len;
  uInt before_in = s->avail_in;
  int ret = inflate(s, Z_BLOCK);
  uint64_t used = before_in - s->avail_in, produced = out_len - s->avail_out;
  x->total_in += used;
  x->total_out += produced;
  state[0] = (double)produced;
  state[1] = (double)x->total_in;
  state[2] = (double)x->total_out;
  int bits = s->data_type & 7;
  state[4] = bits;
  state[5] = bits == 0 ? 0 : (s->next_in > x->input ? s->next_in[-1] : x->last_byte);
  if (ret == Z_STREAM_END) {
    if (inflateReset(s) != Z_OK) return nn_int(env, STEP_BAD_DATA);
    return nn_int(env, STEP_MEMBER_END);
  }
  if (ret == Z_BUF_ERROR) return nn_int(env, STEP_NEED_INPUT);
  if (ret != Z_OK) return nn_int(env, STEP_BAD_DATA);
  state[3] = (s->data_type & 128) != 0 ? 1 : 0;
  return nn_int(env, STEP_OK);
}

/* indexerWindow(h, dst >= 32 KiB): copies the current inflate window; returns its length. */
static napi_value indexer_window(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint8_t *dst;
  size_t len;
  uInt got = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  indexer *x = argc == 2 ? indexer_arg(env, argv[0]) : NULL;
  if (x == NULL || nn_get_bytes(env, argv[1], &dst, &len) || len < WINDOW_SIZE) {
    return nn_throw_type(env, "indexerWindow(handle, Uint8Array of 32 KiB) expected");
  }
  if (inflateGetDictionary(&x->strm, dst, &got) != Z_OK) return nn_int(env, -1);
  return nn_int(env, got);
}

napi_value nn_zran_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"inflateAt", NULL, inflate_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"indexerCreate", NULL, indexer_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"indexerFeed", NULL, indexer_feed, NULL, NULL, NULL, napi_enumerable, NULL},
      {"indexerStep", NULL, indexer_step, NULL, NULL, NULL, napi_enumerable, NULL},
      {"indexerWindow", NULL, indexer_window, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
