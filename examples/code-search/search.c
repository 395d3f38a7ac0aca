/* code-search: every line in the workspace that contains any of a few literal strings. Fast because it
   walks dirs with openat and d_type (getdents64 on Linux; no stat per entry), scans files on as many
   threads as cores are free right now into buffers reused for the whole search, searches each whole
   buffer (SSE2 where there is one, keeping only places where the pattern's two rarest bytes match),
   counts lines only up to the matches and writes the result into the last result's memory; the output
   is merged in walk order, so it is the same as a single pass would give. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vtcode_plugin.h"

#define MAX_PATTERNS 32
#define MAX_FILE_BYTES (16u * 1024u * 1024u)
#define SNIPPET_BYTES 240

VTCODE_PLUGIN_EXPORT_VERSION()

VTCODE_EXPORT const char *vtcode_plugin_metadata(void) {
  return vtcode_strdup(
      "{\"name\":\"code-search\",\"description\":\"Finds every line in the workspace that contains any of up to 32 literal strings, fast.\","
      "\"version\":\"1.0.0\",\"author\":\"skillplug\",\"abi_version\":1,"
      "\"when_to_use\":\"To locate identifiers, error messages or TODOs across a large tree before opening files.\","
      "\"when_not_to_use\":\"For regular expressions or semantic search.\",\"thread_safe\":true}");
}

/* A growable string. */
typedef struct {
  char *data;
  size_t len, cap;
  int failed;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *grown = (char *)realloc(b->data, cap);
    if (!grown) { b->failed = 1; return; }
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}

static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

/* The last result's memory, kept when the host frees it, for the next result: fresh memory costs a page fault per 4 KiB (~10 us on some VMs). */
#define SPARE_MAX_BYTES (8u * 1024u * 1024u)
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static char *spare, *handed;
static size_t spare_cap, handed_cap;

VTCODE_EXPORT void vtcode_plugin_free_string(const char *s) {
  pthread_mutex_lock(&spare_lock);
  if (s && s == handed) {
    handed = NULL;
    if (!spare && handed_cap <= SPARE_MAX_BYTES) {
      spare = (char *)s;
      spare_cap = handed_cap;
      s = NULL;
    }
  }
  pthread_mutex_unlock(&spare_lock);
  free((void *)s);
}

/* Starts an empty buffer in the kept memory, when there is some. */
static void buf_from_spare(buf_t *b) {
  pthread_mutex_lock(&spare_lock);
  b->data = spare;
  b->cap = spare ? spare_cap : 0;
  spare = NULL;
  pthread_mutex_unlock(&spare_lock);
}

/* Hands a buffer's text out as the result, remembering it so that its memory can come back. */
static char *buf_hand_out(buf_t *b) {
  char *text = b->data;
  pthread_mutex_lock(&spare_lock);
  handed = text;
  handed_cap = b->cap;
  pthread_mutex_unlock(&spare_lock);
  b->data = NULL;
  return text;
}

static void buf_quoted(buf_t *b, const char *s) {
  char *q = vtcode_json_quote(s);
  if (q) buf_str(b, q);
  else b->failed = 1;
  free(q);
}

/* Copies at most max bytes of a line into out (room for max + 1), invalid UTF-8 as '?' so the result stays valid JSON text. */
static void snippet(char *out, const unsigned char *s, size_t n, size_t max) {
  size_t o = 0, i = 0;
  while (i < n && o < max) {
    unsigned char c = s[i];
    if (c >= 0x20 && c < 0x80) { /* plain ASCII, most of any source line */
      out[o++] = (char)c;
      i++;
      continue;
    }
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    int ok = len > 0 && i + len <= n && o + len <= max;
    for (size_t k = 1; ok && k < len; k++) ok = (s[i + k] & 0xC0) == 0x80;
    if (!ok) { out[o++] = '?'; i++; continue; }
    if (c == '\r' && len == 1) { i++; continue; }
    memcpy(out + o, s + i, len);
    o += len;
    i += len;
  }
  out[o] = 0;
}

#define NONE ((size_t)-1)
#define MAX_THREADS 8

