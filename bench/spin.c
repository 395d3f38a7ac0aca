/*
 * The busy neighbour: says it started, then keeps one core busy until killed (like a build or a test run).
 * `spin launcher` instead reads commands on stdin and answers on stdout, so the bench never forks itself
 * (a fork write-protects its whole heap, and the faults that follow land in the next measured window):
 *   "start\n" -> forks a spinner, answers "<pid>\n" once it spins;  "stop <pid>\n" -> SIGKILLs and reaps it, answers "stopped\n".
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void spin(void) {
  volatile unsigned long n = 0;
  for (;;) n++;
}

static int launcher(void) {
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "start", 5) == 0) {
      pid_t parent = getpid();
      pid_t child = fork();
      if (child < 0) return 1;
      if (child == 0) {
        /* Dies with the launcher, which dies with the bench. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(1);
        spin();
      }
      printf("%d\n", (int)child);
      fflush(stdout);
    } else if (strncmp(line, "stop ", 5) == 0) {
      pid_t child = (pid_t)atoi(line + 5);
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
      printf("stopped\n");
      fflush(stdout);
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  /* Dies with the bench, even when the bench itself is killed. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1) return 1;
  if (argc > 1 && strcmp(argv[1], "launcher") == 0) return launcher();
  if (write(1, "spinning\n", 9) != 9) return 1;
  spin();
}
