/*
 * skillplug pump: runs a plugin's calls on dedicated threads and hands the results back in batches,
 * so 64 calls in flight cost one wake-up of the JS thread, not 64; while JS polls for results (a
 * serial caller), a call costs no wake-up at all; while JS sleeps in pump_park (a loaded machine),
 * one futex wake.
 * Built by skillplug on first use into a per-user cache; loaded through koffi.
 *
 * Results are copied on the worker that produced them (a plugin may return a thread-local buffer
 * that its next call overwrites) and the plugin's own string is freed there, exactly once.
 *
 * It also holds the direct path for executeSync: one native call that runs the plugin, copies its
 * result into a buffer JS owns and frees the plugin's string (koffi would need three calls). (The
 * isolated host's shared lane is mapped by its own small addon, src/host/host-addon.c.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

typedef const char *(*execute_fn)(const char *);
typedef void (*free_fn)(const char *);
typedef void (*notify_fn)(void);

typedef struct item {
  uint32_t id;
  char *text; /* context on the way in, result copy on the way out (NULL: the plugin returned NULL) */
  struct item *next;
} item;

/* Words shared with JS (its buffer, alive while the pump lives). */
enum { SHARED_FINISHED = 0, SHARED_JS_POLLING = 1, SHARED_SPIN_MICROS = 2, SHARED_JS_PARKED = 3 };

typedef struct {
  execute_fn execute;
  free_fn release;
  notify_fn notify;
  int32_t *shared; /* [SHARED_FINISHED]: results finished so far; [SHARED_JS_POLLING]: JS is polling that count;
                      [SHARED_SPIN_MICROS]: how long an idle worker may poll, JS's lease from its spin budget (0: sleep);
                      [SHARED_JS_PARKED]: the JS thread sleeps in pump_park on the count's futex */
  pthread_mutex_t lock;
  pthread_cond_t work_ready, done_ready, taken;
  item *jobs, *jobs_tail, *done, *done_tail;
  int stopping, notifying, threads, exited;
  int spinners; /* idle workers polling for the next call: at most one, so a serial caller's spinning JS thread keeps a core */
  void *library; /* Our own dlopen reference, dropped on destroy so the plugin unloads with its last user. */
  pthread_t *workers, notifier;
} pump;

/* Called with the lock held; the head is stored atomically since idle workers poll p->jobs without the lock. */
static void push(item **head, item **tail, item *it) {
  it->next = NULL;
  if (*tail) (*tail)->next = it;
  else __atomic_store_n(head, it, __ATOMIC_RELEASE);
  *tail = it;
}

/* Longest spin a lease may ask for: an idle worker polls (yielding) for the next call before sleeping,
   so a burst's next call costs no sleep/wake, but only as long as JS's lease says. */
#define MAX_SPIN_NS 10000000L

static long spin_window_ns(const pump *p) {
  long micros = __atomic_load_n(&p->shared[SHARED_SPIN_MICROS], __ATOMIC_RELAXED);
  if (micros <= 0) return 0;
  return micros * 1000L > MAX_SPIN_NS ? MAX_SPIN_NS : micros * 1000L;
}

static long elapsed_ns(const struct timespec *since) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

