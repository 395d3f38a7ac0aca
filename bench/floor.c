/* The C floor: dlopen a plugin and call it with no JSON work, to show what the machine allows. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef const char *(*execute_fn)(const char *);
typedef void (*free_fn)(const char *);

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: floor LIB serial N | roundtrip BYTES N | once CTX | idle\n");
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
  execute_fn execute = (execute_fn)dlsym(lib, "vtcode_plugin_execute");
  free_fn release = (free_fn)dlsym(lib, "vtcode_plugin_free_string");
  const char *mode = argv[2];
  if (!strcmp(mode, "once")) {
    const char *out = execute(argc > 3 ? argv[3] : "{\"input\":{},\"workspace_root\":null,\"config\":{}}");
    fputs(out, stdout);
    release(out);
    return 0;
  }
  if (!strcmp(mode, "idle")) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"rss_kib\":%ld}\n", ru.ru_maxrss);
    return 0;
  }
  long n = argc > 3 ? atol(argv[argc - 1]) : 100000;
  if (!strcmp(mode, "serial")) {
    const char *ctx = "{\"input\":{\"q\":\"0123456789\"},\"workspace_root\":null,\"config\":{}}";
    for (long i = 0; i < n / 10; i++) release(execute(ctx));
    double t = now_ns();
    for (long i = 0; i < n; i++) release(execute(ctx));
    printf("{\"us_per_call\":%.4f}\n", (now_ns() - t) / n / 1000);
    return 0;
  }
  if (!strcmp(mode, "roundtrip")) {
    long bytes = atol(argv[3]);
    char *ctx = malloc(bytes + 64);
    int k = sprintf(ctx, "{\"input\":{\"data\":\"");
    memset(ctx + k, 'x', bytes);
    strcpy(ctx + k + bytes, "\"},\"workspace_root\":null,\"config\":{}}");
    double t = now_ns();
    for (long i = 0; i < n; i++) {
      const char *out = execute(ctx);
      /* Touch the result as a host must (copy it out) before freeing. */
      size_t len = strlen(out);
      char *copy = malloc(len + 1);
      memcpy(copy, out, len + 1);
      free(copy);
      release(out);
    }
    double secs = (now_ns() - t) / 1e9;
    printf("{\"mib_per_s\":%.1f}\n", (double)bytes * n / secs / 1048576.0);
    return 0;
  }
  return 2;
}