/* What to look for: read-only once parsed, so every thread shares it. */
typedef struct {
  char *text[MAX_PATTERNS];
  char *quoted[MAX_PATTERNS]; /* as JSON strings, for the output */
  size_t len[MAX_PATTERNS];
  size_t rare[MAX_PATTERNS][2]; /* offsets of its two rarest bytes, which the search filters on */
  size_t count;
  int ignore_case;
  long max_results;
} query_t;

/* One file found by the walk, and what scanning it found. */
typedef struct {
  size_t name;     /* offset of its path (relative to the root) in the batch's names */
  size_t base;     /* offset of its file name there */
  int dir;         /* index of its dir's descriptor in the batch */
  int state;       /* 0: not scanned, 1: scanned, 2: scanned but not counted (unreadable or too large) */
  long matches;
  const buf_t *out; /* the buffer holding its matches, as JSON objects each preceded by a comma */
  size_t out_at, out_len;
} file_t;

/* A batch of files (in walk order) and the dirs that hold them, scanned by a few threads at once. */
typedef struct {
  const query_t *q;
  const char *names;
  const int *dirs;
  file_t *files;
  size_t nfiles;
  const char *root_prefix; /* the root's path relative to the workspace, "" or ending in '/' */
  size_t next;             /* next file to claim */
  long found;              /* matches found so far, in any order: once enough, the rest wait for the merge */
  pthread_mutex_t lock;
} job_t;

/* One thread's buffers, kept for the whole search: fresh ones per file or batch would cost a page fault per 4 KiB each time. */
typedef struct {
  unsigned char *data, *folded;
  size_t data_cap, folded_cap;
  buf_t out; /* the matches of every file this thread scanned in the batch, one after another */
} scratch_t;

static int reserve(unsigned char **p, size_t *cap, size_t need) {
  if (need <= *cap) return 1;
  size_t grown = *cap ? *cap : 65536;
  while (grown < need) grown *= 2;
  unsigned char *q = (unsigned char *)realloc(*p, grown);
  if (!q) return 0;
  *p = q;
  *cap = grown;
  return 1;
}

#if defined(__SSE2__)
#include <emmintrin.h>
/* Newlines in [s, s+n), 16 bytes a step into byte counters summed every 255 steps: plain SSE2 has no popcount (it would be a call per step). */
static size_t count_newlines(const unsigned char *s, size_t n) {
  size_t count = 0, i = 0;
  const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
  while (i + 16 <= n) {
    size_t stop = n - i > 255 * 16 ? i + 255 * 16 : n;
    __m128i counters = zero;
    for (; i + 16 <= stop; i += 16) counters = _mm_sub_epi8(counters, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(s + i)), nl));
    __m128i sums = _mm_sad_epu8(counters, zero); /* two 64-bit lanes, each the sum of 8 counters */
    count += (size_t)_mm_cvtsi128_si32(sums) + (size_t)_mm_cvtsi128_si32(_mm_unpackhi_epi64(sums, sums));
  }
  for (; i < n; i++) count += s[i] == '\n';
  return count;
}

/* Places among the 16 starting at `at` where the needle's two rarest bytes (b1 at offset r1, b2 at r2) match, as bits. */
static inline unsigned candidates(const unsigned char *at, size_t r1, size_t r2, __m128i b1, __m128i b2) {
  __m128i a = _mm_loadu_si128((const __m128i *)(at + r1)), b = _mm_loadu_si128((const __m128i *)(at + r2));
  return (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, b1), _mm_cmpeq_epi8(b, b2)));
}