static void *worker(void *arg) {
  pump *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    long window = spin_window_ns(p);
    if (!p->jobs && !p->stopping && p->spinners == 0 && window > 0) {
      p->spinners++;
      pthread_mutex_unlock(&p->lock);
      struct timespec start;
      clock_gettime(CLOCK_MONOTONIC, &start);
      while (!__atomic_load_n(&p->jobs, __ATOMIC_ACQUIRE) && !__atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE) && elapsed_ns(&start) < window) {
        sched_yield(); /* Polling, not hogging: the thread that hands results to JS may need this core. */
      }
      pthread_mutex_lock(&p->lock);
      /* Under the lock, so a submit either sees this spinner (and skips the wake-up) or wakes a sleeper. */
      p->spinners--;
    }
    while (!p->jobs && !p->stopping) pthread_cond_wait(&p->work_ready, &p->lock);
    if (!p->jobs) break;
    item *job = p->jobs;
    __atomic_store_n(&p->jobs, job->next, __ATOMIC_RELEASE);
    if (!p->jobs) p->jobs_tail = NULL;
    /* More calls wait: a submit that counted on the spinner did not wake anyone for them. */
    else pthread_cond_signal(&p->work_ready);
    pthread_mutex_unlock(&p->lock);
    const char *out = p->execute(job->text);
    free(job->text);
    job->text = out ? strdup(out) : NULL;
    if (out && p->release) p->release(out);
    pthread_mutex_lock(&p->lock);
    push(&p->done, &p->done_tail, job);
    __atomic_add_fetch(&p->shared[SHARED_FINISHED], 1, __ATOMIC_SEQ_CST);
    /* JS clears its flag before its last look at the count, so one of the two always sees the other;
       pump_park sets its word before its last look, so it sees this result or is woken. */
    int notify = !__atomic_load_n(&p->shared[SHARED_JS_POLLING], __ATOMIC_SEQ_CST);
    int parked = __atomic_load_n(&p->shared[SHARED_JS_PARKED], __ATOMIC_SEQ_CST);
    if (notify || parked) {
      /* Woken outside the lock: a thread woken on this core runs at once and takes the lock next. */
      pthread_mutex_unlock(&p->lock);
      if (notify) pthread_cond_signal(&p->done_ready);
#ifdef __linux__
      if (parked) syscall(SYS_futex, &p->shared[SHARED_FINISHED], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
#endif
      pthread_mutex_lock(&p->lock);
    }
  }
  p->exited++;
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* One thread calls into JS, so workers never wait for the JS thread. */
static void *notifier(void *arg) {
  pump *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->done && !p->stopping) pthread_cond_wait(&p->done_ready, &p->lock);
    if (p->stopping) break;
    p->notifying = 1;
    pthread_mutex_unlock(&p->lock);
    p->notify();
    pthread_mutex_lock(&p->lock);
    /* Whether or not notify() waited for JS, wait until JS has taken the results: one call at a time. */
    while (p->notifying && !p->stopping) pthread_cond_wait(&p->taken, &p->lock);
  }
  p->exited++;
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

void pump_stop(void *handle);

/* Our own reference to the plugin already loaded at library_path, with its execute and free functions; NULL without execute. */
static void *bind_plugin(const char *library_path, execute_fn *execute, free_fn *release) {
  void *lib = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
  *execute = lib ? (execute_fn)dlsym(lib, "vtcode_plugin_execute") : NULL;
  if (!*execute) {
    if (lib) dlclose(lib);
    return NULL;
  }
  *release = (free_fn)dlsym(lib, "vtcode_plugin_free_string");
  return lib;
}

/*
 * Binds the plugin already loaded at library_path (its own handle keeps it loaded). While JS sets
 * shared[SHARED_JS_POLLING], finished calls are only counted in shared[SHARED_FINISHED], not notified.
 */
void *pump_create(const char *library_path, void *notify, int32_t *shared, int threads) {
  execute_fn execute;
  free_fn release;
  void *lib = bind_plugin(library_path, &execute, &release);
  pump *p = lib ? calloc(1, sizeof *p) : NULL;
  if (!p) {
    if (lib) dlclose(lib);
    return NULL;
  }
  p->execute = execute;
  p->library = lib;
  p->release = release;
  p->notify = (notify_fn)notify;
  p->shared = shared;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work_ready, NULL);
  pthread_cond_init(&p->done_ready, NULL);
  pthread_cond_init(&p->taken, NULL);
  p->workers = calloc((size_t)threads, sizeof(pthread_t));
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 8u * 1024u * 1024u);
  for (int i = 0; i < threads && p->workers; i++)
    if (pthread_create(&p->workers[i], &attr, worker, p) == 0) p->threads++;
  pthread_attr_destroy(&attr);
  if (p->threads == 0 || pthread_create(&p->notifier, NULL, notifier, p) != 0) {
    /* Workers already started hold p: stop and join them before it is freed. */
    pump_stop(p);
    for (int i = 0; i < p->threads; i++) pthread_join(p->workers[i], NULL);
    free(p->workers);
    dlclose(lib);
    free(p);
    return NULL;
  }
  return p;
}

/* Queues a call; the context is copied. Returns 0, or -1 when out of memory. */
int pump_submit(void *handle, uint32_t id, const char *ctx) {
  pump *p = handle;
  item *job = malloc(sizeof *job);
  char *copy = job ? strdup(ctx) : NULL;
  if (!copy) {
    free(job);
    return -1;
  }
  job->id = id;
  job->text = copy;
  pthread_mutex_lock(&p->lock);
  push(&p->jobs, &p->jobs_tail, job);
  /* A polling worker takes it without a wake-up (a syscall on this, the JS, thread). */
  int wake = p->spinners == 0;
  pthread_mutex_unlock(&p->lock);
  /* After unlocking: a worker woken on this core runs at once, and must not find the lock still held. */
  if (wake) pthread_cond_signal(&p->work_ready);
  return 0;
}

