/*
 * skillplug-lane: the one thing an isolated host's parent needs natively, as a tiny Node-API addon:
 * mapping the shared lane (see skillplug-host.c) into an ArrayBuffer. Loading koffi and compiling the
 * call pump only to mmap a file cost the first isolated caller both; this is ~100 lines and no koffi.
 * Built by skillplug on first use into a per-user cache; loaded with process.dlopen.
 *
 * exports.map(fd, bytes) -> ArrayBuffer | undefined: maps `bytes` of the memfd open as `fd`, but only a
 *   memfd sealed against shrinking (truncating a mapped file would SIGBUS this process), else undefined.
 * exports.unmap(buffer): lets go of the lane at once (the host's memfd can be freed): the range is
 *   replaced by private zero pages, so a stray read of a stale view reads zeros instead of crashing;
 *   the range itself is unmapped when the ArrayBuffer is collected.
 *
 * Node-API is a stable C ABI, so the few functions used are declared here instead of needing Node's headers.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef void (*napi_finalize)(napi_env env, void *data, void *hint);

napi_status napi_get_cb_info(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *this_arg, void **data);
napi_status napi_get_value_int32(napi_env env, napi_value value, int32_t *result);
napi_status napi_get_value_int64(napi_env env, napi_value value, int64_t *result);
napi_status napi_get_undefined(napi_env env, napi_value *result);
napi_status napi_create_external_arraybuffer(napi_env env, void *data, size_t length, napi_finalize finalize, void *hint, napi_value *result);
napi_status napi_get_arraybuffer_info(napi_env env, napi_value arraybuffer, void **data, size_t *length);
napi_status napi_create_function(napi_env env, const char *name, size_t length, napi_callback cb, void *data, napi_value *result);
napi_status napi_set_named_property(napi_env env, napi_value object, const char *name, napi_value value);

#define NAPI_OK 0
/* Larger lanes are refused: the host's is 132 KiB. */
#define MAX_LANE_BYTES (16 * 1024 * 1024)

static napi_value undefined_value(napi_env env) {
  napi_value u = NULL;
  napi_get_undefined(env, &u);
  return u;
}

static void finalize_mapping(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

static napi_value lane_map(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  int64_t bytes;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != NAPI_OK || argc < 2) return undefined_value(env);
  if (napi_get_value_int32(env, argv[0], &fd) != NAPI_OK || napi_get_value_int64(env, argv[1], &bytes) != NAPI_OK) return undefined_value(env);
  if (fd < 0 || bytes <= 0 || bytes > MAX_LANE_BYTES) return undefined_value(env);
#if defined(__linux__) && defined(F_GET_SEALS)
  struct stat st;
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fd, &st) != 0 || st.st_size < bytes) return undefined_value(env);
#else
  return undefined_value(env);
#endif
  void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return undefined_value(env);
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, p, (size_t)bytes, finalize_mapping, (void *)(uintptr_t)bytes, &buffer) != NAPI_OK) {
    munmap(p, (size_t)bytes);
    return undefined_value(env);
  }
  return buffer;
}

static napi_value lane_unmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  size_t length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == NAPI_OK && argc == 1 && napi_get_arraybuffer_info(env, argv[0], &data, &length) == NAPI_OK && data && length) {
    mmap(data, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  }
  return undefined_value(env);
}

__attribute__((visibility("default"))) int32_t node_api_module_get_api_version_v1(void) {
  return 8;
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "map", 3, lane_map, NULL, &fn) == NAPI_OK) napi_set_named_property(env, exports, "map", fn);
  if (napi_create_function(env, "unmap", 5, lane_unmap, NULL, &fn) == NAPI_OK) napi_set_named_property(env, exports, "unmap", fn);
  return exports;
}
