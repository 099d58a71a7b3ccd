/*
 * /dev/fuse primitives the session needs and Node lacks: a blocking
 * poll+read of one request that a wake-up eventfd can interrupt (called from
 * the session's reader worker thread, never from the event loop), writev of a
 * reply, notifications written off the JS thread (they can block on inode
 * locks), dup/close of fds, and umount2 on a job thread.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_IOV 1024

/* readRequest(fd, wakeFd, buf) -> bytes read, 0 when woken, -errno on failure. */
static napi_value read_request(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd, wake_fd;
  uint8_t *buf;
  size_t len;
  struct pollfd pfd[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || nn_get_int(env, argv[0], &fd) || nn_get_int(env, argv[1], &wake_fd) ||
      nn_get_bytes(env, argv[2], &buf, &len))
    return nn_throw_type(env, "readRequest(fd, wakeFd, Uint8Array) expected");
  pfd[0].fd = fd;
  pfd[0].events = POLLIN;
  pfd[1].fd = wake_fd;
  pfd[1].events = POLLIN;
  for (;;) {
    pfd[0].revents = 0;
    pfd[1].revents = 0;
    int r = poll(pfd, wake_fd >= 0 ? 2 : 1, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return nn_int(env, -errno);
    }
    if (wake_fd >= 0 && pfd[1].revents) return nn_int(env, 0);
    if (pfd[0].revents == 0) continue;
    /* POLLERR after an abort or unmount: read() tells which (ENODEV, ECONNABORTED). */
    ssize_t n = read(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return nn_int(env, -errno);
    }
    if (n == 0) return nn_int(env, -ENODEV);
    return nn_int(env, n);
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

static napi_value make_eventfd(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return nn_throw_errno(env, errno, "eventfd");
  return nn_int(env, fd);
}

/* eventfdSignal(fd): makes the fd readable, which wakes a readRequest() polling it. */
static napi_value eventfd_signal(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  uint64_t one = 1;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || nn_get_int(env, argv[0], &fd)) return nn_throw_type(env, "eventfdSignal(fd) expected");
  if (write(fd, &one, sizeof one) < 0 && errno != EAGAIN) return nn_throw_errno(env, errno, "write");
  return NULL;
}

/* eventfdDrain(fd): clears a pending wake-up (non-blocking). */
static napi_value eventfd_drain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  uint64_t value;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || nn_get_int(env, argv[0], &fd)) return nn_throw_type(env, "eventfdDrain(fd) expected");
  if (read(fd, &value, sizeof value) < 0 && errno != EAGAIN) return nn_throw_errno(env, errno, "read");
  return NULL;
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
  umount_job *u = calloc(1, sizeof *u);
  nn_job *job = calloc(1, sizeof *job);
  if (!u || !job) {
    free(u);
    free(job);
    return nn_throw_errno(env, ENOMEM, "unmount");
  }
  if (argc < 2 || nn_get_path(env, argv[0], u->path, sizeof u->path) || nn_get_int(env, argv[1], &flags)) {
    free(u);
    free(job);
    return nn_throw_type(env, "unmount(path, flags) expected");
  }
  u->flags = flags;
  job->exec = umount_exec;
  job->data = u;
  job->free_data = free;
  return nn_job_start(env, job, "nydus:unmount");
}

napi_value nn_fuse_dev_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"readRequest", NULL, read_request, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writev", NULL, write_vec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeAsync", NULL, write_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfd", NULL, make_eventfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfdSignal", NULL, eventfd_signal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfdDrain", NULL, eventfd_drain, NULL, NULL, NULL, napi_enumerable, NULL},
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
