// A hash thread without a JavaScript engine: blob bytes are hashed with OpenSSL (Node's own,
// through its headers) on one native thread per Node environment, while the main thread
// receives the next bytes. A Worker doing the same costs 10-20 MB of RSS for its isolate; this
// thread costs its stack. writeAndUpdate also writes the bytes into the blob's file first
// (pwrite), so a fill's batch costs one hand-off to this thread, not a second round trip through
// the thread pool beside it. It reports the write before hashing, so the next batch is queued
// while this one is hashed and the thread never waits for the main thread between the two.
//
// Jobs go into one FIFO, so the updates of one hash are hashed in the order they were asked
// for, and several may be outstanding. Each settles its promises on the event loop (a uv_async
// wakes it, once for any number of reports). A job holds a reference to the bytes' typed array
// and to the hash, so neither is collected under the thread; the hash's context is freed when
// its handle is collected. The caller keeps a job's file descriptor open until its write settled.
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
  EVP_MD_CTX* ctx;
  int pending;   // updates asked for and not yet settled
  int finished;  // digest() ran: no more updates
  int broken;    // a write failed: the hash lacks those bytes, so it gives no digest
} hash_t;

struct job;

// What the thread tells the event loop: a job's bytes are written, or the job is done.
typedef struct report {
  struct report* next;
  struct job* job;
} report_t;

typedef struct job {
  struct job* next;
  hash_t* hash;
  const uint8_t* data;
  size_t length;
  int fd;            // where to pwrite the bytes before hashing them; -1: hash only
  int64_t position;  // of the bytes in that file
  int write_errno;   // the pwrite's failure, 0 if none
  napi_ref bytes_ref;  // keeps the typed array (and its memory) alive
  napi_ref hash_ref;   // keeps the hash handle alive
  napi_deferred written;  // writeAndUpdate only: settles once the bytes are in the file
  napi_deferred hashed;   // settles once the bytes are hashed (rejects if their write failed)
  report_t written_report;
  report_t hashed_report;
  int ok;
} job_t;

typedef struct {
  uv_thread_t thread;
  uv_mutex_t lock;
  uv_cond_t wake;
  uv_async_t async;
  job_t* todo_head;
  job_t* todo_tail;
  report_t* done_head;
  report_t* done_tail;
  int outstanding;  // jobs queued or running: the async keeps the loop alive while any are
  int stopping;
  int started;
  napi_env env;
  napi_async_context async_context;  // settling promises in a callback scope runs their reactions
} hasher_t;

static void push(job_t** head, job_t** tail, job_t* job) {
  job->next = NULL;
  if (*tail) (*tail)->next = job;
  else *head = job;
  *tail = job;
}

// With the lock held.
static void report(hasher_t* h, report_t* r) {
  r->next = NULL;
  if (h->done_tail) h->done_tail->next = r;
  else h->done_head = r;
  h->done_tail = r;
  uv_async_send(&h->async);
}

// Every byte, or the errno that stopped it: a file may take fewer bytes than asked (a short write).
static int write_all(int fd, const uint8_t* data, size_t length, int64_t position) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pwrite(fd, data + done, length - done, (off_t)(position + (int64_t)done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    done += (size_t)n;
  }
  return 0;
}

static void run_thread(void* arg) {
  hasher_t* h = arg;
  // Its own name, so its CPU shows apart from the main thread's (it inherited that name).
  pthread_setname_np(pthread_self(), "wharf-hash");
  uv_mutex_lock(&h->lock);
  for (;;) {
    while (!h->todo_head && !h->stopping) uv_cond_wait(&h->wake, &h->lock);
    if (h->stopping) break;
    job_t* job = h->todo_head;
    h->todo_head = job->next;
    if (!h->todo_head) h->todo_tail = NULL;
    uv_mutex_unlock(&h->lock);
    if (job->fd >= 0) {
      job->write_errno = write_all(job->fd, job->data, job->length, job->position);
      uv_mutex_lock(&h->lock);
      report(h, &job->written_report);
      uv_mutex_unlock(&h->lock);
    }
    job->ok = job->write_errno == 0 && EVP_DigestUpdate(job->hash->ctx, job->data, job->length) == 1;
    uv_mutex_lock(&h->lock);
    report(h, &job->hashed_report);
  }
  uv_mutex_unlock(&h->lock);
}

// Shaped like Node's own fs errors (code, errno, syscall), so the cache's disk-error handling
// treats a full disk the same whichever thread wrote.
static napi_value write_error(napi_env env, int err) {
  char text[160];
  snprintf(text, sizeof text, "%s: %s, write", uv_err_name(-err), uv_strerror(-err));
  napi_value code, message, error, errno_value, syscall;
  napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_create_string_utf8(env, "write", NAPI_AUTO_LENGTH, &syscall);
  napi_set_named_property(env, error, "syscall", syscall);
  return error;
}

