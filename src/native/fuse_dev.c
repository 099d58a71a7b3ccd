/*
 * /dev/fuse primitives the session needs and Node lacks: a readability watch
 * in the event loop's poller with a non-blocking read of one request (the
 * session reads on the JS thread, as an event loop reads a socket), writev of
 * a reply, notifications written off the JS thread (they can block on inode
 * locks), dup/close of fds, and umount2 on a job thread.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#define MAX_IOV 1024

/*
 * A readability watch on the /dev/fuse fd in the event loop's own poller (a
 * uv_poll_t, as libuv watches sockets): when the kernel queues a request the
 * loop calls back into JS, which reads requests with readRequest() until EAGAIN.
 * No thread and no hand-off between threads. Stopped, the watch lets requests
 * queue in the kernel; a second handle (an idle uv_async_t) keeps the process
 * alive meanwhile, as a blocked reader thread would, until the watch is closed.
 */
typedef struct {
  uv_poll_t poll;
  uv_async_t keep;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  /* Owners still to let go before the struct is freed: the two libuv handles and the JS external. */
  int owners;
  bool closed;
} fd_watch;

static void watch_release(fd_watch *w) {
  if (--w->owners == 0) free(w);
}

static void watch_handle_closed(uv_handle_t *h) {
  watch_release(h->data);
}

/* Releases the JS references and closes both handles (idempotent). */
static void watch_close(napi_env env, fd_watch *w) {
  if (w->closed) return;
  w->closed = true;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->context);
  uv_close((uv_handle_t *)&w->poll, watch_handle_closed);
  uv_close((uv_handle_t *)&w->keep, watch_handle_closed);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  fd_watch *w = h->data;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value cb, recv, arg, result;
  if (w->closed || napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &recv); /* make_callback wants an object as `this` */
  /* status < 0 (UV_EBADF on POLLERR: the connection ended): libuv stopped the watch;
     the read that follows tells why (ENODEV or ECONNABORTED). */
  napi_create_int32(env, status, &arg);
  /* make_callback: promise jobs and nextTicks queued by the handlers run before it returns. */
  if (napi_make_callback(env, w->context, recv, cb, 1, &arg, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static void watch_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  /* Only reachable after watchClose() (the callback reference keeps its owner alive until then). */
  watch_close(env, data);
  watch_release(data);
}

static fd_watch *get_watch(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external) return NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

/* watchReadable(fd, onReadable(status)) -> watch (stopped). */
static napi_value watch_readable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, out;
  int32_t fd;
  napi_valuetype type;
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || nn_get_int(env, argv[0], &fd) || napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function)
    return nn_throw_type(env, "watchReadable(fd, function) expected");
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  fd_watch *w = calloc(1, sizeof *w);
  if (!w) return nn_throw_errno(env, ENOMEM, "watchReadable");
  w->env = env;
  napi_create_string_utf8(env, "nydus:fuseWatch", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok) {
    free(w);
    nn_throw_last(env);
    return NULL;
  }
  if (napi_async_init(env, NULL, name, &w->context) != napi_ok) {
    napi_delete_reference(env, w->callback);
    free(w);
    nn_throw_last(env);
    return NULL;
  }
  const char *failed = NULL;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    failed = "uv_poll_init";
  } else {
    w->poll.data = w;
    w->owners = 1;
    rc = uv_async_init(loop, &w->keep, NULL);
    if (rc != 0) failed = "uv_async_init";
  }
  if (failed != NULL) {
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->context);
    if (w->owners == 0) free(w);
    else uv_close((uv_handle_t *)&w->poll, watch_handle_closed); /* frees w */
    return nn_throw_errno(env, -rc, failed);
  }
  w->keep.data = w;
  w->owners = 3;
  if (napi_create_external(env, w, watch_finalize, NULL, &out) != napi_ok) {
    watch_close(env, w);
    watch_release(w);
    nn_throw_last(env);
    return NULL;
  }
  return out;
}

/* watchStart(watch) / watchStop(watch) / watchClose(watch). */
static napi_value watch_op(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *op;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, &op));
  fd_watch *w = argc < 1 ? NULL : get_watch(env, argv[0]);
  if (w == NULL) return nn_throw_type(env, "a watch from watchReadable() expected");
  int rc = 0;
  switch ((intptr_t)op) {
    case 0:
      if (w->closed) return nn_throw_errno(env, EBADF, "watchStart");
      rc = uv_poll_start(&w->poll, UV_READABLE, on_readable);
      break;
    case 1:
      if (!w->closed) rc = uv_poll_stop(&w->poll);
      break;
    default:
      watch_close(env, w);
  }
  if (rc != 0) return nn_throw_errno(env, -rc, "uv_poll");
  return NULL;
}

/* readRequest(fd, buf) -> bytes of one request, or -errno (-EAGAIN: none queued). Never blocks on a non-blocking fd. */
static napi_value read_request(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  uint8_t *buf;
  size_t len;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || nn_get_int(env, argv[0], &fd) || nn_get_bytes(env, argv[1], &buf, &len))
    return nn_throw_type(env, "readRequest(fd, Uint8Array) expected");
  for (;;) {
    ssize_t n = read(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return nn_int(env, -errno);
    /* 0 bytes: the connection is gone. */
    return nn_int(env, n == 0 ? -ENODEV : n);
  }
}