/* First occurrence of needle (len >= 2) in hay: 32 places a step (one branch), compared in full only where its two rarest bytes match. */
static const unsigned char *find(const unsigned char *hay, size_t n, const unsigned char *needle, size_t len, size_t r1, size_t r2) {
  if (len > n) return NULL;
  const __m128i b1 = _mm_set1_epi8((char)needle[r1]), b2 = _mm_set1_epi8((char)needle[r2]);
  size_t i = 0, stop = n - len + 1;
  for (; i + 32 <= stop; i += 32) {
    unsigned mask = candidates(hay + i, r1, r2, b1, b2) | candidates(hay + i + 16, r1, r2, b1, b2) << 16;
    while (mask) {
      const unsigned char *at = hay + i + (unsigned)__builtin_ctz(mask);
      size_t k = 0; /* compared here, not by memcmp: a call in this loop makes the compiler keep its vectors in memory */
      while (k < len && at[k] == needle[k]) k++;
      if (k == len) return at;
      mask &= mask - 1;
    }
  }
  return memmem(hay + i, n - i, needle, len);
}
#else
static size_t count_newlines(const unsigned char *s, size_t n) {
  size_t count = 0;
  for (const unsigned char *end = s + n; (s = memchr(s, '\n', (size_t)(end - s))) != NULL; s++) count++;
  return count;
}

static const unsigned char *find(const unsigned char *hay, size_t n, const unsigned char *needle, size_t len, size_t r1, size_t r2) {
  (void)r1, (void)r2;
  return memmem(hay, n, needle, len);
}
#endif

/* Bytes roughly by how common they are in source text, most common first; any other byte counts as rarer than these. */
static const char COMMON_BYTES[] = " etaonisrlcdu\n\tphmfgy.,;()_=bw\"'v/-k:{}x[]>0<1*#2j+qz";

static size_t commonness(unsigned char c) {
  const char *at = c ? strchr(COMMON_BYTES, c) : NULL;
  return at ? sizeof COMMON_BYTES - (size_t)(at - COMMON_BYTES) : 0;
}

/* Picks the two offsets of pattern p whose bytes are rarest, so few places in a file pass the filter. */
static void pick_rare(query_t *q, size_t p) {
  const unsigned char *pat = (const unsigned char *)q->text[p];
  size_t len = q->len[p], r1 = 0, r2 = len > 1 ? 1 : 0;
  for (size_t i = 1; i < len; i++)
    if (commonness(pat[i]) < commonness(pat[r1])) r1 = i;
  if (r2 == r1) r2 = 0;
  for (size_t i = 0; i < len; i++)
    if (i != r1 && commonness(pat[i]) < commonness(pat[r2])) r2 = i;
  q->rare[p][0] = r1;
  q->rare[p][1] = r2;
}

/* First occurrence of a pattern at or after `from`, or NONE. A pattern holding a newline never
   matches: matches are found within one line. */
static size_t next_match(const query_t *q, const unsigned char *hay, size_t got, size_t from, size_t p) {
  const unsigned char *pat = (const unsigned char *)q->text[p];
  size_t len = q->len[p];
  if (memchr(pat, '\n', len) || from >= got) return NONE;
  const unsigned char *m = len == 1 ? memchr(hay + from, pat[0], got - from) : find(hay + from, got - from, pat, len, q->rare[p][0], q->rare[p][1]);
  return m ? (size_t)(m - hay) : NONE;
}

/* Appends one match to the scanning thread's output; the file's path is quoted once, at its first match. */
static void add_match(const query_t *q, scratch_t *sc, file_t *f, const char *path, char **quoted_path, const unsigned char *line, size_t n, size_t line_no, size_t p) {
  if (!*quoted_path && !(*quoted_path = vtcode_json_quote(path))) { sc->out.failed = 1; return; }
  char text[SNIPPET_BYTES + 1], num[24];
  snippet(text, line, n, SNIPPET_BYTES);
  size_t digits = sizeof num;
  do num[--digits] = (char)('0' + line_no % 10); while ((line_no /= 10) > 0);
  buf_str(&sc->out, ",{\"path\":");
  buf_str(&sc->out, *quoted_path);
  buf_str(&sc->out, ",\"line\":");
  buf_add(&sc->out, num + digits, sizeof num - digits);
  buf_str(&sc->out, ",\"text\":");
  buf_quoted(&sc->out, text);
  buf_str(&sc->out, ",\"pattern\":");
  buf_str(&sc->out, q->quoted[p]);
  buf_str(&sc->out, "}");
  f->matches++;
}

/* Reports each line holding a pattern once, naming the first pattern (in the order given) it holds,
   up to `cap` lines. The whole buffer is searched, not line by line: lines are found around
   matches, and counted only up to them. */
