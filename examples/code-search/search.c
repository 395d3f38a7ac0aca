/* code-search: every line in the workspace that contains any of a few literal strings. */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>

#include "vtcode_plugin.h"

#define MAX_PATTERNS 32
#define MAX_FILE_BYTES (16u * 1024u * 1024u)
#define SNIPPET_BYTES 240

VTCODE_PLUGIN_EXPORT_VERSION()
VTCODE_PLUGIN_EXPORT_FREE()

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

static void buf_quoted(buf_t *b, const char *s) {
  char *q = vtcode_json_quote(s);
  if (q) buf_str(b, q);
  else b->failed = 1;
  free(q);
}

/* Copies at most max bytes of a line, replacing invalid UTF-8 with '?' so the result stays valid JSON text. */
static char *snippet(const unsigned char *s, size_t n, size_t max) {
  char *out = (char *)malloc(max + 4);
  if (!out) return NULL;
  size_t o = 0, i = 0;
  while (i < n && o < max) {
    unsigned char c = s[i];
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
  return out;
}

typedef struct {
  char *text[MAX_PATTERNS];
  size_t len[MAX_PATTERNS];
  size_t count;
  int ignore_case;
  long max_results;
  long results;
  long files;
  size_t root_len;
  buf_t out;
} search_t;

static void search_file(search_t *s, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return;
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || st.st_size > (off_t)MAX_FILE_BYTES) { fclose(f); return; }
  size_t size = (size_t)st.st_size;
  unsigned char *data = (unsigned char *)malloc(size + 1);
  size_t got = data ? fread(data, 1, size, f) : 0;
  fclose(f);
  if (!data) return;
  s->files++;
  if (memchr(data, 0, got < 8000 ? got : 8000)) { free(data); return; }
  unsigned char *hay = data;
  if (s->ignore_case) {
    hay = (unsigned char *)malloc(got + 1);
    if (!hay) { free(data); return; }
    for (size_t i = 0; i < got; i++) hay[i] = (data[i] >= 'A' && data[i] <= 'Z') ? data[i] + 32 : data[i];
  }
  size_t line_no = 1, start = 0;
  while (start <= got && s->results < s->max_results) {
    const unsigned char *nl = memchr(hay + start, '\n', got - start);
    size_t end = nl ? (size_t)(nl - hay) : got;
    for (size_t p = 0; p < s->count; p++) {
      if (s->len[p] <= end - start && memmem(hay + start, end - start, s->text[p], s->len[p])) {
        char *text = snippet(data + start, end - start, SNIPPET_BYTES);
        char num[32];
        snprintf(num, sizeof num, "%zu", line_no);
        buf_str(&s->out, s->results ? ",{\"path\":" : "{\"path\":");
        buf_quoted(&s->out, path + s->root_len);
        buf_str(&s->out, ",\"line\":");
        buf_str(&s->out, num);
        buf_str(&s->out, ",\"text\":");
        buf_quoted(&s->out, text ? text : "");
        buf_str(&s->out, ",\"pattern\":");
        buf_quoted(&s->out, s->text[p]);
        buf_str(&s->out, "}");
        free(text);
        s->results++;
        break;
      }
    }
    if (!nl) break;
    start = end + 1;
    line_no++;
  }
  if (hay != data) free(hay);
  free(data);
}

static void search_dir(search_t *s, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) && s->results < s->max_results) {
    const char *name = e->d_name;
    if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".git") || !strcmp(name, "node_modules")) continue;
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = (char *)malloc(n);
    if (!path) break;
    snprintf(path, n, "%s/%s", dir, name);
    struct stat st;
    /* lstat: symlinks are never followed, so the walk cannot leave the root. */
    if (lstat(path, &st) == 0) {
      if (S_ISDIR(st.st_mode)) search_dir(s, path);
      else if (S_ISREG(st.st_mode)) search_file(s, path);
    }
    free(path);
  }
  closedir(d);
}

VTCODE_EXPORT const char *vtcode_plugin_execute(const char *ctx) {
  search_t s;
  memset(&s, 0, sizeof s);
  char *workspace = vtcode_json_string(ctx, "workspace_root");
  char *sub = vtcode_json_string(ctx, "input.path");
  char *result = NULL;
  char ws_real[PATH_MAX], root[PATH_MAX];
  const char *v;
  size_t n;
  s.ignore_case = vtcode_json_bool(ctx, "input.ignore_case", 0);
  s.max_results = (long)vtcode_json_number(ctx, "input.max_results", 200);
  if (s.max_results < 1) s.max_results = 1;
  for (size_t i = 0; i < MAX_PATTERNS && vtcode_json_array_item(ctx, "input.patterns", i, &v, &n); i++) {
    char *p = vtcode_json_unescape(v, n);
    if (!p || !*p) { free(p); continue; }
    if (s.ignore_case)
      for (char *c = p; *c; c++) if (*c >= 'A' && *c <= 'Z') *c += 32;
    s.text[s.count] = p;
    s.len[s.count++] = strlen(p);
  }
  if (!workspace) result = vtcode_result_error("code-search needs a workspace_root to search");
  else if (s.count == 0) result = vtcode_result_error("give at least one non-empty string in \"patterns\"");
  else if (!realpath(workspace, ws_real)) result = vtcode_result_error("cannot open the workspace");
  else {
    char wanted[PATH_MAX + 2];
    int wanted_len = snprintf(wanted, sizeof wanted, "%s/%s", ws_real, sub ? sub : ".");
    size_t wl = strlen(ws_real);
    if (wanted_len < 0 || (size_t)wanted_len >= PATH_MAX) result = vtcode_result_error("the requested path is too long");
    else if (!realpath(wanted, root)) result = vtcode_result_error("cannot open the requested path");
    else if (strncmp(root, ws_real, wl) != 0 || (root[wl] != 0 && root[wl] != '/')) result = vtcode_result_error("the requested path leaves the workspace");
    else {
      s.root_len = wl + 1;
      buf_str(&s.out, "{\"matches\":[");
      search_dir(&s, root);
      char tail[96];
      snprintf(tail, sizeof tail, "],\"files_scanned\":%ld,\"truncated\":%s}", s.files, s.results >= s.max_results ? "true" : "false");
      buf_str(&s.out, tail);
      result = s.out.failed ? vtcode_result_error("out of memory") : vtcode_result_ok(s.out.data);
    }
  }
  for (size_t i = 0; i < s.count; i++) free(s.text[i]);
  free(s.out.data);
  free(workspace);
  free(sub);
  return result ? result : vtcode_result_error("out of memory");
}
