/*
 * skillplug-host-addon: what an isolated host's parent needs natively, as a tiny Node-API addon (no koffi,
 * no pump). Built by skillplug on first use into a per-user cache; loaded with process.dlopen.
 *
 * exports.map(fd, bytes) -> ArrayBuffer | undefined: maps `bytes` of the memfd open as `fd`, but only a
 *   memfd sealed against shrinking (truncating a mapped file would SIGBUS this process), else undefined.
 * exports.unmap(buffer): lets go of the lane at once (the host's memfd can be freed): the range is
 *   replaced by private zero pages, so a stray read of a stale view reads zeros instead of crashing;
 *   the range itself is unmapped when the ArrayBuffer is collected.
 * exports.spawn(file, argv, envp, cwd) -> [pid, log, channel, notes, wake] | errno: starts a host with
 *   posix_spawn (a vfork: the child borrows this process's memory until it execs) in a session of its
 *   own, stdin and stdout on /dev/null, and returns this side's ends of fds 2 to 5 (see
 *   docs/host-protocol.md), close-on-exec. libuv forks instead, which write-protects this whole process:
 *   every page Node writes afterwards takes a copy-on-write fault.
 * exports.reap(pid) -> undefined while it runs | its wait status (>= 0) once it has ended (reaped here) |
 *   -errno: waits for a child this addon started without blocking.
 *
 * Node-API is a stable C ABI, so the few functions used are declared here instead of needing Node's headers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
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
napi_status napi_get_value_string_utf8(napi_env env, napi_value value, char *buf, size_t bufsize, size_t *result);
napi_status napi_get_array_length(napi_env env, napi_value value, uint32_t *result);
napi_status napi_get_element(napi_env env, napi_value object, uint32_t index, napi_value *result);
napi_status napi_create_array_with_length(napi_env env, size_t length, napi_value *result);
napi_status napi_set_element(napi_env env, napi_value object, uint32_t index, napi_value value);
napi_status napi_create_int32(napi_env env, int32_t value, napi_value *result);

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

static napi_value int_value(napi_env env, int32_t n) {
  napi_value v = NULL;
  napi_create_int32(env, n, &v);
  return v;
}

/* A JS string as a malloc'd C string; NULL when it is not a string or holds a NUL. */
static char *c_string(napi_env env, napi_value value) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != NAPI_OK) return NULL;
  char *text = malloc(length + 1);
  if (!text) return NULL;
  if (napi_get_value_string_utf8(env, value, text, length + 1, &length) != NAPI_OK || strlen(text) != length) {
    free(text);
    return NULL;
  }
  return text;
}

static void free_strings(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

/* A JS array of strings as a NULL-terminated, malloc'd list; NULL on anything else. */
static char **c_strings(napi_env env, napi_value array) {
  uint32_t count = 0;
  if (napi_get_array_length(env, array, &count) != NAPI_OK || count > 65536) return NULL;
  char **list = calloc((size_t)count + 1, sizeof *list);
  if (!list) return NULL;
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    if (napi_get_element(env, array, i, &item) != NAPI_OK || !(list[i] = c_string(env, item))) {
      free_strings(list);
      return NULL;
    }
  }
  return list;
}

/* posix_spawn_file_actions_addchdir_np came with glibc 2.29 (POSIX_SPAWN_SETSID with 2.26): older, hosts are left to Node. */
#if defined(__linux__) && defined(__GLIBC__) && __GLIBC_PREREQ(2, 29)
#define CAN_SPAWN 1
#else
#define CAN_SPAWN 0
#endif

