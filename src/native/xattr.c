/*
 * Extended attributes for the image builder: llistxattr(2)/lgetxattr(2) on raw-byte
 * paths, never following symlinks.
 * Node has no xattr API, and names and values must stay bytes (non-UTF-8 paths,
 * binary values such as security.capability). Loaded through src/builder/xattr.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "common.h"

#define MAX_PATH_BYTES 65536

/* Copies a Buffer argument into a NUL-terminated C string (paths and names are bytes). */
static char *arg_cstr(napi_env env, napi_value arg) {
  bool is_buf = false;
  void *data;
  size_t len;
  if (napi_is_buffer(env, arg, &is_buf) != napi_ok || !is_buf) {
    napi_throw_type_error(env, NULL, "expected a Buffer");
    return NULL;
  }
  napi_get_buffer_info(env, arg, &data, &len);
  if (len > MAX_PATH_BYTES || memchr(data, 0, len) != NULL) {
    napi_throw_range_error(env, NULL, "path or name is too long or contains NUL");
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  memcpy(s, data, len);
  s[len] = 0;
  return s;
}

/*
 * fetch(path, name, buf, size) as the xattr calls take it: first for the size, then into
 * a buffer of that size, again while the value grew in between (ERANGE). Returns the
 * length (*out malloc'ed, freed by the caller even on error) or -1 with errno set.
 */
typedef ssize_t (*xattr_fetch)(const char *path, const char *name, void *buf, size_t size);

static ssize_t fetch_sized(xattr_fetch fetch, const char *path, const char *name, char **out) {
  *out = NULL;
  for (;;) {
    ssize_t n = fetch(path, name, NULL, 0);
    if (n < 0) return -1;
    char *grown = realloc(*out, n > 0 ? (size_t)n : 1);
    if (grown == NULL) {
      errno = ENOMEM;
      return -1;
    }
    *out = grown;
    if (n == 0) return 0; /* with size 0 the next call would only ask the size again */
    n = fetch(path, name, grown, (size_t)n);
    if (n >= 0 || errno != ERANGE) return n;
  }
}

static ssize_t list_names(const char *path, const char *name, void *buf, size_t size) {
  (void)name;
  return llistxattr(path, buf, size);
}

/* listXattrs(path): Buffer[] of names; [] where the filesystem has no xattr support. */
static napi_value list(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *path = arg_cstr(env, argv[0]);
  if (path == NULL) return NULL;
  char *names;
  ssize_t n = fetch_sized(list_names, path, NULL, &names);
  int err = errno;
  free(path);
  if (n < 0) {
    free(names);
    if (err == ENOTSUP) {
      napi_create_array(env, &out);
      return out;
    }
    return nn_throw_errno(env, err, "llistxattr");
  }
  napi_create_array(env, &out);
  uint32_t idx = 0;
  for (ssize_t pos = 0; pos < n;) {
    size_t len = strnlen(names + pos, (size_t)(n - pos));
    if (len > 0) {
      napi_value b;
      napi_create_buffer_copy(env, len, names + pos, NULL, &b);
      napi_set_element(env, out, idx++, b);
    }
    pos += (ssize_t)len + 1;
  }
  free(names);
  return out;
}

/* getXattr(path, name): the value as a Buffer. */
static napi_value get(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *path = arg_cstr(env, argv[0]);
  if (path == NULL) return NULL;
  char *name = arg_cstr(env, argv[1]);
  if (name == NULL) {
    free(path);
    return NULL;
  }
  char *value;
  ssize_t n = fetch_sized(lgetxattr, path, name, &value);
  int err = errno;
  free(path);
  free(name);
  if (n < 0) {
    free(value);
    return nn_throw_errno(env, err, "lgetxattr");
  }
  napi_create_buffer_copy(env, (size_t)n, value, NULL, &out);
  free(value);
  return out;
}

napi_value nn_xattr_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listXattrs", NULL, list, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getXattr", NULL, get, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
