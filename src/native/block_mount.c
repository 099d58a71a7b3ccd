/*
 * Loop devices and mount(2) for the erofs fs driver: attach a file read-only to a
 * free loop device (LOOP_CONFIGURE with autoclear, optionally direct I/O), detach a
 * loop device, mount a filesystem. Each runs on a job thread: opening a blob view
 * and mounting erofs over it can need the daemon's own FUSE session, which answers on
 * the JS thread, so none of these may run there.
 */
#define _GNU_SOURCE
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

/* How often LOOP_CTL_GET_FREE is asked again when another process wins the race for a device. */
#define LOOP_ATTACH_TRIES 64

typedef struct {
  char path[4096];
  int direct_io;
  int block_size;
  /* Results: the loop device number and an fd on it that keeps it attached. */
  int index;
  int loop_fd;
  int direct_io_used;
} loop_attach_job;

static int configure(int loop_fd, int file_fd, const loop_attach_job *l, int dio) {
  struct loop_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.fd = (uint32_t)file_fd;
  cfg.block_size = (uint32_t)l->block_size;
  /* Autoclear: the device detaches itself at its last close (our fd, then the erofs
   * mount), so no crash or failed mount can leave it behind. */
  cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | (dio ? LO_FLAGS_DIRECT_IO : 0);
  size_t n = strnlen(l->path, LO_NAME_SIZE - 1); /* shown by losetup; the name may be cut */
  memcpy(cfg.info.lo_file_name, l->path, n);
  return ioctl(loop_fd, LOOP_CONFIGURE, &cfg);
}

static void loop_attach_exec(nn_job *job) {
  loop_attach_job *l = job->data;
  int file = open(l->path, O_RDONLY | O_CLOEXEC);
  if (file < 0) {
    job->err = errno;
    job->syscall = "open";
    return;
  }
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) {
    job->err = errno;
    job->syscall = "open(/dev/loop-control)";
    close(file);
    return;
  }
  job->err = EBUSY;
  job->syscall = "ioctl(LOOP_CONFIGURE)";
  for (int tries = 0; tries < LOOP_ATTACH_TRIES; tries++) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      job->err = errno;
      job->syscall = "ioctl(LOOP_CTL_GET_FREE)";
      break;
    }
    char dev[32];
    snprintf(dev, sizeof dev, "/dev/loop%d", n);
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue; /* udev has not created the node yet */
      job->err = errno;
      job->syscall = "open(/dev/loopN)";
      break;
    }
    int rc = configure(fd, file, l, l->direct_io);
    int dio = l->direct_io;
    /* A backing file that cannot do O_DIRECT: attach buffered rather than not at all. */
    if (rc < 0 && errno == EINVAL && dio) {
      rc = configure(fd, file, l, 0);
      dio = 0;
    }
    if (rc == 0) {
      l->index = n;
      l->loop_fd = fd;
      l->direct_io_used = dio;
      job->err = 0;
      job->syscall = NULL;
      break;
    }
    int e = errno;
    close(fd);
    if (e == EBUSY) continue; /* another process configured it after GET_FREE */
    job->err = e;
    break;
  }
  close(ctl);
  close(file);
}

static napi_value loop_attach_done(napi_env env, nn_job *job) {
  loop_attach_job *l = job->data;
  napi_value out;
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "index", nn_int(env, l->index));
  napi_set_named_property(env, out, "fd", nn_int(env, l->loop_fd));
  napi_value dio;
  napi_get_boolean(env, l->direct_io_used != 0, &dio);
  napi_set_named_property(env, out, "directIo", dio);
  return out;
}

/* loopAttach(path, directIo, blockSize) -> Promise<{index, fd, directIo}>. */
static napi_value loop_attach(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  bool dio = false;
  int32_t block_size = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nn_job *job = nn_job_alloc(env, sizeof(loop_attach_job), loop_attach_exec, loop_attach_done);
  if (!job) return NULL;
  loop_attach_job *l = job->data;
  if (argc < 3 || nn_get_path(env, argv[0], l->path, sizeof l->path) || napi_get_value_bool(env, argv[1], &dio) != napi_ok ||
      nn_get_int(env, argv[2], &block_size) || block_size < 0) {
    nn_job_discard(job);
    return nn_throw_type(env, "loopAttach(path, directIo, blockSize) expected");
  }
  l->direct_io = dio;
  l->block_size = block_size;
  l->loop_fd = -1;
  return nn_job_start(env, job, "nydus:loop");
}

typedef struct {
  int index;
} loop_detach_job;

static void loop_detach_exec(nn_job *job) {
  loop_detach_job *d = job->data;
  char dev[32];
  snprintf(dev, sizeof dev, "/dev/loop%d", d->index);
  int fd = open(dev, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    job->err = errno;
    job->syscall = "open(/dev/loopN)";
    return;
  }
  /* On a device still open elsewhere this marks it to detach at its last close. */
  if (ioctl(fd, LOOP_CLR_FD, 0) < 0) {
    job->err = errno;
    job->syscall = "ioctl(LOOP_CLR_FD)";
  }
  close(fd);
}

/* loopDetach(index) -> Promise<void>. */
static napi_value loop_detach(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t index;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || nn_get_int(env, argv[0], &index) || index < 0) return nn_throw_type(env, "loopDetach(index) expected");
  nn_job *job = nn_job_alloc(env, sizeof(loop_detach_job), loop_detach_exec, NULL);
  if (!job) return NULL;
  ((loop_detach_job *)job->data)->index = index;
  return nn_job_start(env, job, "nydus:loop");
}

typedef struct {
  char source[4096];
  char target[4096];
  char fstype[64];
  char data[8192];
  unsigned long flags;
} mount_job;

static void mount_exec(nn_job *job) {
  mount_job *m = job->data;
  if (mount(m->source, m->target, m->fstype, m->flags, m->data) < 0) {
    job->err = errno;
    job->syscall = "mount";
  }
}

/* mountFs(source, target, fstype, readOnly, data) -> Promise<void>. */
static napi_value mount_fs(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  bool ro = true;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nn_job *job = nn_job_alloc(env, sizeof(mount_job), mount_exec, NULL);
  if (!job) return NULL;
  mount_job *m = job->data;
  if (argc < 5 || nn_get_path(env, argv[0], m->source, sizeof m->source) || nn_get_path(env, argv[1], m->target, sizeof m->target) ||
      nn_get_path(env, argv[2], m->fstype, sizeof m->fstype) || napi_get_value_bool(env, argv[3], &ro) != napi_ok ||
      nn_get_path(env, argv[4], m->data, sizeof m->data)) {
    nn_job_discard(job);
    return nn_throw_type(env, "mountFs(source, target, fstype, readOnly, data) expected");
  }
  m->flags = ro ? MS_RDONLY : 0;
  return nn_job_start(env, job, "nydus:mount");
}

napi_value nn_block_mount_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"loopAttach", NULL, loop_attach, NULL, NULL, NULL, napi_enumerable, NULL},
      {"loopDetach", NULL, loop_detach, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mountFs", NULL, mount_fs, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