static void settle(napi_env env, napi_deferred deferred, napi_value error) {
  if (error) {
    napi_reject_deferred(env, deferred, error);
    return;
  }
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_resolve_deferred(env, deferred, undefined);
}

// On the event loop: settles the promises of every report, in the order they were made (a
// job's write before its hash).
static void on_done(uv_async_t* async) {
  hasher_t* h = async->data;
  uv_mutex_lock(&h->lock);
  report_t* r = h->done_head;
  h->done_head = h->done_tail = NULL;
  uv_mutex_unlock(&h->lock);
  napi_env env = h->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  // Called by libuv, not from JavaScript: without a callback scope the promises' reactions
  // would wait for some later callback to drain the microtask queue.
  napi_value resource;
  napi_callback_scope callback_scope;
  napi_create_object(env, &resource);
  napi_open_callback_scope(env, resource, h->async_context, &callback_scope);
  while (r) {
    report_t* next = r->next;
    job_t* job = r->job;
    napi_value error = NULL;
    if (job->write_errno != 0) {
      job->hash->broken = 1;
      error = write_error(env, job->write_errno);
    } else if (!job->ok && r == &job->hashed_report) {
      napi_value message;
      napi_create_string_utf8(env, "the hash update failed in OpenSSL", NAPI_AUTO_LENGTH, &message);
      napi_create_error(env, NULL, message, &error);
    }
    if (r == &job->written_report) {
      settle(env, job->written, error);
    } else {
      job->hash->pending--;
      settle(env, job->hashed, error);
      napi_delete_reference(env, job->bytes_ref);
      napi_delete_reference(env, job->hash_ref);
      free(job);
      if (--h->outstanding == 0) uv_unref((uv_handle_t*)&h->async);
    }
    r = next;
  }
  napi_close_callback_scope(env, callback_scope);
  napi_close_handle_scope(env, scope);
}

static void on_async_closed(uv_handle_t* handle) {
  free(handle->data);
}

// The environment is going away (process exit, a worker's end): stop and join the thread.
// Jobs not settled by then are dropped with it; nothing waits for them any more.
static void cleanup(void* arg) {
  hasher_t* h = arg;
  if (h->started) {
    uv_mutex_lock(&h->lock);
    h->stopping = 1;
    uv_cond_signal(&h->wake);
    uv_mutex_unlock(&h->lock);
    uv_thread_join(&h->thread);
  }
  for (job_t* job = h->todo_head; job;) {
    job_t* next = job->next;
    free(job);
    job = next;
  }
  // The thread is joined: every job taken off todo reported its hash, so each is freed there.
  for (report_t* r = h->done_head; r;) {
    report_t* next = r->next;
    if (r == &r->job->hashed_report) free(r->job);
    r = next;
  }
  napi_async_destroy(h->env, h->async_context);
  uv_mutex_destroy(&h->lock);
  uv_cond_destroy(&h->wake);
  uv_close((uv_handle_t*)&h->async, on_async_closed);
}

static napi_value throw_error(napi_env env, const char* message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

static hasher_t* hasher_of(napi_env env) {
  hasher_t* h = NULL;
  napi_get_instance_data(env, (void**)&h);
  return h;
}

static void finalize_hash(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  hash_t* hash = data;
  EVP_MD_CTX_free(hash->ctx);
  free(hash);
}

// create(algorithm) -> handle
static napi_value create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[32];
  size_t len = 0;
  if (argc != 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok || len >= sizeof name - 1) {
    return throw_error(env, "create(algorithm): algorithm must be a short string");
  }
  const EVP_MD* md = EVP_get_digestbyname(name);
  if (!md) return throw_error(env, "unsupported hash algorithm");
  hash_t* hash = calloc(1, sizeof *hash);
  if (!hash) return throw_error(env, "out of memory");
  hash->ctx = EVP_MD_CTX_new();
  if (!hash->ctx || EVP_DigestInit_ex(hash->ctx, md, NULL) != 1) {
    EVP_MD_CTX_free(hash->ctx);
    free(hash);
    return throw_error(env, "the hash could not be started in OpenSSL");
  }
  napi_value handle;
  napi_create_object(env, &handle);
  if (napi_wrap(env, handle, hash, finalize_hash, NULL, NULL) != napi_ok) {
    finalize_hash(env, hash, NULL);
    return throw_error(env, "the hash handle could not be made");
  }
  return handle;
}

static int start_thread(hasher_t* h) {
  if (h->started) return 1;
  if (uv_thread_create(&h->thread, run_thread, h) != 0) return 0;
  h->started = 1;
  return 1;
}

