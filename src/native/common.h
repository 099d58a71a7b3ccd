/*
 * Shared helpers of the nydus native addon: argument checks, errno-carrying
 * errors and "jobs" that run one blocking operation on a dedicated thread and
 * settle a promise on the JS thread. Jobs never use libuv's thread pool, so a
 * long accept() or a blocked notification cannot starve storage I/O.
 */
#ifndef NYDUS_NATIVE_COMMON_H
#define NYDUS_NATIVE_COMMON_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#define NAPI_CALL(env, call)                                   \
  do {                                                         \
    if ((call) != napi_ok) {                                   \
      nn_throw_last(env);                                      \
      return NULL;                                             \
    }                                                          \
  } while (0)

/* Throws the pending N-API error (or a generic one) as a JS exception. */
void nn_throw_last(napi_env env);
/* Creates an Error with .errno (positive) and .syscall set. */
napi_value nn_errno_error(napi_env env, int err, const char *syscall);
/* Throws nn_errno_error. Returns NULL for convenient `return`. */
napi_value nn_throw_errno(napi_env env, int err, const char *syscall);
napi_value nn_throw_type(napi_env env, const char *msg);

int nn_get_int(napi_env env, napi_value v, int32_t *out);
int nn_get_double(napi_env env, napi_value v, double *out);
/* Path argument copied into buf (NUL-terminated); returns 0 on success. */
int nn_get_path(napi_env env, napi_value v, char *buf, size_t len);
/* Data pointer of a Uint8Array/Buffer (SharedArrayBuffer views included). */
int nn_get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len);

napi_value nn_int(napi_env env, int64_t v);

typedef struct nn_job nn_job;
/* Runs on the job's own thread; sets job->err/job->syscall on failure. */
typedef void (*nn_job_exec)(nn_job *job);
/* Runs on the JS thread after success; returns the resolved value. */
typedef napi_value (*nn_job_done)(napi_env env, nn_job *job);

struct nn_job {
  napi_deferred deferred;
  napi_threadsafe_function tsfn;
  nn_job_exec exec;
  nn_job_done done;
  int err;
  const char *syscall;
  void *data;
  void (*free_data)(void *data);
};

/*
 * A job whose data is `size` zeroed bytes (freed with the job), running `exec` and then
 * `done` (NULL: resolve with undefined). NULL with an exception pending when out of memory.
 */
nn_job *nn_job_alloc(napi_env env, size_t size, nn_job_exec exec, nn_job_done done);
/* Frees a job that was never started (e.g. its arguments were refused). */
void nn_job_discard(nn_job *job);

/*
 * Starts `job` on a detached thread and returns its promise. Takes ownership
 * of job->data (freed with free_data). Returns NULL with an exception pending
 * when the thread cannot start.
 */
napi_value nn_job_start(napi_env env, nn_job *job, const char *name);

napi_value nn_fuse_dev_init(napi_env env, napi_value exports);
napi_value nn_fd_passing_init(napi_env env, napi_value exports);
napi_value nn_block_mount_init(napi_env env, napi_value exports);
napi_value nn_lz4_init(napi_env env, napi_value exports);
napi_value nn_zran_init(napi_env env, napi_value exports);
napi_value nn_xattr_init(napi_env env, napi_value exports);

#endif
