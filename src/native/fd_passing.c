/*
 * The supervisor socket protocol of nydusd (docs/contract.md §4.1),
 * byte for byte: the daemon connects; a save sends the state bytes with
 * exactly one fd (SCM_RIGHTS) in the first sendmsg, writes the rest, closes;
 * a restore receives the first segment with room for 16 fds and then reads
 * until the peer closes. The supervisor helpers listen, accept one
 * connection and receive (keeping the first fd of the first SCM_RIGHTS
 * message) or send. Every call runs as a job on its own thread.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RESTORE_FIRST_CHUNK (32 * 1024) /* nydusd's restore buffer */
#define RESTORE_MAX_FDS 16
#define SUPERVISOR_CHUNK (256 * 1024)  /* nydus-snapshotter's read size */
#define SUPERVISOR_MAX_FDS 64
#define MAX_STATE_BYTES (64u * 1024 * 1024) /* refuse larger peers instead of growing for ever */
#define MAX_FDS_KEPT 16

typedef struct {
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  int listen_fd;  /* supervisor side */
  int send_fd;    /* fd to attach, or -1 */
  int timeout_ms; /* <= 0: none */
  uint8_t *data;  /* sent or received bytes */
  size_t len, cap;
  int fds[MAX_FDS_KEPT];
  int nfds;
  int keep_first_only; /* supervisor receive: first fd of the first SCM_RIGHTS message */
  int first_chunk;     /* size of the first recvmsg */
  int chunk;           /* size of later recvmsg calls */
  int max_fds;         /* control space per recvmsg */
} sock_job;

static void sock_job_free(void *p) {
  sock_job *s = p;
  /* fds still held here were never handed to JS: close them. */
  for (int i = 0; i < s->nfds; i++) close(s->fds[i]);
  free(s->data);
  free(s);
}

static void fail(nn_job *job, const char *syscall) {
  job->err = errno ? errno : EIO;
  job->syscall = syscall;
}

static void set_timeouts(int fd, int timeout_ms) {
  if (timeout_ms <= 0) return;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int connect_path(nn_job *job, sock_job *s) {
  struct sockaddr_un addr;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail(job, "socket");
    return -1;
  }
  set_timeouts(fd, s->timeout_ms);
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, s->path, strlen(s->path));
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) errno = ETIMEDOUT;
    fail(job, "connect");
    close(fd);
    return -1;
  }
  return fd;
}

/* Waits for a connection on the listener (timeout_ms <= 0: for ever) and accepts it. */
static int accept_one(nn_job *job, sock_job *s) {
  struct pollfd pfd = {s->listen_fd, POLLIN, 0};
  for (;;) {
    int r = poll(&pfd, 1, s->timeout_ms > 0 ? s->timeout_ms : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      fail(job, "poll");
      return -1;
    }
    if (r == 0) {
      errno = ETIMEDOUT;
      fail(job, "accept");
      return -1;
    }
    if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
      errno = ECANCELED; /* the listener was shut down by close() */
      fail(job, "accept");
      return -1;
    }
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (fd < 0) {
      if (errno == EINVAL) errno = ECANCELED;
      fail(job, "accept");
      return -1;
    }
    set_timeouts(fd, s->timeout_ms);
    return fd;
  }
}

/* One sendmsg carrying the bytes and (if any) one fd, then the remainder with write. */
static int send_all(nn_job *job, sock_job *s, int fd) {
  size_t off = 0;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct iovec iov = {s->data, s->len};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (s->send_fd >= 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &s->send_fd, sizeof(int));
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == EAGAIN) errno = ETIMEDOUT;
      fail(job, "sendmsg");
      return -1;
    }
    off = (size_t)n;
    break;
  }
  while (off < s->len) {
    ssize_t n = send(fd, s->data + off, s->len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == EAGAIN) errno = ETIMEDOUT;
      fail(job, "write");
      return -1;
    }
    off += (size_t)n;
  }
  return 0;
}

static void take_fds(sock_job *s, struct msghdr *msg, int *seen_rights) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    int *fds = (int *)CMSG_DATA(c);
    for (int i = 0; i < n; i++) {
      int keep = s->keep_first_only ? (!*seen_rights && i == 0) : (s->nfds < MAX_FDS_KEPT);
      if (keep)
        s->fds[s->nfds++] = fds[i];
      else
        close(fds[i]);
    }
    *seen_rights = 1;
  }
}

