/* A planted bug for scripts/sanitize.mjs: it must leave a sanitizer report, or reports would go unseen. */
#include <pthread.h>
#include <stdlib.h>

#if defined(__SANITIZE_THREAD__)
static long counter; /* Written by two threads without a lock: a data race. */

static void *bump(void *arg) {
  (void)arg;
  for (int i = 0; i < 1000; i++) counter++;
  return NULL;
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, bump, NULL) != 0) return 2;
  bump(NULL);
  pthread_join(t, NULL);
  return 0;
}
#else
int main(void) {
  volatile size_t past = 8;
  char *block = malloc(8);
  if (!block) return 2;
  block[0] = 0;
  return block[past]; /* One byte past the end: a heap buffer overflow. */
}
#endif