static void scan(const query_t *q, scratch_t *sc, file_t *f, const char *path, const unsigned char *data, const unsigned char *hay, size_t got, long cap) {
  char *quoted_path = NULL;
  size_t next[MAX_PATTERNS];
  for (size_t p = 0; p < q->count; p++) next[p] = next_match(q, hay, got, 0, p);
  size_t pos = 0, counted_to = 0, line_no = 1;
  while (f->matches < cap) {
    size_t best = NONE;
    for (size_t p = 0; p < q->count; p++) {
      if (next[p] != NONE && next[p] < pos) next[p] = next_match(q, hay, got, pos, p);
      if (next[p] < best) best = next[p];
    }
    if (best == NONE) break;
    const unsigned char *before = best > pos ? memrchr(hay + pos, '\n', best - pos) : NULL;
    size_t start = before ? (size_t)(before - hay) + 1 : pos;
    const unsigned char *nl = memchr(hay + best, '\n', got - best);
    size_t end = nl ? (size_t)(nl - hay) : got;
    line_no += count_newlines(hay + counted_to, start - counted_to);
    counted_to = start;
    for (size_t p = 0; p < q->count; p++) {
      if (next[p] < end) { /* every next[p] >= start: best is the smallest */
        add_match(q, sc, f, path, &quoted_path, data + start, end - start, line_no, p);
        break;
      }
    }
    if (!nl) break;
    pos = end + 1;
  }
  free(quoted_path);
}

static void scan_file(const job_t *job, scratch_t *sc, file_t *f, long cap) {
  const char *rel = job->names + f->name;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s%s", job->root_prefix, rel);
  f->state = 2;
  f->matches = 0;
  f->out = &sc->out;
  f->out_at = sc->out.len;
  f->out_len = 0;
  /* Relative to its dir, opened during the walk: no path is resolved again, and links are not followed.
     Non-blocking, so a FIFO swapped in since the walk cannot stall the search. */
  int fd = openat(job->dirs[f->dir], job->names + f->base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_FILE_BYTES || !reserve(&sc->data, &sc->data_cap, (size_t)st.st_size + 1)) {
    close(fd);
    return;
  }
  size_t size = (size_t)st.st_size, got = 0;
  while (got < size) {
    ssize_t n = read(fd, sc->data + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  f->state = 1;
  /* A NUL early on marks a binary file, as grep decides. */
  if (memchr(sc->data, 0, got < 8000 ? got : 8000)) return;
  const unsigned char *hay = sc->data;
  if (job->q->ignore_case) {
    if (!reserve(&sc->folded, &sc->folded_cap, got + 1)) return;
    for (size_t i = 0; i < got; i++) sc->folded[i] = (sc->data[i] >= 'A' && sc->data[i] <= 'Z') ? sc->data[i] + 32 : sc->data[i];
    hay = sc->folded;
  }
  scan(job->q, sc, f, path, sc->data, hay, got, cap);
  f->out_len = sc->out.len - f->out_at;
}

/* What one thread of a batch gets: the batch, and buffers of its own. */
typedef struct {
  job_t *job;
  scratch_t *sc;
} worker_t;

/* Scans files in the walk's order until none are left or enough matches were found; files left
   unscanned are scanned by the merge if it still needs them, so the result never depends on timing. */
static void *worker(void *arg) {
  job_t *job = ((worker_t *)arg)->job;
  scratch_t *sc = ((worker_t *)arg)->sc;
  for (;;) {
    pthread_mutex_lock(&job->lock);
    size_t i = job->found >= job->q->max_results ? job->nfiles : job->next++;
    pthread_mutex_unlock(&job->lock);
    if (i >= job->nfiles) break;
    scan_file(job, sc, &job->files[i], job->q->max_results);
    pthread_mutex_lock(&job->lock);
    job->found += job->files[i].matches;
    pthread_mutex_unlock(&job->lock);
  }
  return NULL;
}

#define BATCH_DIRS 128

/* The walk: files below the root, depth first in readdir order (as a single pass would see them),
   gathered in batches of at most BATCH_DIRS dirs, each scanned and merged before the walk goes on, so
   descriptors stay bounded and the walk stops once enough matches were found. Dirs are read through
   openat and d_type, so no entry costs a stat and no symlink is followed. A dir's descriptor is closed
   by whichever is done with it last: its walk, or the flush of the batch holding its files. */
typedef struct {
  const query_t *q;
  const char *root_prefix;
  buf_t *out;
  long results, files;
  char *names;
  size_t names_len, names_cap;
  file_t *batch;
  size_t nfiles, files_cap;
  int dirs[BATCH_DIRS];
  int walking[BATCH_DIRS]; /* the dir's walk still reads it: the walk closes it, not the flush */
  int ndirs;
  unsigned generation; /* bumped by every flush: a dir's descriptor index is valid within one */
  scratch_t scratch[MAX_THREADS];
  int failed;
  char rel[PATH_MAX];
} walk_t;

/* Tasks running on the whole machine right now, this thread included (/proc/loadavg's "running/total"), or -1 without /proc. */
static long running_now(void) {
  char text[128];
  int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return -1;
  text[n] = 0;
  long running;
  return sscanf(text, "%*s %*s %*s %ld/", &running) == 1 ? running : -1;
}

static int thread_count(size_t files) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1) cpus = 1;
  /* Threads buy time with extra CPU only on cores idle now (the load average, a minute's mean that idle VMs keep high, is the fallback). */
  long running = running_now(), n = cpus;
  double load;
  if (running > 0) n = 1 + (cpus > running ? cpus - running : 0);
  else if (getloadavg(&load, 1) == 1 && load >= (double)cpus) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  /* A thread per 32 files at most: starting one costs about what scanning a few small files does. */
  long useful = (long)(files / 32) + 1;
  return (int)(n < useful ? n : useful);
}