// Queues a job for the thread: hashes the typed array's bytes, pwriting them to fd first if fd >= 0.
// Returns the hash's promise, or with fd [written, hashed].
static napi_value enqueue(napi_env env, napi_value handle, napi_value bytes, int fd, int64_t position) {
  hash_t* hash = NULL;
  bool is_typed = false;
  if (napi_unwrap(env, handle, (void**)&hash) != napi_ok || !hash) return throw_error(env, "not a hash handle");
  if (napi_is_typedarray(env, bytes, &is_typed) != napi_ok || !is_typed) return throw_error(env, "bytes must be a Uint8Array");
  if (hash->finished) return throw_error(env, "update after digest");
  if (hash->broken) return throw_error(env, "update after a failed write");
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_typedarray_info(env, bytes, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    return throw_error(env, "bytes must be a Uint8Array");
  }
  hasher_t* h = hasher_of(env);
  if (!h || !start_thread(h)) return throw_error(env, "the hash thread could not be started");
  job_t* job = calloc(1, sizeof *job);
  if (!job) return throw_error(env, "out of memory");
  job->hash = hash;
  job->data = data;
  job->length = length;
  job->fd = fd;
  job->position = position;
  job->written_report.job = job;
  job->hashed_report.job = job;
  napi_value hashed, written, promises;
  napi_create_reference(env, bytes, 1, &job->bytes_ref);
  napi_create_reference(env, handle, 1, &job->hash_ref);
  napi_create_promise(env, &job->hashed, &hashed);
  if (fd >= 0) {
    napi_create_promise(env, &job->written, &written);
    napi_create_array_with_length(env, 2, &promises);
    napi_set_element(env, promises, 0, written);
    napi_set_element(env, promises, 1, hashed);
  }
  hash->pending++;
  if (h->outstanding++ == 0) uv_ref((uv_handle_t*)&h->async);
  uv_mutex_lock(&h->lock);
  push(&h->todo_head, &h->todo_tail, job);
  uv_cond_signal(&h->wake);
  uv_mutex_unlock(&h->lock);
  return fd >= 0 ? promises : hashed;
}

// update(handle, typedArray) -> Promise<void>: hashes all of the typed array's bytes.
static napi_value update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2) return throw_error(env, "update(handle, bytes)");
  return enqueue(env, argv[0], argv[1], -1, 0);
}

// writeAndUpdate(handle, fd, typedArray, position) -> [written, hashed]: two promises; pwrites all
// of the typed array's bytes to fd at position, then hashes them. A failed write rejects both
// with the errno's code and leaves the hash without a digest.
static napi_value write_and_update(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  int64_t position = -1;
  if (argc != 4 || napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0 || napi_get_value_int64(env, argv[3], &position) != napi_ok || position < 0) {
    return throw_error(env, "writeAndUpdate(handle, fd, bytes, position): fd and position must be non-negative integers");
  }
  return enqueue(env, argv[0], argv[2], fd, position);
}

// digest(handle) -> hex string, once every update has settled.
static napi_value digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  hash_t* hash = NULL;
  if (argc != 1 || napi_unwrap(env, argv[0], (void**)&hash) != napi_ok || !hash) return throw_error(env, "digest(handle): not a hash handle");
  if (hash->finished) return throw_error(env, "digest twice");
  if (hash->pending > 0) return throw_error(env, "digest while updates are outstanding");
  if (hash->broken) return throw_error(env, "no digest: a write of these bytes failed");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  hash->finished = 1;
  if (EVP_DigestFinal_ex(hash->ctx, md, &md_len) != 1) return throw_error(env, "the digest failed in OpenSSL");
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned int i = 0; i < md_len; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  napi_value out;
  napi_create_string_utf8(env, hex, 2 * md_len, &out);
  return out;
}

NAPI_MODULE_INIT() {
  hasher_t* h = calloc(1, sizeof *h);
  uv_loop_t* loop;
  if (!h || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    free(h);
    return NULL;
  }
  h->env = env;
  napi_value name;
  napi_create_string_utf8(env, "wharf:hash", NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, NULL, name, &h->async_context) != napi_ok) {
    free(h);
    return NULL;
  }
  uv_mutex_init(&h->lock);
  uv_cond_init(&h->wake);
  uv_async_init(loop, &h->async, on_done);
  h->async.data = h;
  uv_unref((uv_handle_t*)&h->async);
  napi_set_instance_data(env, h, NULL, NULL);
  napi_add_env_cleanup_hook(env, cleanup, h);
  napi_property_descriptor props[] = {
      {"create", NULL, create, NULL, NULL, NULL, napi_default, NULL},
      {"update", NULL, update, NULL, NULL, NULL, napi_default, NULL},
      {"writeAndUpdate", NULL, write_and_update, NULL, NULL, NULL, napi_default, NULL},
      {"digest", NULL, digest, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
