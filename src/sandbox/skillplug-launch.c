/*
 * skillplug-launch: joins the plugin's cgroups and sets its resource limits, then execs the rest of
 * its command line (bwrap outside the sandbox, the host inside it). Built by skillplug on first use
 * into a per-user cache; never run by hand.
 *
 * Usage: skillplug-launch [--join CGROUP_PROCS_FILE]... [--nproc N] [--fsize BYTES] -- PROGRAM [ARGS...]
 *   --join   writes this process's id to the file, so it and everything it starts count there;
 *   --nproc  RLIMIT_NPROC (inside a fresh user namespace it counts only the sandbox's tasks);
 *   --fsize  RLIMIT_FSIZE, with SIGXFSZ ignored so an oversized write fails with EFBIG instead of
 *            killing the writer.
 * Any failure exits 125 with a line on stderr: a limit that cannot be set is never skipped silently.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void fail(const char *what, const char *arg) {
  fprintf(stderr, "skillplug-launch: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  _exit(125);
}

static rlim_t number(const char *text) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || end == text || *end) {
    errno = EINVAL;
    fail("bad number", text);
  }
  return (rlim_t)v;
}

static void limit(int resource, rlim_t value, const char *name) {
  struct rlimit rl = {value, value};
  if (setrlimit(resource, &rl) != 0) fail("cannot set", name);
}

static void join(const char *procs) {
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", procs);
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (write(fd, pid, (size_t)n) != n) fail("cannot join", procs);
  close(fd);
}

int main(int argc, char **argv) {
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
    if (i + 1 >= argc) {
      errno = EINVAL;
      fail("missing value after", argv[i]);
    }
    if (strcmp(argv[i], "--join") == 0) {
      join(argv[i + 1]);
    } else if (strcmp(argv[i], "--nproc") == 0) {
      limit(RLIMIT_NPROC, number(argv[i + 1]), "RLIMIT_NPROC");
    } else if (strcmp(argv[i], "--fsize") == 0) {
      signal(SIGXFSZ, SIG_IGN);
      limit(RLIMIT_FSIZE, number(argv[i + 1]), "RLIMIT_FSIZE");
    } else {
      errno = EINVAL;
      fail("unknown option", argv[i]);
    }
  }
  if (i + 1 >= argc) {
    errno = EINVAL;
    fail("no program after", "--");
  }
  execv(argv[i + 1], argv + i + 1);
  fail("cannot run", argv[i + 1]);
  return 125;
}