/* Scans the batch on a few threads, then merges it in walk order, exactly as a single pass would
   have produced it; closes the batch's dirs. */
static void flush(walk_t *w) {
  job_t job = {w->q, w->names, w->dirs, w->batch, w->nfiles, w->root_prefix, 0, w->results, PTHREAD_MUTEX_INITIALIZER};
  pthread_t threads[MAX_THREADS];
  worker_t workers[MAX_THREADS];
  int started = 0, wanted = thread_count(w->nfiles);
  for (int i = 0; i < wanted; i++) {
    w->scratch[i].out.len = 0;
    workers[i] = (worker_t){&job, &w->scratch[i]};
  }
  while (started + 1 < wanted && pthread_create(&threads[started], NULL, worker, &workers[started + 1]) == 0) started++;
  worker(&workers[0]);
  for (int i = 0; i < started; i++) pthread_join(threads[i], NULL);
  /* The merge rescans with the first thread's buffers: what it appends leaves earlier matches where they are. */
  scratch_t *sc = &w->scratch[0];
  for (size_t i = 0; i < w->nfiles && w->results < w->q->max_results; i++) {
    file_t *f = &w->batch[i];
    long left = w->q->max_results - w->results;
    if (f->state == 0 || f->matches > left) scan_file(&job, sc, f, left);
    if (f->state == 1) w->files++;
    if (f->matches > 0) {
      if (f->out->failed) w->out->failed = 1;
      else buf_add(w->out, f->out->data + f->out_at + (w->results == 0), f->out_len - (w->results == 0));
      w->results += f->matches;
    }
  }
  for (int i = 0; i < w->ndirs; i++)
    if (!w->walking[i]) close(w->dirs[i]);
  w->nfiles = 0;
  w->names_len = 0;
  w->ndirs = 0;
  w->generation++;
}

static void add_file(walk_t *w, int dir, size_t rel_len, size_t name_len) {
  if (w->nfiles == w->files_cap) {
    size_t cap = w->files_cap ? w->files_cap * 2 : 1024;
    file_t *grown = (file_t *)realloc(w->batch, cap * sizeof *grown);
    if (!grown) { w->failed = 1; return; }
    w->batch = grown;
    w->files_cap = cap;
  }
  if (!reserve((unsigned char **)&w->names, &w->names_cap, w->names_len + rel_len + 1)) { w->failed = 1; return; }
  memcpy(w->names + w->names_len, w->rel, rel_len + 1);
  file_t *f = &w->batch[w->nfiles++];
  memset(f, 0, sizeof *f);
  f->name = w->names_len;
  f->base = w->names_len + rel_len - name_len;
  f->dir = dir;
  w->names_len += rel_len + 1;
}

