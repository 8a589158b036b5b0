// sendfile(2) for Node sockets: copies file bytes to a connected socket inside the kernel, the
// way nginx serves cached files. Node has no sendfile; its stream path spends about twice the CPU
// per byte and reached half of nginx's throughput here (docs/benchmarks.md).
//
// The transfer runs on the calling thread's event loop: a uv_poll watcher on a dup of the socket
// descriptor waits for room in the socket buffer, and each wake-up sends until the kernel says
// EAGAIN or a per-turn budget is spent, so one fast client cannot starve the loop. The dup has
// its own epoll registration, which leaves Node's own watcher on the socket untouched.
// The socket is corked (TCP_CORK, nginx's tcp_nopush) for the transfer, so the kernel sends
// full segments rather than one per call's tail, and uncorked at its end, which sends what is
// left at once (a corked tail would wait 200 ms): a single stream ran a quarter faster here.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// Bytes sent per event-loop turn before yielding to other work.
#define TURN_BUDGET (8 << 20)
// Largest single sendfile(2) call.
#define CALL_MAX (2 << 20)

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  int socket_fd;  // our dup, closed when the transfer ends
  int file_fd;    // owned by the caller, who keeps it open until the callback
  int64_t offset;
  int64_t remaining;
  int64_t sent;
  int error;      // errno of the failure, or 0
  int ending;     // uv_close was called
  int ended;      // the callback ran
  int wrapped;    // the JS handle object still exists
} transfer_t;

static void maybe_free(transfer_t* t) {
  if (t->ended && !t->wrapped) free(t);
}

static napi_value make_error(napi_env env, int err) {
  napi_value code, message, error;
  const char* name = err == ECANCELED ? "ECANCELED" : uv_err_name(-err);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, uv_strerror(-err), NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  return error;
}

static void on_closed(uv_handle_t* handle) {
  transfer_t* t = (transfer_t*)handle;
  close(t->socket_fd);
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value callback, recv, argv[2], result;
  napi_get_reference_value(env, t->callback, &callback);
  napi_get_global(env, &recv);
  if (t->error) argv[0] = make_error(env, t->error);
  else napi_get_null(env, &argv[0]);
  napi_create_int64(env, t->sent, &argv[1]);
  t->ended = 1;
  if (napi_make_callback(env, t->async_context, recv, callback, 2, argv, &result) == napi_pending_exception) {
    // Nothing of ours is on the stack: hand a throwing callback to process 'uncaughtException'.
    napi_value exception;
    napi_get_and_clear_last_exception(env, &exception);
    napi_fatal_exception(env, exception);
  }
  napi_delete_reference(env, t->callback);
  napi_async_destroy(env, t->async_context);
  napi_close_handle_scope(env, scope);
  maybe_free(t);
}

// Not a TCP socket (a test's socketpair): no corking, nothing lost.
static void set_cork(int fd, int on) {
  setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

static void finish(transfer_t* t, int error) {
  if (t->ending) return;
  set_cork(t->socket_fd, 0);
  t->ending = 1;
  t->error = error;
  uv_poll_stop(&t->poll);
  uv_close((uv_handle_t*)&t->poll, on_closed);
}

static void on_writable(uv_poll_t* handle, int status, int events) {
  transfer_t* t = (transfer_t*)handle;
  (void)events;
  if (status < 0) {
    finish(t, -status);
    return;
  }
  int64_t budget = TURN_BUDGET;
  while (t->remaining > 0 && budget > 0) {
    size_t want = (size_t)(t->remaining < CALL_MAX ? t->remaining : CALL_MAX);
    off_t offset = (off_t)t->offset;
    ssize_t n = sendfile(t->socket_fd, t->file_fd, &offset, want);
    if (n > 0) {
      t->offset += n;
      t->remaining -= n;
      t->sent += n;
      budget -= n;
    } else if (n == 0) {
      finish(t, ENODATA);  // the file is shorter than the caller said
      return;
    } else if (errno == EAGAIN) {
      return;  // the poll watcher calls again when the socket buffer has room
    } else if (errno != EINTR) {
      finish(t, errno);
      return;
    }
  }
  if (t->remaining == 0) finish(t, 0);
}

static void on_handle_collected(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  transfer_t* t = data;
  t->wrapped = 0;
  maybe_free(t);
}

static napi_value cancel(napi_env env, napi_callback_info info) {
  napi_value self;
  transfer_t* t;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  if (napi_unwrap(env, self, (void**)&t) == napi_ok && !t->ended) finish(t, ECANCELED);
  return NULL;
}

static int64_t int64_arg(napi_env env, napi_value value, int* ok) {
  int64_t out = 0;
  if (napi_get_value_int64(env, value, &out) != napi_ok || out < 0) *ok = 0;
  return out;
}

// send(socketFd, fileFd, offset, length, callback(err, sent)) -> { cancel() }
static napi_value send_file(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype callback_type = napi_undefined;
  if (argc == 5) napi_typeof(env, argv[4], &callback_type);
  int ok = argc == 5 && callback_type == napi_function;
  int64_t socket_fd = ok ? int64_arg(env, argv[0], &ok) : 0;
  int64_t file_fd = ok ? int64_arg(env, argv[1], &ok) : 0;
  int64_t offset = ok ? int64_arg(env, argv[2], &ok) : 0;
  int64_t length = ok ? int64_arg(env, argv[3], &ok) : 0;
  if (!ok) {
    napi_throw_type_error(env, NULL, "send(socketFd, fileFd, offset, length, callback) takes four non-negative integers and a function");
    return NULL;
  }
  int dup_fd = fcntl((int)socket_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    napi_throw(env, make_error(env, errno));
    return NULL;
  }
  transfer_t* t = calloc(1, sizeof(*t));
  uv_loop_t* loop;
  napi_get_uv_event_loop(env, &loop);
  int rc = uv_poll_init(loop, &t->poll, dup_fd);
  if (rc == 0) rc = uv_poll_start(&t->poll, UV_WRITABLE, on_writable);
  if (rc != 0) {
    close(dup_fd);
    free(t);
    napi_throw(env, make_error(env, -rc));
    return NULL;
  }
  set_cork(dup_fd, 1);
  t->env = env;
  t->socket_fd = dup_fd;
  t->file_fd = (int)file_fd;
  t->offset = offset;
  t->remaining = length;
  t->wrapped = 1;
  napi_value resource_name, handle, cancel_fn;
  napi_create_string_utf8(env, "wharf:sendfile", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &t->async_context);
  napi_create_reference(env, argv[4], 1, &t->callback);
  napi_create_object(env, &handle);
  napi_create_function(env, "cancel", NAPI_AUTO_LENGTH, cancel, NULL, &cancel_fn);
  napi_set_named_property(env, handle, "cancel", cancel_fn);
  napi_wrap(env, handle, t, on_handle_collected, NULL, NULL);
  if (length == 0) finish(t, 0);
  return handle;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "send", NAPI_AUTO_LENGTH, send_file, NULL, &fn);
  napi_set_named_property(env, exports, "send", fn);
  return exports;
}