/* Drops a call no worker has taken yet; returns 1 if dropped (it will never run), 0 otherwise. */
int pump_cancel(void *handle, uint32_t id) {
  pump *p = handle;
  int dropped = 0;
  pthread_mutex_lock(&p->lock);
  for (item **link = &p->jobs, *prev = NULL; *link; prev = *link, link = &(*link)->next) {
    if ((*link)->id != id) continue;
    item *it = *link;
    __atomic_store_n(link, it->next, __ATOMIC_RELEASE); /* link may be &p->jobs, which spinners read without the lock */
    if (p->jobs_tail == it) p->jobs_tail = prev;
    free(it->text);
    free(it);
    dropped = 1;
    break;
  }
  pthread_mutex_unlock(&p->lock);
  return dropped;
}

/* Takes up to max finished calls: ids[i] and results[i] (a copy to free with pump_free_all, or NULL). */
int pump_take(void *handle, uint32_t *ids, char **results, int max) {
  pump *p = handle;
  int n = 0;
  pthread_mutex_lock(&p->lock);
  p->notifying = 0;
  pthread_cond_signal(&p->taken);
  while (p->done && n < max) {
    item *it = p->done;
    p->done = it->next;
    if (!p->done) p->done_tail = NULL;
    ids[n] = it->id;
    results[n] = it->text;
    free(it);
    n++;
  }
  pthread_mutex_unlock(&p->lock);
  return n;
}

/*
 * Blocks the calling (JS) thread until the finished count differs from `seen` or `micros` pass, and
 * returns the count. On a loaded machine this hands the core to the worker and costs one futex wake
 * back, where koffi's async path costs an eventfd write and an epoll wake-up. JS keeps
 * shared[SHARED_JS_POLLING] set meanwhile, so the notifier is not woken for the result. Linux only:
 * elsewhere it returns at once.
 */
int32_t pump_park(void *handle, int32_t seen, int micros) {
  pump *p = handle;
#ifdef __linux__
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long window = (long)micros * 1000L;
  __atomic_store_n(&p->shared[SHARED_JS_PARKED], 1, __ATOMIC_SEQ_CST);
  for (;;) {
    if (__atomic_load_n(&p->shared[SHARED_FINISHED], __ATOMIC_SEQ_CST) != seen) break;
    long left = window - elapsed_ns(&start);
    if (left <= 0) break;
    struct timespec timeout = { left / 1000000000L, left % 1000000000L };
    syscall(SYS_futex, &p->shared[SHARED_FINISHED], FUTEX_WAIT_PRIVATE, seen, &timeout, NULL, 0);
  }
  __atomic_store_n(&p->shared[SHARED_JS_PARKED], 0, __ATOMIC_SEQ_CST);
#else
  (void)seen;
  (void)micros;
#endif
  return __atomic_load_n(&p->shared[SHARED_FINISHED], __ATOMIC_SEQ_CST);
}

/* Frees the n result copies a pump_take returned. */
void pump_free_all(char **results, int n) {
  for (int i = 0; i < n; i++) free(results[i]);
}

/* Stops notifying and lets the threads end, without waiting. */
void pump_stop(void *handle) {
  pump *p = handle;
  pthread_mutex_lock(&p->lock);
  __atomic_store_n(&p->stopping, 1, __ATOMIC_RELEASE); /* Spinning workers read it without the lock. */
  pthread_cond_broadcast(&p->work_ready);
  pthread_cond_broadcast(&p->done_ready);
  pthread_cond_broadcast(&p->taken);
  pthread_mutex_unlock(&p->lock);
}

/*
 * For process exit: stops the threads and waits up to timeout_ms for them to leave this library's
 * code, which is unmapped during teardown. A worker stuck in a plugin call is left behind.
 */
void pump_stop_and_wait(void *handle, int timeout_ms) {
  pump *p = handle;
  pump_stop(p);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
#ifdef __linux__
  for (int i = 0; i < p->threads; i++) pthread_timedjoin_np(p->workers[i], NULL, &deadline);
  pthread_timedjoin_np(p->notifier, NULL, &deadline);
#endif
}

/*
 * Whether every thread has left, after pump_stop. The notifier may be inside a call into JS that
 * waits for the JS thread, so JS must keep its event loop turning until this says 1.
 */
int pump_stopped(void *handle) {
  pump *p = handle;
  pthread_mutex_lock(&p->lock);
  int stopped = p->exited == p->threads + 1;
  pthread_mutex_unlock(&p->lock);
  return stopped;
}

