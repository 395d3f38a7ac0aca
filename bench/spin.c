/* The busy neighbour: says it started, then keeps one core busy until killed (like a build or a test run). */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
  /* Dies with the bench, even when the bench itself is killed. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1) return 1;
  if (write(1, "spinning\n", 9) != 9) return 1;
  volatile unsigned long n = 0;
  for (;;) n++;
}
