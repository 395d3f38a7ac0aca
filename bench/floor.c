/* The C floor: dlopen a plugin and call it with no JSON work, to show what the machine allows. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
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

/* CPU time a thread has run, in ns (schedstat: exact, where a reaped child's utime and stime are tick samples); 0 if unreadable. */
static double schedstat_ns(const char *path) {
  FILE *f = fopen(path, "r");
  double ns = 0;
  if (f) {
    if (fscanf(f, "%lf", &ns) != 1) ns = 0;
    fclose(f);
  }
  return ns;
}

/* This process's CPU time (all its threads) plus that of `hosts` single-threaded children still running, in ns. */
static double cpu_ns(const pid_t *hosts, int count) {
  double ns = 0;
  char path[64];
  DIR *tasks = opendir("/proc/self/task");
  for (struct dirent *t; tasks && (t = readdir(tasks));) {
    if (t->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%.16s/schedstat", t->d_name);
    ns += schedstat_ns(path);
  }
  if (tasks) closedir(tasks);
  for (int i = 0; i < count; i++) {
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)hosts[i]);
    ns += schedstat_ns(path);
  }
  return ns;
}

/* The figures of a measured loop of n calls, as the bench reads them. */
static void print_per_call(double elapsed_ns, double cpu, long n) {
  printf("{\"us_per_call\":%.4f,\"cpu_us_per_call\":%.4f}\n", elapsed_ns / n / 1000, cpu / n / 1000);
}

/*
 * A forked C host: each byte read on `fd` is one call of the plugin, answered by the same byte once every
 * call read with it has run. Sleeps in poll(), as skillplug's host does, never in read(). Never returns.
 */
static void serve_calls(int fd, execute_fn execute, free_fn release, const char *ctx) {
  char buf[4096];
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    ssize_t k = read(fd, buf, sizeof buf);
    if (k <= 0) _exit(0);
    for (ssize_t c = 0; c < k; c++) release(execute(ctx));
    if (send(fd, buf, (size_t)k, MSG_NOSIGNAL) != k) _exit(1);
  }
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
      serve_calls(pair[1], execute, release, ctx);
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
  double t = now_ns(), cpu = cpu_ns(pids, hosts);
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
  cpu = cpu_ns(pids, hosts) - cpu;
  close(ep);
  end_hosts(fds, pids, hosts);
  if (failed) {
    fprintf(stderr, "fanout: a host ended after %ld of %ld calls\n", done, n);
    return 1;
  }
  print_per_call(elapsed, cpu, n);
  return 0;
}

/* One call at a time, each run off the caller's thread: the shape of koffi's .async() (a pool thread woken
 * through a condition variable, an eventfd back to an epoll loop) or of an isolated host (a forked process
 * that sleeps in poll() on a socketpair, answered back the same way). */
static execute_fn wait_execute;
static free_fn wait_release;
static const char *wait_ctx;
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_posted = PTHREAD_COND_INITIALIZER;
static int wait_job;
static int wait_done_fd;

static void *wait_worker(void *unused) {
  (void)unused;
  for (;;) {
    pthread_mutex_lock(&wait_lock);
    while (!wait_job) pthread_cond_wait(&wait_posted, &wait_lock);
    wait_job = 0;
    pthread_mutex_unlock(&wait_lock);
    wait_release(wait_execute(wait_ctx));
    uint64_t one = 1;
    if (write(wait_done_fd, &one, sizeof one) != sizeof one) _exit(1);
  }
  return NULL;
}

/* Waits for the answer on `fd` in epoll, as an event loop does; 0 once one byte (or eventfd count) is read. */
static int wait_answer(int ep, int fd, void *buf, size_t size) {
  struct epoll_event ev;
  for (;;) {
    int k = epoll_wait(ep, &ev, 1, -1);
    if (k < 0 && errno == EINTR) continue;
    if (k != 1) return -1;
    return read(fd, buf, size) > 0 ? 0 : -1;
  }
}

static int one_at_a_time(execute_fn execute, free_fn release, int in_process, const char *ctx, long n) {
  if (n < 1) return 2;
  wait_execute = execute;
  wait_release = release;
  wait_ctx = ctx;
  int ep = epoll_create1(EPOLL_CLOEXEC), fd = -1, pair[2] = {-1, -1};
  pid_t pid = -1;
  pthread_t thread;
  if (in_process) {
    fd = wait_done_fd = eventfd(0, EFD_CLOEXEC);
    if (ep < 0 || fd < 0 || pthread_create(&thread, NULL, wait_worker, NULL) != 0) return 1;
  } else {
    if (ep < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0 || (pid = fork()) < 0) return 1;
    if (pid == 0) {
      close(pair[0]);
      serve_calls(pair[1], execute, release, ctx);
    }
    close(pair[1]);
    fd = pair[0];
  }
  struct epoll_event e = {.events = EPOLLIN};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0) return 1;
  uint64_t answer;
  int failed = 0;
  double t = now_ns(), cpu = cpu_ns(&pid, in_process ? 0 : 1);
  for (long i = 0; i < n && !failed; i++) {
    if (in_process) {
      pthread_mutex_lock(&wait_lock);
      wait_job = 1;
      pthread_cond_signal(&wait_posted);
      pthread_mutex_unlock(&wait_lock);
    } else if (send(fd, "c", 1, MSG_NOSIGNAL) != 1) {
      failed = 1;
      break;
    }
    if (wait_answer(ep, fd, &answer, in_process ? sizeof answer : 1) != 0) failed = 1;
  }
  double elapsed = now_ns() - t;
  cpu = cpu_ns(&pid, in_process ? 0 : 1) - cpu;
  if (!in_process) end_hosts(&fd, &pid, 1);
  if (failed) {
    fprintf(stderr, "wait: a call never came back\n");
    return 1;
  }
  print_per_call(elapsed, cpu, n);
  /* The worker thread is still asleep on its condition variable: exit without joining it. */
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: floor LIB serial N | roundtrip BYTES N | fanout HOSTS N | wait thread|process CTX N | once CTX | idle\n");
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
    double t = now_ns(), cpu = cpu_ns(NULL, 0);
    for (long i = 0; i < n; i++) release(execute(ctx));
    print_per_call(now_ns() - t, cpu_ns(NULL, 0) - cpu, n);
    return 0;
  }
  if (!strcmp(mode, "fanout")) {
    if (argc != 5) {
      fprintf(stderr, "usage: floor LIB fanout HOSTS N\n");
      return 2;
    }
    return fanout(execute, release, atoi(argv[3]), n);
  }
  if (!strcmp(mode, "wait")) {
    if (argc != 6 || (strcmp(argv[3], "thread") && strcmp(argv[3], "process"))) {
      fprintf(stderr, "usage: floor LIB wait thread|process CTX N\n");
      return 2;
    }
    return one_at_a_time(execute, release, !strcmp(argv[3], "thread"), argv[4], n);
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
