/* The busy neighbour: says it started, then keeps one core busy until killed (like a build or a test run). */
#include <unistd.h>

int main(void) {
  if (write(1, "spinning\n", 9) != 9) return 1;
  volatile unsigned long n = 0;
  for (;;) n++;
}