/* Frees the pump once pump_stopped says 1; call with no call in flight. */
void pump_destroy(void *handle) {
  pump *p = handle;
  pump_stop(p);
  for (int i = 0; i < p->threads; i++) pthread_join(p->workers[i], NULL);
  pthread_join(p->notifier, NULL);
  dlclose(p->library);
  free(p->workers);
  free(p);
}

/* ---------- direct calls on the JS thread (executeSync) ---------- */

typedef struct {
  void *library;
  execute_fn execute;
  free_fn release;
  char *ctx; /* the context JSON assembled for the current call */
  size_t ctx_cap;
  char *out;       /* JS-owned buffer of out_cap + 1 bytes; JS keeps it alive while this handle lives */
  int64_t out_cap;
  int32_t *length; /* JS-owned: the last result's length in bytes (capped at INT32_MAX), or a DIRECT_ code */
  const char *pending; /* a result too large for out, not yet freed */
} direct;

/* Codes in *length, mirrored in native.ts. */
#define DIRECT_NULL (-1)
#define DIRECT_NO_MEMORY (-2)
/* Context buffer kept between calls; a larger one is freed when a smaller call comes. */
#define DIRECT_KEEP_BYTES (1 << 20)

/* Binds the plugin already loaded at library_path for direct calls that copy results into out. */
void *direct_open(const char *library_path, char *out, int64_t out_cap, int32_t *length) {
  execute_fn execute;
  free_fn release;
  void *lib = bind_plugin(library_path, &execute, &release);
  direct *d = lib ? calloc(1, sizeof *d) : NULL;
  if (!d) {
    if (lib) dlclose(lib);
    return NULL;
  }
  d->library = lib;
  d->execute = execute;
  d->release = release;
  d->out = out;
  d->out_cap = out_cap;
  d->length = length;
  return d;
}

static char *append(char *at, const char *text, size_t n) {
  memcpy(at, text, n);
  return at + n;
}

/* Builds the same bytes as joinContext() in codec.ts; NULL parts are the defaults null and {}. */
static const char *assemble_context(direct *d, const char *input, const char *workspace_root, const char *config) {
  static const char k_input[] = "{\"input\":", k_root[] = ",\"workspace_root\":", k_config[] = ",\"config\":";
  if (!workspace_root) workspace_root = "null";
  if (!config) config = "{}";
  size_t n_input = strlen(input), n_root = strlen(workspace_root), n_config = strlen(config);
  size_t need = sizeof k_input + n_input + sizeof k_root + n_root + sizeof k_config + n_config + 2;
  /* Shrinks after a large call, so one huge context does not stay resident. */
  if (need > d->ctx_cap || (d->ctx_cap > DIRECT_KEEP_BYTES && need <= DIRECT_KEEP_BYTES)) {
    char *grown = malloc(need);
    if (!grown) return NULL;
    free(d->ctx);
    d->ctx = grown;
    d->ctx_cap = need;
  }
  char *at = append(d->ctx, k_input, sizeof k_input - 1);
  at = append(at, input, n_input);
  at = append(at, k_root, sizeof k_root - 1);
  at = append(at, workspace_root, n_root);
  at = append(at, k_config, sizeof k_config - 1);
  at = append(at, config, n_config);
  append(at, "}", 2);
  return d->ctx;
}

/*
 * Assembles the context, runs the plugin and records the result's length. Returns out holding a
 * NUL-terminated copy of a result that fits (the plugin's string already freed), so the caller
 * decodes it in this same native call; NULL for a NULL result, a context it could not allocate
 * (the plugin did not run), or a result that waits in direct_pending() because it did not fit.
 */
const char *direct_call(void *handle, const char *input, const char *workspace_root, const char *config) {
  direct *d = handle;
  const char *ctx = assemble_context(d, input, workspace_root, config);
  if (!ctx) {
    *d->length = DIRECT_NO_MEMORY;
    return NULL;
  }
  const char *result = d->execute(ctx);
  if (!result) {
    *d->length = DIRECT_NULL;
    return NULL;
  }
  size_t length = strlen(result);
  *d->length = length > INT32_MAX ? INT32_MAX : (int32_t)length;
  if ((int64_t)length > d->out_cap) {
    d->pending = result;
    return NULL;
  }
  memcpy(d->out, result, length + 1);
  if (d->release) d->release(result);
  return d->out;
}

/* The result the last direct_call left in place because it did not fit; the caller frees it. */
const char *direct_pending(void *handle) {
  direct *d = handle;
  const char *result = d->pending;
  d->pending = NULL;
  return result;
}

void direct_close(void *handle) {
  direct *d = handle;
  dlclose(d->library);
  free(d->ctx);
  free(d);
}