static int done(const walk_t *w) { return w->failed || w->results >= w->q->max_results; }

/* A dir's entries; Linux reads them with getdents64 as readdir does, minus fdopendir's fstat and two fcntl per dir (elsewhere: readdir on a copy). */
#define DIR_BLOCK 32768
#if defined(__linux__)
#include <sys/syscall.h>
typedef struct {
  int fd;
  char *block;
  ssize_t len, at;
} dir_reader_t;

static int dir_open(dir_reader_t *r, int fd) {
  r->fd = fd;
  r->len = r->at = 0;
  r->block = (char *)malloc(DIR_BLOCK);
  return r->block != NULL;
}

static int dir_next(dir_reader_t *r, const char **name, unsigned char *type) {
  if (r->at >= r->len) {
    r->len = syscall(SYS_getdents64, r->fd, r->block, DIR_BLOCK); /* glibc wraps it only from 2.30 on */
    r->at = 0;
    if (r->len <= 0) return 0;
  }
  const struct dirent64 *e = (const struct dirent64 *)(r->block + r->at);
  r->at += e->d_reclen;
  *name = e->d_name;
  *type = e->d_type;
  return 1;
}

static void dir_close(dir_reader_t *r) { free(r->block); }
#else
typedef struct {
  DIR *stream;
} dir_reader_t;

static int dir_open(dir_reader_t *r, int fd) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  r->stream = copy >= 0 ? fdopendir(copy) : NULL;
  if (!r->stream && copy >= 0) close(copy);
  return r->stream != NULL;
}

static int dir_next(dir_reader_t *r, const char **name, unsigned char *type) {
  struct dirent *e = readdir(r->stream);
  if (!e) return 0;
  *name = e->d_name;
  *type = e->d_type;
  return 1;
}

static void dir_close(dir_reader_t *r) { closedir(r->stream); }
#endif

static void walk_dir(walk_t *w, int fd, size_t rel_len) {
  dir_reader_t r;
  if (!dir_open(&r, fd)) {
    close(fd);
    return;
  }
  int mine = -1; /* this dir's place in the current batch, once it holds a file there */
  unsigned mine_generation = 0;
  const char *name;
  unsigned char type;
  while (!done(w) && dir_next(&r, &name, &type)) {
    if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".git") || !strcmp(name, "node_modules")) continue;
    if (type == DT_UNKNOWN) {
      /* Symlinks are never followed, so the walk cannot leave the root. */
      struct stat st;
      if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type != DT_DIR && type != DT_REG) continue;
    size_t n = strlen(name), len = rel_len ? rel_len + 1 + n : n;
    if (len >= sizeof w->rel) continue;
    if (rel_len) w->rel[rel_len] = '/';
    memcpy(w->rel + (rel_len ? rel_len + 1 : 0), name, n + 1);
    if (type == DT_REG) {
      if (mine < 0 || mine_generation != w->generation) {
        if (w->ndirs == BATCH_DIRS) flush(w);
        if (done(w)) break;
        mine = w->ndirs++;
        w->dirs[mine] = fd;
        w->walking[mine] = 1;
        mine_generation = w->generation;
      }
      add_file(w, mine, len, n);
    } else {
      int child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child >= 0) walk_dir(w, child, len);
    }
    w->rel[rel_len] = 0;
  }
  dir_close(&r);
  if (mine >= 0 && mine_generation == w->generation) w->walking[mine] = 0;
  else close(fd);
}