/* recvmsg until EOF, collecting bytes and fds. */
static int receive_all(nn_job *job, sock_job *s, int fd) {
  int seen_rights = 0;
  size_t want = (size_t)s->first_chunk;
  size_t control_len = CMSG_SPACE(sizeof(int) * (size_t)s->max_fds);
  char *control = malloc(control_len);
  if (!control) {
    errno = ENOMEM;
    fail(job, "malloc");
    return -1;
  }
  for (;;) {
    if (s->cap - s->len < want) {
      size_t cap = s->len + want;
      uint8_t *grown = realloc(s->data, cap);
      if (!grown) {
        free(control);
        errno = ENOMEM;
        fail(job, "realloc");
        return -1;
      }
      s->data = grown;
      s->cap = cap;
    }
    struct iovec iov = {s->data + s->len, want};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = control_len;
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      free(control);
      if (errno == EAGAIN) errno = ETIMEDOUT;
      fail(job, "recvmsg");
      return -1;
    }
    take_fds(s, &msg, &seen_rights);
    if (n == 0) break;
    s->len += (size_t)n;
    if (s->len > MAX_STATE_BYTES) {
      free(control);
      errno = EMSGSIZE;
      fail(job, "recvmsg");
      return -1;
    }
    want = (size_t)s->chunk;
  }
  free(control);
  return 0;
}

static napi_value receive_done(napi_env env, nn_job *job) {
  sock_job *s = job->data;
  napi_value out, data, fds;
  void *copy = NULL;
  napi_create_object(env, &out);
  napi_create_buffer_copy(env, s->len, s->len ? s->data : (const void *)"", &copy, &data);
  napi_create_array_with_length(env, (size_t)s->nfds, &fds);
  for (int i = 0; i < s->nfds; i++) napi_set_element(env, fds, (uint32_t)i, nn_int(env, s->fds[i]));
  s->nfds = 0; /* now owned by JS */
  napi_set_named_property(env, out, "data", data);
  napi_set_named_property(env, out, "fds", fds);
  return out;
}

static void send_state_exec(nn_job *job) {
  sock_job *s = job->data;
  int fd = connect_path(job, s);
  if (fd < 0) return;
  send_all(job, s, fd);
  close(fd);
}

static void receive_state_exec(nn_job *job) {
  sock_job *s = job->data;
  int fd = connect_path(job, s);
  if (fd < 0) return;
  receive_all(job, s, fd);
  close(fd);
}

static void accept_receive_exec(nn_job *job) {
  sock_job *s = job->data;
  int fd = accept_one(job, s);
  if (fd < 0) return;
  receive_all(job, s, fd);
  close(fd);
}

static void accept_send_exec(nn_job *job) {
  sock_job *s = job->data;
  int fd = accept_one(job, s);
  if (fd < 0) return;
  send_all(job, s, fd);
  close(fd);
}

static sock_job *new_sock_job(void) {
  sock_job *s = calloc(1, sizeof *s);
  if (s) {
    s->listen_fd = -1;
    s->send_fd = -1;
  }
  return s;
}

static int copy_bytes(napi_env env, napi_value v, sock_job *s) {
  uint8_t *data;
  size_t len;
  if (nn_get_bytes(env, v, &data, &len)) return -1;
  s->data = malloc(len ? len : 1);
  if (!s->data) return -1;
  memcpy(s->data, data, len);
  s->len = s->cap = len;
  return 0;
}

static napi_value start(napi_env env, sock_job *s, nn_job_exec exec, nn_job_done done, const char *name) {
  nn_job *job = calloc(1, sizeof *job);
  if (!job) {
    sock_job_free(s);
    return nn_throw_errno(env, ENOMEM, name);
  }
  job->exec = exec;
  job->done = done;
  job->data = s;
  job->free_data = sock_job_free;
  return nn_job_start(env, job, name);
}

/* sendStateWithFd(path, bytes, fd, timeoutMs) -> Promise<void> */
static napi_value send_state_with_fd(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, timeout;
  sock_job *s = new_sock_job();
  if (!s) return nn_throw_errno(env, ENOMEM, "sendStateWithFd");
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      nn_get_path(env, argv[0], s->path, sizeof s->path) || copy_bytes(env, argv[1], s) ||
      nn_get_int(env, argv[2], &fd) || nn_get_int(env, argv[3], &timeout)) {
    sock_job_free(s);
    return nn_throw_type(env, "sendStateWithFd(path, Uint8Array, fd, timeoutMs) expected (path < 108 bytes)");
  }
  if (s->len == 0 || fd < 0) {
    sock_job_free(s);
    /* An empty stream segment cannot carry SCM_RIGHTS, and nydusd sends nothing without an fd. */
    return nn_throw_errno(env, EINVAL, "sendStateWithFd");
  }
  s->send_fd = fd;
  s->timeout_ms = timeout;
  return start(env, s, send_state_exec, NULL, "nydus:sendStateWithFd");
}