#if CAN_SPAWN
/* Starts `file` with fds 2-5 connected to new pipes and a socketpair; `ends` gets the pid and this side's ends. */
static int spawn_host(const char *file, char **argv, char **envp, const char *cwd, int ends[5]) {
  int log_pipe[2] = {-1, -1}, channel[2] = {-1, -1}, notes_pipe[2] = {-1, -1}, wake_pipe[2] = {-1, -1};
  int err = 0;
  if (pipe2(log_pipe, O_CLOEXEC) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) || pipe2(notes_pipe, O_CLOEXEC) || pipe2(wake_pipe, O_CLOEXEC)) {
    err = errno;
  }
  int child_ends[4] = {log_pipe[1], channel[1], notes_pipe[1], wake_pipe[0]};
  /* Moved above 5 first, so no dup2 below overwrites an end another one still needs. */
  for (int i = 0; i < 4 && !err; i++) {
    int moved = fcntl(child_ends[i], F_DUPFD_CLOEXEC, 10);
    if (moved < 0) {
      err = errno;
      break;
    }
    close(child_ends[i]);
    child_ends[i] = moved;
  }
  pid_t pid = -1;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if (!err) {
    err = posix_spawn_file_actions_init(&actions);
    if (!err && (err = posix_spawnattr_init(&attr))) posix_spawn_file_actions_destroy(&actions);
  }
  if (!err) {
    err |= posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    err |= posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    for (int i = 0; i < 4; i++) err |= posix_spawn_file_actions_adddup2(&actions, child_ends[i], 2 + i);
    err |= posix_spawn_file_actions_addchdir_np(&actions, cwd);
    /* Its own session (so a kill of the group reaches what the plugin forks), every signal unblocked and
       at its default: Node ignores SIGPIPE, and an ignored signal would stay ignored across exec. */
    err |= posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    err |= posix_spawnattr_setsigmask(&attr, &none);
    err |= posix_spawnattr_setsigdefault(&attr, &all);
    /* A step that could not be set up starts nothing (the error is then some errno or'd): a host without its cwd or fds would be wrong. */
    if (!err) err = posix_spawn(&pid, file, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  for (int i = 0; i < 4; i++) {
    if (child_ends[i] >= 0) close(child_ends[i]);
  }
  int own_ends[4] = {log_pipe[0], channel[0], notes_pipe[0], wake_pipe[1]};
  if (err) {
    for (int i = 0; i < 4; i++) {
      if (own_ends[i] >= 0) close(own_ends[i]);
    }
    return err;
  }
  ends[0] = pid;
  for (int i = 0; i < 4; i++) ends[i + 1] = own_ends[i];
  return 0;
}
#endif

static napi_value host_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != NAPI_OK || argc < 4) return int_value(env, EINVAL);
#if CAN_SPAWN
  /* Made first: once the child runs, nothing may fail before its pid and fds are handed over. */
  napi_value result;
  if (napi_create_array_with_length(env, 5, &result) != NAPI_OK) return int_value(env, ENOMEM);
  char *file = c_string(env, argv[0]);
  char **args = c_strings(env, argv[1]);
  char **envp = c_strings(env, argv[2]);
  char *cwd = c_string(env, argv[3]);
  int ends[5];
  int err = file && args && args[0] && envp && cwd ? spawn_host(file, args, envp, cwd, ends) : EINVAL;
  free(file);
  free_strings(args);
  free_strings(envp);
  free(cwd);
  if (err) return int_value(env, err);
  for (uint32_t i = 0; i < 5; i++) napi_set_element(env, result, i, int_value(env, ends[i]));
  return result;
#else
  return int_value(env, ENOSYS);
#endif
}

static napi_value host_reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t pid;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != NAPI_OK || argc < 1 || napi_get_value_int32(env, argv[0], &pid) != NAPI_OK || pid <= 0) return int_value(env, -EINVAL);
  int status = 0;
  pid_t got;
  do got = waitpid(pid, &status, WNOHANG);
  while (got < 0 && errno == EINTR);
  if (got < 0) return int_value(env, -errno);
  if (got == 0) return undefined_value(env);
  /* The raw status, decoded in JS: no allocation can fail here after the child was reaped. */
  return int_value(env, status);
}

__attribute__((visibility("default"))) int32_t node_api_module_get_api_version_v1(void) {
  return 8;
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "map", 3, lane_map, NULL, &fn) == NAPI_OK) napi_set_named_property(env, exports, "map", fn);
  if (napi_create_function(env, "unmap", 5, lane_unmap, NULL, &fn) == NAPI_OK) napi_set_named_property(env, exports, "unmap", fn);
  if (napi_create_function(env, "spawn", 5, host_spawn, NULL, &fn) == NAPI_OK) napi_set_named_property(env, exports, "spawn", fn);
  if (napi_create_function(env, "reap", 4, host_reap, NULL, &fn) == NAPI_OK) napi_set_named_property(env, exports, "reap", fn);
  return exports;
}
