/* The C floor: dlopen a plugin and call it with no JSON work, to show what the machine allows. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef const char *(*execute_fn)(const char *);
typedef void (*free_fn)(const char *);

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

#define FANOUT_IN_FLIGHT 64
#define FANOUT_MAX_HOSTS 64

/* Stops the hosts (end of input, then SIGKILL for any that does not go) and reaps them all. */
static void end_hosts(const int *fds, const pid_t *pids, int hosts) {
  for (int i = 0; i < hosts; i++) close(fds[i]);
  for (int i = 0; i < hosts; i++) {
    if (waitpid(pids[i], NULL, WNOHANG) == 0) {
      kill(pids[i], SIGKILL);
      waitpid(pids[i], NULL, 0);
    }
  }
}

/*
 * 64 calls in flight from one parent over `hosts` forked C hosts, round-robin, each call one byte over a
 * socketpair that the host answers after calling the plugin: the machine's floor for skillplug's rows of
 * 64 in flight over 1 and over 32 isolated plugins (no JSON, no framing, no event loop). A host that
 * ends early is an error (exit 1), never a hang.
 */
static int fanout(execute_fn execute, free_fn release, int hosts, long n) {
  if (hosts < 1 || hosts > FANOUT_MAX_HOSTS || n < 1) return 2;
  const char *ctx = "{\"input\":{\"q\":\"0123456789\"},\"workspace_root\":null,\"config\":{}}";
  int fds[FANOUT_MAX_HOSTS];
  pid_t pids[FANOUT_MAX_HOSTS];
  char buf[4096];
  memset(buf, 'c', sizeof buf);
  int started = 0;
  for (; started < hosts; started++) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) break;
    pid_t pid = fork();
    if (pid < 0) {
      close(pair[0]);
      close(pair[1]);
      break;
    }
    if (pid == 0) {
      /* Only its own end: the parent's ends for earlier hosts stay with the parent. */
      for (int i = 0; i < started; i++) close(fds[i]);
      close(pair[0]);
      for (;;) {
        /* Sleeps in poll(), as skillplug's host does, never in read(). */
        struct pollfd p = {pair[1], POLLIN, 0};
        if (poll(&p, 1, -1) < 0) {
          if (errno == EINTR) continue;
          _exit(1);
        }
        ssize_t k = read(pair[1], buf, sizeof buf);
        if (k <= 0) _exit(0);
        for (ssize_t c = 0; c < k; c++) release(execute(ctx));
        if (send(pair[1], buf, (size_t)k, MSG_NOSIGNAL) != k) _exit(1);
      }
    }
    close(pair[1]);
    fds[started] = pair[0];
    pids[started] = pid;
  }
  int ep = started == hosts ? epoll_create1(EPOLL_CLOEXEC) : -1;
  for (int i = 0; ep >= 0 && i < hosts; i++) {
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) != 0) {
      close(ep);
      ep = -1;
    }
  }
  if (ep < 0) {
    fprintf(stderr, "fanout: could not start %d hosts: %s\n", hosts, strerror(errno));
    end_hosts(fds, pids, started);
    return 1;
  }
  long next = 0, done = 0;
  int owed[FANOUT_MAX_HOSTS] = {0};
  int failed = 0;
  double t = now_ns();
  for (; next < FANOUT_IN_FLIGHT && next < n; next++) owed[next % hosts]++;
  /* Each turn: read every answer that came, then one write per host for the calls that replace them. */
  while (!failed) {
    for (int i = 0; i < hosts && !failed; i++) {
      if (!owed[i]) continue;
      if (send(fds[i], buf, (size_t)owed[i], MSG_NOSIGNAL) != owed[i]) failed = 1;
      owed[i] = 0;
    }
    if (failed || done >= n) break;
    struct epoll_event ev[FANOUT_MAX_HOSTS];
    int k = epoll_wait(ep, ev, FANOUT_MAX_HOSTS, -1);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) failed = 1;
    for (int j = 0; j < k && !failed; j++) {
      ssize_t r = read(fds[ev[j].data.u32], buf, sizeof buf);
      if (r <= 0) failed = 1; /* the host ended (or broke): its calls never come back */
      for (ssize_t c = 0; c < r; c++, done++)
        if (next < n) owed[next++ % hosts]++;
    }
  }
  double elapsed = now_ns() - t;
  close(ep);
  end_hosts(fds, pids, hosts);
  if (failed) {
    fprintf(stderr, "fanout: a host ended after %ld of %ld calls\n", done, n);
    return 1;
  }
  printf("{\"us_per_call\":%.4f}\n", elapsed / n / 1000);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: floor LIB serial N | roundtrip BYTES N | fanout HOSTS N | once CTX | idle\n");
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
  if (!strcmp(mode, "fanout")) {
    if (argc != 5) {
      fprintf(stderr, "usage: floor LIB fanout HOSTS N\n");
      return 2;
    }
    return fanout(execute, release, atoi(argv[3]), n);
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
