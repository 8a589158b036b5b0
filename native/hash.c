// A hash thread without a JavaScript engine: blob bytes are hashed with OpenSSL (Node's own,
// through its headers) on one native thread per Node environment, while the main thread
// receives the next bytes and the thread pool writes these. A Worker doing the same costs
// 10-20 MB of RSS for its isolate; this thread costs its stack.
//
// Updates go into one FIFO, so the updates of one hash are hashed in the order they were asked
// for, and several may be outstanding. Each settles a promise on the event loop (a uv_async
// wakes it). A job holds a reference to the bytes' typed array and to the hash, so neither is
// collected under the thread; the hash's context is freed when its handle is collected.
#define _GNU_SOURCE
#include <node_api.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct {
  EVP_MD_CTX* ctx;
  int pending;   // updates asked for and not yet settled
  int finished;  // digest() ran: no more updates
} hash_t;

typedef struct job {
  struct job* next;
  hash_t* hash;
  const uint8_t* data;
  size_t length;
  napi_ref bytes_ref;  // keeps the typed array (and its memory) alive
  napi_ref hash_ref;   // keeps the hash handle alive
  napi_deferred deferred;
  int ok;
} job_t;

typedef struct {
  uv_thread_t thread;
  uv_mutex_t lock;
  uv_cond_t wake;
  uv_async_t async;
  job_t* todo_head;
  job_t* todo_tail;
  job_t* done_head;
  job_t* done_tail;
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
    job->ok = EVP_DigestUpdate(job->hash->ctx, job->data, job->length) == 1;
    uv_mutex_lock(&h->lock);
    push(&h->done_head, &h->done_tail, job);
    uv_async_send(&h->async);
  }
  uv_mutex_unlock(&h->lock);
}

// On the event loop: settles every finished job's promise.
static void on_done(uv_async_t* async) {
  hasher_t* h = async->data;
  uv_mutex_lock(&h->lock);
  job_t* job = h->done_head;
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
  while (job) {
    job_t* next = job->next;
    job->hash->pending--;
    if (job->ok) {
      napi_value undefined;
      napi_get_undefined(env, &undefined);
      napi_resolve_deferred(env, job->deferred, undefined);
    } else {
      napi_value message, error;
      napi_create_string_utf8(env, "the hash update failed in OpenSSL", NAPI_AUTO_LENGTH, &message);
      napi_create_error(env, NULL, message, &error);
      napi_reject_deferred(env, job->deferred, error);
    }
    napi_delete_reference(env, job->bytes_ref);
    napi_delete_reference(env, job->hash_ref);
    free(job);
    job = next;
    if (--h->outstanding == 0) uv_unref((uv_handle_t*)&h->async);
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
  for (job_t* job = h->done_head; job;) {
    job_t* next = job->next;
    free(job);
    job = next;
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

// update(handle, typedArray) -> Promise<void>: hashes all of the typed array's bytes.
static napi_value update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  hash_t* hash = NULL;
  bool is_typed = false;
  if (argc != 2 || napi_unwrap(env, argv[0], (void**)&hash) != napi_ok || !hash) return throw_error(env, "update(handle, bytes): not a hash handle");
  if (napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed) return throw_error(env, "update(handle, bytes): bytes must be a Uint8Array");
  if (hash->finished) return throw_error(env, "update after digest");
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    return throw_error(env, "update(handle, bytes): bytes must be a Uint8Array");
  }
  hasher_t* h = hasher_of(env);
  if (!h || !start_thread(h)) return throw_error(env, "the hash thread could not be started");
  job_t* job = calloc(1, sizeof *job);
  if (!job) return throw_error(env, "out of memory");
  job->hash = hash;
  job->data = data;
  job->length = length;
  napi_value promise;
  napi_create_reference(env, argv[1], 1, &job->bytes_ref);
  napi_create_reference(env, argv[0], 1, &job->hash_ref);
  napi_create_promise(env, &job->deferred, &promise);
  hash->pending++;
  if (h->outstanding++ == 0) uv_ref((uv_handle_t*)&h->async);
  uv_mutex_lock(&h->lock);
  push(&h->todo_head, &h->todo_tail, job);
  uv_cond_signal(&h->wake);
  uv_mutex_unlock(&h->lock);
  return promise;
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
      {"digest", NULL, digest, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