static int collect_iov(napi_env env, napi_value list, struct iovec *iov, uint32_t *count) {
  uint32_t n = 0;
  bool is_array = false;
  if (napi_is_array(env, list, &is_array) != napi_ok || !is_array) return -1;
  if (napi_get_array_length(env, list, &n) != napi_ok || n > MAX_IOV) return -1;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    uint8_t *data;
    size_t len;
    if (napi_get_element(env, list, i, &item) != napi_ok) return -1;
    if (nn_get_bytes(env, item, &data, &len)) return -1;
    iov[i].iov_base = data;
    iov[i].iov_len = len;
  }
  *count = n;
  return 0;
}

/* writev(fd, buffers) -> bytes written or -errno. Writing a reply never blocks. */
static napi_value write_vec(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  struct iovec iov[MAX_IOV];
  uint32_t count = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || nn_get_int(env, argv[0], &fd) || collect_iov(env, argv[1], iov, &count))
    return nn_throw_type(env, "writev(fd, Uint8Array[]) expected (at most 1024 buffers)");
  for (;;) {
    ssize_t n = writev(fd, iov, (int)count);
    if (n < 0 && errno == EINTR) continue;
    return nn_int(env, n < 0 ? -errno : n);
  }
}

typedef struct {
  int fd;
  size_t len;
  ssize_t written;
  uint8_t bytes[];
} write_job;

static void write_exec(nn_job *job) {
  write_job *w = job->data;
  for (;;) {
    ssize_t n = write(w->fd, w->bytes, w->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      job->err = errno;
      job->syscall = "write";
    }
    w->written = n;
    return;
  }
}

static napi_value write_done(napi_env env, nn_job *job) {
  return nn_int(env, ((write_job *)job->data)->written);
}

/* writeAsync(fd, buffers) -> Promise<bytes>: one write(2) of the joined buffers on its own thread. */
static napi_value write_async(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  struct iovec iov[MAX_IOV];
  uint32_t count = 0;
  size_t total = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || nn_get_int(env, argv[0], &fd) || collect_iov(env, argv[1], iov, &count))
    return nn_throw_type(env, "writeAsync(fd, Uint8Array[]) expected");
  for (uint32_t i = 0; i < count; i++) total += iov[i].iov_len;
  if (total > (1u << 20)) return nn_throw_errno(env, EMSGSIZE, "writeAsync");
  nn_job *job = calloc(1, sizeof *job);
  write_job *w = malloc(sizeof *w + total);
  if (!job || !w) {
    free(job);
    free(w);
    return nn_throw_errno(env, ENOMEM, "writeAsync");
  }
  w->fd = fd;
  w->len = total;
  w->written = 0;
  for (uint32_t i = 0, off = 0; i < count; off += iov[i].iov_len, i++) memcpy(w->bytes + off, iov[i].iov_base, iov[i].iov_len);
  job->exec = write_exec;
  job->done = write_done;
  job->data = w;
  job->free_data = free;
  return nn_job_start(env, job, "nydus:writeAsync");
}

static napi_value dup_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || nn_get_int(env, argv[0], &fd)) return nn_throw_type(env, "dup(fd) expected");
  int out = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (out < 0) return nn_throw_errno(env, errno, "dup");
  return nn_int(env, out);
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || nn_get_int(env, argv[0], &fd)) return nn_throw_type(env, "close(fd) expected");
  /* Linux always releases the fd, even when close() reports EINTR: never retry. */
  if (close(fd) < 0 && errno != EINTR) return nn_throw_errno(env, errno, "close");
  return NULL;
}

/* setNonBlocking(fd, on): O_NONBLOCK is a property of the open file, shared by every dup. */
static napi_value set_nonblocking(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  bool on = true;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || nn_get_int(env, argv[0], &fd) || napi_get_value_bool(env, argv[1], &on) != napi_ok)
    return nn_throw_type(env, "setNonBlocking(fd, boolean) expected");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return nn_throw_errno(env, errno, "fcntl");
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (fcntl(fd, F_SETFL, flags) < 0) return nn_throw_errno(env, errno, "fcntl");
  return NULL;
}

typedef struct {
  int flags;
  char path[4096];
} umount_job;

static void umount_exec(nn_job *job) {
  umount_job *u = job->data;
  if (umount2(u->path, u->flags) < 0) {
    job->err = errno;
    job->syscall = "umount2";
  }
}

/* unmount(path, flags) -> Promise<void> (umount2 on a job thread). */
static napi_value unmount_path(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t flags = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nn_job *job = nn_job_alloc(env, sizeof(umount_job), umount_exec, NULL);
  if (!job) return NULL;
  umount_job *u = job->data;
  if (argc < 2 || nn_get_path(env, argv[0], u->path, sizeof u->path) || nn_get_int(env, argv[1], &flags)) {
    nn_job_discard(job);
    return nn_throw_type(env, "unmount(path, flags) expected");
  }
  u->flags = flags;
  return nn_job_start(env, job, "nydus:unmount");
}

napi_value nn_fuse_dev_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"watchReadable", NULL, watch_readable, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchStart", NULL, watch_op, NULL, NULL, NULL, napi_enumerable, (void *)0},
      {"watchStop", NULL, watch_op, NULL, NULL, NULL, napi_enumerable, (void *)1},
      {"watchClose", NULL, watch_op, NULL, NULL, NULL, napi_enumerable, (void *)2},
      {"readRequest", NULL, read_request, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writev", NULL, write_vec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeAsync", NULL, write_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dup", NULL, dup_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setNonBlocking", NULL, set_nonblocking, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unmount", NULL, unmount_path, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_value v;
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_create_int32(env, MNT_DETACH, &v);
  napi_set_named_property(env, exports, "MNT_DETACH", v);
  napi_create_int32(env, MNT_FORCE, &v);
  napi_set_named_property(env, exports, "MNT_FORCE", v);
  return exports;
}
