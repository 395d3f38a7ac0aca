/* The benchmark plugin: thread-safe (built with -DBENCH_SERIAL: not, as most plugins); a small heap result, or
 * echoes input.data back for payload rows; input.sleep_us makes a call that waits (like one blocked on I/O)
 * before its small result. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

#ifdef BENCH_SERIAL
#define THREAD_SAFE_JSON "false"
#else
#define THREAD_SAFE_JSON "true"
#endif

static const char small[] = "{\"success\":true,\"output\":{\"ok\":true},\"error\":null,\"files\":[]}";

EXPORT uint32_t vtcode_plugin_version(void) { return 1; }

EXPORT const char *vtcode_plugin_metadata(void) {
  return strdup("{\"name\":\"bench\",\"description\":\"Benchmark plugin\",\"version\":\"1.0.0\",\"abi_version\":1,\"thread_safe\":" THREAD_SAFE_JSON "}");
}

EXPORT void vtcode_plugin_free_string(const char *s) { free((void *)s); }

EXPORT const char *vtcode_plugin_execute(const char *ctx) {
  const char *data = strstr(ctx, "\"data\":\"");
  const char *sleep_us = data ? NULL : strstr(ctx, "\"sleep_us\":");
  if (sleep_us) {
    long us = atol(sleep_us + 11);
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  if (!data) {
    char *out = malloc(sizeof small);
    if (out) memcpy(out, small, sizeof small);
    return out;
  }
  /* Echo the raw JSON string token back as the output: as many bytes out as came in. */
  const char *start = data + 7;
  const char *end = strchr(start + 1, '"');
  size_t n = end ? (size_t)(end - start) + 1 : 2;
  static const char head[] = "{\"success\":true,\"output\":";
  static const char tail[] = ",\"error\":null,\"files\":[]}";
  char *out = malloc(sizeof head + n + sizeof tail);
  if (!out) return NULL;
  memcpy(out, head, sizeof head - 1);
  memcpy(out + sizeof head - 1, end ? start : "\"\"", n);
  memcpy(out + sizeof head - 1 + n, tail, sizeof tail);
  return out;
}
