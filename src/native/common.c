/*
 * Helpers shared by the addon's modules (see common.h). The job runner gives
 * each blocking call its own short-lived thread and reports back through a
 * thread-safe function, which keeps the event loop alive until it settles.
 */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nn_throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "N-API call failed");
}

napi_value nn_errno_error(napi_env env, int err, const char *syscall) {
  char text[256];
  napi_value msg, error, val;
  snprintf(text, sizeof text, "%s: %s", syscall ? syscall : "native", strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_int32(env, err, &val);
  napi_set_named_property(env, error, "errno", val);
  napi_create_string_utf8(env, syscall ? syscall : "native", NAPI_AUTO_LENGTH, &val);
  napi_set_named_property(env, error, "syscall", val);
  return error;
}

napi_value nn_throw_errno(napi_env env, int err, const char *syscall) {
  napi_throw(env, nn_errno_error(env, err, syscall));
  return NULL;
}

napi_value nn_throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

int nn_get_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

int nn_get_double(napi_env env, napi_value v, double *out) {
  return napi_get_value_double(env, v, out) == napi_ok ? 0 : -1;
}

int nn_get_path(napi_env env, napi_value v, char *buf, size_t len) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, len, &n) != napi_ok) return -1;
  return n + 1 < len ? 0 : -1; /* refuse silently truncated paths */
}

int nn_get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type;
  void *ptr = NULL;
  size_t count = 0;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return -1;
  if (napi_get_typedarray_info(env, v, &type, &count, &ptr, NULL, NULL) != napi_ok) return -1;
  if (type != napi_uint8_array) return -1;
  *data = ptr;
  *len = count;
  return 0;
}

napi_value nn_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

static void job_free(nn_job *job) {
  if (job->free_data) job->free_data(job->data);
  free(job);
}

nn_job *nn_job_alloc(napi_env env, size_t size, nn_job_exec exec, nn_job_done done) {
  nn_job *job = calloc(1, sizeof *job);
  void *data = calloc(1, size);
  if (!job || !data) {
    free(job);
    free(data);
    nn_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  job->exec = exec;
  job->done = done;
  job->data = data;
  job->free_data = free;
  return job;
}

void nn_job_discard(nn_job *job) {
  job_free(job);
}

static void job_call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)context;
  nn_job *job = data;
  if (env != NULL) {
    if (job->err != 0) {
      napi_reject_deferred(env, job->deferred, nn_errno_error(env, job->err, job->syscall));
    } else {
      napi_value result = job->done ? job->done(env, job) : NULL;
      if (result == NULL) napi_get_undefined(env, &result);
      napi_resolve_deferred(env, job->deferred, result);
    }
  }
  job_free(job);
}

static void *job_thread(void *arg) {
  nn_job *job = arg;
  napi_threadsafe_function tsfn = job->tsfn;
  job->exec(job);
  napi_call_threadsafe_function(tsfn, job, napi_tsfn_blocking);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

napi_value nn_job_start(napi_env env, nn_job *job, const char *name) {
  napi_value promise, resource;
  pthread_t thread;
  pthread_attr_t attr;
  int rc;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    job_free(job);
    nn_throw_last(env);
    return NULL;
  }
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (napi_create_threadsafe_function(env, NULL, NULL, resource, 0, 1, NULL, NULL, NULL, job_call_js,
                                      &job->tsfn) != napi_ok) {
    napi_reject_deferred(env, job->deferred, nn_errno_error(env, ENOMEM, "napi_create_threadsafe_function"));
    job_free(job);
    return promise;
  }
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  rc = pthread_create(&thread, &attr, job_thread, job);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    napi_release_threadsafe_function(job->tsfn, napi_tsfn_abort);
    napi_reject_deferred(env, job->deferred, nn_errno_error(env, rc, "pthread_create"));
    job_free(job);
  }
  return promise;
}