/* Searches the tree below root_fd; appends the matches to out. Returns files scanned, or -1 when out of memory. */
static long search_tree(const query_t *q, int root_fd, const char *root_prefix, buf_t *out, long *results) {
  walk_t w;
  memset(&w, 0, sizeof w);
  w.q = q;
  w.root_prefix = root_prefix;
  w.out = out;
  int fd = dup(root_fd);
  if (fd >= 0) walk_dir(&w, fd, 0);
  flush(&w);
  for (int i = 0; i < MAX_THREADS; i++) {
    free(w.scratch[i].data);
    free(w.scratch[i].folded);
    free(w.scratch[i].out.data);
  }
  free(w.batch);
  free(w.names);
  *results = w.results;
  return w.failed ? -1 : w.files;
}

VTCODE_EXPORT const char *vtcode_plugin_execute(const char *ctx) {
  query_t q;
  memset(&q, 0, sizeof q);
  buf_t out = {0};
  char *workspace = vtcode_json_string(ctx, "workspace_root");
  char *sub = vtcode_json_string(ctx, "input.path");
  char *result = NULL;
  char ws_real[PATH_MAX], root[PATH_MAX];
  const char *v;
  size_t n;
  q.ignore_case = vtcode_json_bool(ctx, "input.ignore_case", 0);
  q.max_results = (long)vtcode_json_number(ctx, "input.max_results", 200);
  if (q.max_results < 1) q.max_results = 1;
  for (size_t i = 0; i < MAX_PATTERNS && vtcode_json_array_item(ctx, "input.patterns", i, &v, &n); i++) {
    char *p = vtcode_json_unescape(v, n);
    if (!p || !*p) { free(p); continue; }
    if (q.ignore_case)
      for (char *c = p; *c; c++) if (*c >= 'A' && *c <= 'Z') *c += 32;
    q.text[q.count] = p;
    q.quoted[q.count] = vtcode_json_quote(p);
    q.len[q.count] = strlen(p);
    pick_rare(&q, q.count++);
  }
  int quoted = 1;
  for (size_t i = 0; i < q.count; i++) quoted = quoted && q.quoted[i];
  if (!quoted) result = vtcode_result_error("out of memory");
  else if (!workspace) result = vtcode_result_error("code-search needs a workspace_root to search");
  else if (q.count == 0) result = vtcode_result_error("give at least one non-empty string in \"patterns\"");
  else if (!realpath(workspace, ws_real)) result = vtcode_result_error("cannot open the workspace");
  else {
    char wanted[PATH_MAX + 2];
    int wanted_len = snprintf(wanted, sizeof wanted, "%s/%s", ws_real, sub ? sub : ".");
    size_t wl = strlen(ws_real);
    if (wanted_len < 0 || (size_t)wanted_len >= PATH_MAX) result = vtcode_result_error("the requested path is too long");
    else if (!realpath(wanted, root)) result = vtcode_result_error("cannot open the requested path");
    else if (strncmp(root, ws_real, wl) != 0 || (root[wl] != 0 && root[wl] != '/')) result = vtcode_result_error("the requested path leaves the workspace");
    else {
      /* Paths in the output are relative to the workspace: the root's own part, then each file's. */
      char prefix[PATH_MAX + 1];
      snprintf(prefix, sizeof prefix, "%s%s", root[wl] ? root + wl + 1 : "", root[wl] ? "/" : "");
      long results = 0, files = 0;
      buf_from_spare(&out);
      /* The envelope vtcode_result_ok() would add is written around the matches here: it would copy them all once more. */
      buf_str(&out, "{\"success\":true,\"output\":{\"matches\":[");
      int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (root_fd >= 0) {
        files = search_tree(&q, root_fd, prefix, &out, &results);
        close(root_fd);
      }
      char tail[128];
      snprintf(tail, sizeof tail, "],\"files_scanned\":%ld,\"truncated\":%s},\"error\":null,\"files\":[]}", files, results >= q.max_results ? "true" : "false");
      buf_str(&out, tail);
      result = out.failed || files < 0 ? vtcode_result_error("out of memory") : buf_hand_out(&out);
    }
  }
  for (size_t i = 0; i < q.count; i++) {
    free(q.text[i]);
    free(q.quoted[i]);
  }
  free(out.data);
  free(workspace);
  free(sub);
  return result ? result : vtcode_result_error("out of memory");
}
