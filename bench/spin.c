/*
 * The busy neighbour: says it started, then keeps one core busy until killed (like a build or a test run).
 * `spin launcher` instead reads commands on stdin and answers on stdout, so the bench never forks itself
 * (a fork write-protects its whole heap, and the faults that follow land in the next measured window):
 *   "start\n" -> forks a spinner, answers "<pid>\n";  "stop <pid>\n" -> SIGKILLs and reaps it, answers "stopped\n";
 *   "run\tOUT\tCWD\tARG0\tARG1...\n" -> runs the program (CWD "-": the launcher's) with stdout to the file OUT,
 *   stdin and stderr /dev/null, reaps it and answers "exit <status>\n" (128 + N for a signal N).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static void spin(void) {
  volatile unsigned long n = 0;
  for (;;) n++;
}

static void run_child(char *spec) {
  char *args[256];
  int n = 0;
  for (char *save = NULL, *word = strtok_r(spec, "\t\n", &save); word && n < 255; word = strtok_r(NULL, "\t\n", &save)) args[n++] = word;
  args[n] = NULL;
  if (n < 3) _exit(127);
  int out = open(args[0], O_WRONLY | O_CREAT | O_TRUNC, 0600), null = open("/dev/null", O_RDWR);
  if (out < 0 || null < 0 || (strcmp(args[1], "-") != 0 && chdir(args[1]) != 0)) _exit(127);
  dup2(null, 0);
  dup2(out, 1);
  dup2(null, 2);
  execvp(args[2], args + 2);
  _exit(127);
}

static int launcher(void) {
  char *line = NULL;
  size_t size = 0;
  while (getline(&line, &size, stdin) > 0) {
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
    } else if (strncmp(line, "run\t", 4) == 0) {
      pid_t child = fork();
      if (child < 0) return 1;
      if (child == 0) run_child(line + 4);
      int status = 0;
      waitpid(child, &status, 0);
      printf("exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
      fflush(stdout);
    } else if (strncmp(line, "stop ", 5) == 0) {
      pid_t child = (pid_t)atoi(line + 5);
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
      printf("stopped\n");
      fflush(stdout);
    }
  }
  free(line);
  return 0;
}

int main(int argc, char **argv) {
  /* Dies with the bench, even when the bench itself is killed. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1) return 1;
  if (argc > 1 && strcmp(argv[1], "launcher") == 0) return launcher();
  if (write(1, "spinning\n", 9) != 9) return 1;
  spin();
}