/* receiveStateWithFd(path, timeoutMs) -> Promise<{data, fds}> */
static napi_value receive_state_with_fd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t timeout;
  sock_job *s = new_sock_job();
  if (!s) return nn_throw_errno(env, ENOMEM, "receiveStateWithFd");
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      nn_get_path(env, argv[0], s->path, sizeof s->path) || nn_get_int(env, argv[1], &timeout)) {
    sock_job_free(s);
    return nn_throw_type(env, "receiveStateWithFd(path, timeoutMs) expected (path < 108 bytes)");
  }
  s->timeout_ms = timeout;
  s->first_chunk = RESTORE_FIRST_CHUNK;
  s->chunk = RESTORE_FIRST_CHUNK;
  s->max_fds = RESTORE_MAX_FDS;
  return start(env, s, receive_state_exec, receive_done, "nydus:receiveStateWithFd");
}

/* listenUnix(path) -> fd. Removes a stale socket file first, as the snapshotter does. */
static napi_value listen_unix(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un addr;
  struct stat st;
  memset(&addr, 0, sizeof addr);
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || nn_get_path(env, argv[0], addr.sun_path, sizeof addr.sun_path))
    return nn_throw_type(env, "listenUnix(path) expected (path < 108 bytes)");
  if (lstat(addr.sun_path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return nn_throw_errno(env, EEXIST, "bind");
    unlink(addr.sun_path);
  }
  addr.sun_family = AF_UNIX;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return nn_throw_errno(env, errno, "socket");
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 1) < 0) {
    int err = errno;
    close(fd);
    return nn_throw_errno(env, err, "bind");
  }
  return nn_int(env, fd);
}

/* shutdownListener(fd): wakes a pending accept, which then fails with ECANCELED. */
static napi_value shutdown_listener(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || nn_get_int(env, argv[0], &fd)) return nn_throw_type(env, "shutdownListener(fd) expected");
  if (shutdown(fd, SHUT_RDWR) < 0 && errno != ENOTCONN) return nn_throw_errno(env, errno, "shutdown");
  return NULL;
}

/* acceptReceive(listenFd, timeoutMs) -> Promise<{data, fds}> (fds: at most the first one). */
static napi_value accept_receive(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, timeout;
  sock_job *s = new_sock_job();
  if (!s) return nn_throw_errno(env, ENOMEM, "acceptReceive");
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      nn_get_int(env, argv[0], &fd) || nn_get_int(env, argv[1], &timeout)) {
    sock_job_free(s);
    return nn_throw_type(env, "acceptReceive(listenFd, timeoutMs) expected");
  }
  s->listen_fd = fd;
  s->timeout_ms = timeout;
  s->keep_first_only = 1;
  s->first_chunk = SUPERVISOR_CHUNK;
  s->chunk = SUPERVISOR_CHUNK;
  s->max_fds = SUPERVISOR_MAX_FDS;
  return start(env, s, accept_receive_exec, receive_done, "nydus:acceptReceive");
}

/* acceptSend(listenFd, bytes, fd, timeoutMs) -> Promise<void> */
static napi_value accept_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t lfd, fd, timeout;
  sock_job *s = new_sock_job();
  if (!s) return nn_throw_errno(env, ENOMEM, "acceptSend");
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      nn_get_int(env, argv[0], &lfd) || copy_bytes(env, argv[1], s) || nn_get_int(env, argv[2], &fd) ||
      nn_get_int(env, argv[3], &timeout)) {
    sock_job_free(s);
    return nn_throw_type(env, "acceptSend(listenFd, Uint8Array, fd, timeoutMs) expected");
  }
  if (s->len == 0) {
    sock_job_free(s);
    return nn_throw_errno(env, EINVAL, "acceptSend");
  }
  s->listen_fd = lfd;
  s->send_fd = fd;
  s->timeout_ms = timeout;
  return start(env, s, accept_send_exec, NULL, "nydus:acceptSend");
}

napi_value nn_fd_passing_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sendStateWithFd", NULL, send_state_with_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"receiveStateWithFd", NULL, receive_state_with_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenUnix", NULL, listen_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"shutdownListener", NULL, shutdown_listener, NULL, NULL, NULL, napi_enumerable, NULL},
      {"acceptReceive", NULL, accept_receive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"acceptSend", NULL, accept_send, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
