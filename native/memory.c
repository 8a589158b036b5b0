// malloc_trim(3) for wharf: gives the pages glibc's malloc holds free back to the kernel.
//
// V8 compiles hot code (Maglev, TurboFan, and TurboFan for undici's llhttp WebAssembly) in
// zones it mallocs on its compiler threads and frees when a compile ends. glibc keeps those
// freed pages in its arenas, so each burst of compiling (a first pull, a new code path) leaves
// RSS ~10-20 MB higher for good, though nothing uses it (docs/benchmarks.md). Trimming from
// time to time returns them; the next allocations fault pages in again as they need them.
#include <node_api.h>
#include <stdbool.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

// trim(): true if memory went back to the kernel. Another C library (musl) has no trim: false.
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#ifdef __GLIBC__
  released = malloc_trim(0) == 1;
#endif
  napi_value result;
  napi_get_boolean(env, released, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
