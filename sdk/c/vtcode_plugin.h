/*
 * vtcode_plugin.h: write a VT Code native plugin (ABI v1) in C, for skillplug or VT Code.
 * Header-only; C99. See docs/abi.md for the normative specification.
 *
 * A plugin exports four functions with C linkage:
 *
 *   uint32_t    vtcode_plugin_version(void);            must return VTCODE_PLUGIN_ABI_VERSION (1)
 *   const char *vtcode_plugin_metadata(void);           metadata JSON
 *   const char *vtcode_plugin_execute(const char *ctx); result JSON for a context JSON
 *   void        vtcode_plugin_free_string(const char*); optional: frees what the two above returned
 *
 * Memory ownership (the rules most plugins get wrong):
 *   - The host never frees a string itself. If the plugin exports vtcode_plugin_free_string, the host
 *     passes EVERY string returned by vtcode_plugin_metadata and vtcode_plugin_execute to it exactly
 *     once, so both must then be heap-allocated (never return a string literal).
 *   - If the plugin does not export it, returned strings must stay valid until the next call on the
 *     same thread (static or thread-local storage) and are never freed by the host.
 *   - The ctx string belongs to the host and is valid only during the call.
 *   Using this header: call VTCODE_PLUGIN_EXPORT_FREE() once and return only strings made by the
 *   vtcode_* helpers below (all malloc'ed). They return NULL only when out of memory.
 *
 * Threading: calls are serialized unless the metadata says "thread_safe": true.
 *
 * Context JSON:  {"input":{...},"workspace_root":"/path"|null,"config":{...}}
 * Result JSON:   {"success":bool,"output":<any JSON>,"error":string|null,"files":[string,...]}
 */
#ifndef VTCODE_PLUGIN_H
#define VTCODE_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VTCODE_PLUGIN_ABI_VERSION 1u

#if defined(_WIN32)
#define VTCODE_EXPORT __declspec(dllexport)
#else
#define VTCODE_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
#define VTCODE_EXTERN_C extern "C"
#else
#define VTCODE_EXTERN_C
#endif

/* The ABI's C-layout structs, for hosts and plugins that pass results by struct. */
typedef struct PluginMetadataFFI {
  const char *json_ptr;
} PluginMetadataFFI;

typedef struct PluginResultFFI {
  const char *json_ptr;
} PluginResultFFI;

/* Exports vtcode_plugin_version() returning ABI v1. */
#define VTCODE_PLUGIN_EXPORT_VERSION() \
  VTCODE_EXTERN_C VTCODE_EXPORT uint32_t vtcode_plugin_version(void) { return VTCODE_PLUGIN_ABI_VERSION; }

/* Exports vtcode_plugin_free_string() using free(): pair it with the helpers below. */
#define VTCODE_PLUGIN_EXPORT_FREE() \
  VTCODE_EXTERN_C VTCODE_EXPORT void vtcode_plugin_free_string(const char *s) { free((void *)s); }

/* ---------- building strings to return ---------- */

/* A malloc'ed copy of s. */
static inline char *vtcode_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *out = (char *)malloc(n);
  if (out) memcpy(out, s, n);
  return out;
}

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0 when the bytes there are not
 * one: a stray continuation byte, a truncated or overlong sequence, a surrogate, or past U+10FFFF.
 */
static inline size_t vtcode_utf8_sequence(const unsigned char *s, size_t n) {
  if (n == 0) return 0;
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (len == 0 || c < 0xC2 || c > 0xF4 || n < len) return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
  if (c == 0xED && s[1] >= 0xA0) return 0; /* a surrogate */
  if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
  if (c == 0xF4 && s[1] >= 0x90) return 0; /* past U+10FFFF */
  return len;
}

/* Byte offset of the first invalid UTF-8 in the n bytes at s, or n when all of it is valid. */
static inline size_t vtcode_utf8_invalid_at(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t at = 0;
  while (at < n) {
    size_t len = vtcode_utf8_sequence(u + at, n - at);
    if (len == 0) return at;
    at += len;
  }
  return n;
}

/* Writes the JSON escape of n bytes of text at out (room for 6n + 2 bytes); invalid UTF-8 becomes U+FFFD. */
static inline char *vtcode__quote_into(char *p, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *c = (const unsigned char *)s, *end = c + n;
  *p++ = '"';
  while (c < end) {
    /* Printable ASCII other than '"' and '\\' stays as it is: most text is nothing else. */
    if (*c >= 0x20 && *c < 0x7F && *c != '"' && *c != '\\') { *p++ = (char)*c++; continue; }
    size_t len = vtcode_utf8_sequence(c, (size_t)(end - c));
    if (len == 0) { memcpy(p, "\\ufffd", 6); p += 6; c++; continue; }
    if (len > 1) { memcpy(p, c, len); p += len; c += len; continue; }
    switch (*c) {
      case '"': *p++ = '\\'; *p++ = '"'; break;
      case '\\': *p++ = '\\'; *p++ = '\\'; break;
      case '\n': *p++ = '\\'; *p++ = 'n'; break;
      case '\r': *p++ = '\\'; *p++ = 'r'; break;
      case '\t': *p++ = '\\'; *p++ = 't'; break;
      default:
        if (*c < 0x20 || *c == 0x7F) { memcpy(p, "\\u00", 4); p[4] = hex[*c >> 4]; p[5] = hex[*c & 15]; p += 6; }
        else *p++ = (char)*c;
    }
    c++;
  }
  *p++ = '"';
  return p;
}

/* A malloc'ed JSON string literal (with quotes) for the text s; invalid UTF-8 in s becomes U+FFFD. */
static inline char *vtcode_json_quote(const char *s) {
  size_t n = strlen(s);
  char *out = (char *)malloc(n * 6 + 3);
  if (!out) return NULL;
  *vtcode__quote_into(out, s, n) = 0;
  return out;
}

/*
 * A malloc'ed result envelope. output_json must be valid JSON (an object, usually); error may be
 * NULL; files may be NULL when nfiles is 0.
 */
static inline char *vtcode_result(int success, const char *output_json, const char *error, const char *const *files, size_t nfiles) {
  char *err = error ? vtcode_json_quote(error) : vtcode_strdup("null");
  size_t files_len = 3;
  char **quoted = nfiles ? (char **)calloc(nfiles, sizeof(char *)) : NULL;
  for (size_t i = 0; i < nfiles; i++) {
    quoted[i] = vtcode_json_quote(files[i]);
    files_len += (quoted[i] ? strlen(quoted[i]) : 4) + 1;
  }
  size_t cap = strlen(output_json) + (err ? strlen(err) : 4) + files_len + 64;
  char *out = (char *)malloc(cap);
  if (out) {
    int n = snprintf(out, cap, "{\"success\":%s,\"output\":%s,\"error\":%s,\"files\":[", success ? "true" : "false", output_json, err ? err : "null");
    for (size_t i = 0; i < nfiles; i++) n += snprintf(out + n, cap - (size_t)n, "%s%s", i ? "," : "", quoted[i] ? quoted[i] : "null");
    snprintf(out + n, cap - (size_t)n, "]}");
  }
  for (size_t i = 0; i < nfiles; i++) free(quoted[i]);
  free(quoted);
  free(err);
  return out;
}

/* A malloc'ed success result with the given output JSON. */
static inline char *vtcode_result_ok(const char *output_json) { return vtcode_result(1, output_json, NULL, NULL, 0); }

/* A malloc'ed failure result with an error message and an empty output object. */
static inline char *vtcode_result_error(const char *message) { return vtcode_result(0, "{}", message, NULL, 0); }

/* ---------- a growable buffer and a JSON writer ---------- */

/*
 * Builds JSON without hand-counting bytes:
 *
 *   vtcode_json_writer w;
 *   vtcode_writer_init(&w);
 *   vtcode_write_object_begin(&w);
 *   vtcode_write_key(&w, "words");  vtcode_write_int(&w, 3);
 *   vtcode_write_key(&w, "tags");   vtcode_write_array_begin(&w);
 *   vtcode_write_string(&w, "a");   vtcode_write_array_end(&w);
 *   vtcode_write_object_end(&w);
 *   return vtcode_writer_result_ok(&w);   // the envelope around it; frees the writer
 *
 * Commas and nesting are the writer's job. A mistake (a value where a key belongs, an unclosed
 * object, invalid UTF-8 in a key, running out of memory) is remembered in w.error, every later
 * write is ignored, and vtcode_writer_result_ok() returns a failure result naming the mistake.
 * String values with invalid UTF-8 are written with U+FFFD in its place, like vtcode_json_quote().
 */
#define VTCODE_WRITER_MAX_DEPTH 64

typedef struct vtcode_json_writer {
  char *data;         /* the JSON so far, NUL-terminated (NULL until the first write) */
  size_t len, cap;
  const char *error;  /* the first mistake, or NULL */
  int depth;
  char open[VTCODE_WRITER_MAX_DEPTH]; /* '{' or '[' per level */
  int items[VTCODE_WRITER_MAX_DEPTH]; /* values written at each level */
  int after_key;      /* a key was written: its value comes next */
} vtcode_json_writer;

static inline void vtcode_writer_init(vtcode_json_writer *w) { memset(w, 0, sizeof *w); }

/* Frees the writer's buffer; it can be initialized again. */
static inline void vtcode_writer_free(vtcode_json_writer *w) {
  free(w->data);
  vtcode_writer_init(w);
}

static inline void vtcode__fail(vtcode_json_writer *w, const char *why) {
  if (!w->error) w->error = why;
}

/* Appends n raw bytes; grows the buffer by doubling. */
static inline void vtcode_writer_append(vtcode_json_writer *w, const char *bytes, size_t n) {
  if (w->error) return;
  if (w->len + n + 1 > w->cap) {
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n + 1) {
      if (cap > SIZE_MAX / 2) { vtcode__fail(w, "the JSON is too large"); return; }
      cap *= 2;
    }
    char *grown = (char *)realloc(w->data, cap);
    if (!grown) { vtcode__fail(w, "out of memory"); return; }
    w->data = grown;
    w->cap = cap;
  }
  memcpy(w->data + w->len, bytes, n);
  w->len += n;
  w->data[w->len] = 0;
}

/* Before a value: the comma between array items, and checks that a value may come here. */
static inline void vtcode__before_value(vtcode_json_writer *w) {
  if (w->error) return;
  if (w->depth == 0) {
    if (w->len) vtcode__fail(w, "a second top-level value");
    return;
  }
  if (w->open[w->depth - 1] == '{') {
    if (!w->after_key) vtcode__fail(w, "a value in an object without a key before it");
    w->after_key = 0;
    return;
  }
  if (w->items[w->depth - 1]++) vtcode_writer_append(w, ",", 1);
}

static inline void vtcode__begin(vtcode_json_writer *w, char open) {
  vtcode__before_value(w);
  if (w->error) return;
  if (w->depth == VTCODE_WRITER_MAX_DEPTH) { vtcode__fail(w, "nesting deeper than VTCODE_WRITER_MAX_DEPTH"); return; }
  w->open[w->depth] = open;
  w->items[w->depth] = 0;
  w->depth++;
  vtcode_writer_append(w, &open, 1);
}

static inline void vtcode__end(vtcode_json_writer *w, char open, char close) {
  if (w->error) return;
  if (w->depth == 0 || w->open[w->depth - 1] != open) { vtcode__fail(w, open == '{' ? "an object end without its begin" : "an array end without its begin"); return; }
  if (w->after_key) { vtcode__fail(w, "a key without a value"); return; }
  w->depth--;
  vtcode_writer_append(w, &close, 1);
}

static inline void vtcode_write_object_begin(vtcode_json_writer *w) { vtcode__begin(w, '{'); }
static inline void vtcode_write_object_end(vtcode_json_writer *w) { vtcode__end(w, '{', '}'); }
static inline void vtcode_write_array_begin(vtcode_json_writer *w) { vtcode__begin(w, '['); }
static inline void vtcode_write_array_end(vtcode_json_writer *w) { vtcode__end(w, '[', ']'); }

/* A string value of n bytes (invalid UTF-8 becomes U+FFFD). */
static inline void vtcode_write_string_n(vtcode_json_writer *w, const char *s, size_t n) {
  vtcode__before_value(w);
  if (w->error) return;
  if (n > (SIZE_MAX - 3) / 6) { vtcode__fail(w, "the JSON is too large"); return; }
  char *quoted = (char *)malloc(n * 6 + 2);
  if (!quoted) { vtcode__fail(w, "out of memory"); return; }
  char *end = vtcode__quote_into(quoted, s, n);
  vtcode_writer_append(w, quoted, (size_t)(end - quoted));
  free(quoted);
}

/* A string value (NULL writes null). */
static inline void vtcode_write_string(vtcode_json_writer *w, const char *s) {
  if (!s) { vtcode__before_value(w); vtcode_writer_append(w, "null", 4); return; }
  vtcode_write_string_n(w, s, strlen(s));
}

/* An object key; must be valid UTF-8 (a key that is not would change what the reader looks up). */
static inline void vtcode_write_key(vtcode_json_writer *w, const char *key) {
  if (w->error) return;
  if (w->depth == 0 || w->open[w->depth - 1] != '{' || w->after_key) { vtcode__fail(w, "a key outside an object, or two keys in a row"); return; }
  size_t n = strlen(key);
  if (vtcode_utf8_invalid_at(key, n) != n) { vtcode__fail(w, "a key that is not valid UTF-8"); return; }
  if (w->items[w->depth - 1]++) vtcode_writer_append(w, ",", 1);
  char *quoted = (char *)malloc(n * 6 + 2);
  if (!quoted) { vtcode__fail(w, "out of memory"); return; }
  char *end = vtcode__quote_into(quoted, key, n);
  vtcode_writer_append(w, quoted, (size_t)(end - quoted));
  free(quoted);
  vtcode_writer_append(w, ":", 1);
  w->after_key = 1;
}

static inline void vtcode_write_int(vtcode_json_writer *w, long long v) {
  char text[32];
  int n = snprintf(text, sizeof text, "%lld", v);
  vtcode__before_value(w);
  vtcode_writer_append(w, text, (size_t)n);
}

static inline void vtcode_write_uint(vtcode_json_writer *w, unsigned long long v) {
  char text[32];
  int n = snprintf(text, sizeof text, "%llu", v);
  vtcode__before_value(w);
  vtcode_writer_append(w, text, (size_t)n);
}

/* A number; NaN and infinities have no JSON form and are written as null. */
static inline void vtcode_write_double(vtcode_json_writer *w, double v) {
  char text[32];
  int n = v != v || v - v != 0 ? snprintf(text, sizeof text, "null") : snprintf(text, sizeof text, "%.17g", v);
  vtcode__before_value(w);
  vtcode_writer_append(w, text, (size_t)n);
}

static inline void vtcode_write_bool(vtcode_json_writer *w, int v) {
  vtcode__before_value(w);
  vtcode_writer_append(w, v ? "true" : "false", v ? 4 : 5);
}

static inline void vtcode_write_null(vtcode_json_writer *w) {
  vtcode__before_value(w);
  vtcode_writer_append(w, "null", 4);
}

/* JSON text made elsewhere, written as one value as is (the caller vouches that it is valid JSON). */
static inline void vtcode_write_raw(vtcode_json_writer *w, const char *json) {
  vtcode__before_value(w);
  vtcode_writer_append(w, json, strlen(json));
}

/* The finished JSON (malloc'ed; the writer is reset), or NULL after a mistake or with values still open. */
static inline char *vtcode_writer_take(vtcode_json_writer *w) {
  if (!w->error && (w->depth != 0 || w->len == 0)) vtcode__fail(w, w->len ? "an object or array left open" : "nothing was written");
  if (w->error) return NULL;
  char *out = w->data;
  vtcode_writer_init(w);
  return out;
}

/*
 * The result envelope around what the writer holds, as output (malloc'ed), and the writer freed.
 * After a mistake, a failure result naming it: the plugin reports its own bug instead of bad JSON.
 */
static inline char *vtcode_writer_result_ok(vtcode_json_writer *w) {
  char *output = vtcode_writer_take(w);
  if (!output) {
    char message[160];
    snprintf(message, sizeof message, "the plugin built invalid output JSON: %s", w->error);
    vtcode_writer_free(w);
    return vtcode_result_error(message);
  }
  char *result = vtcode_result_ok(output);
  free(output);
  return result;
}

/* ---------- reading the context ---------- */

/* Skips JSON whitespace. */
static inline const char *vtcode__ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

/* Skips one JSON value starting at p; returns the position after it, or NULL if malformed. */
static inline const char *vtcode__skip(const char *p) {
  p = vtcode__ws(p);
  if (*p == '"') {
    for (p++; *p && *p != '"'; p++)
      if (*p == '\\' && !*++p) return NULL;
    return *p ? p + 1 : NULL;
  }
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = vtcode__ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        p = vtcode__skip(p); /* key */
        if (!p) return NULL;
        p = vtcode__ws(p);
        if (*p++ != ':') return NULL;
      }
      p = vtcode__skip(p);
      if (!p) return NULL;
      p = vtcode__ws(p);
      if (*p == ',') { p = vtcode__ws(p + 1); continue; }
      return *p == close ? p + 1 : NULL;
    }
  }
  if (!*p) return NULL;
  while (*p && !strchr(",}] \t\r\n", *p)) p++;
  return p;
}

/*
 * Finds the value at a dotted path of object keys (e.g. "input.pattern") in a JSON document.
 * On success sets *start and *len to the raw value's text and returns 1; returns 0 otherwise.
 */
static inline int vtcode_json_find(const char *json, const char *path, const char **start, size_t *len) {
  const char *p = vtcode__ws(json);
  while (*path) {
    const char *dot = strchr(path, '.');
    size_t keylen = dot ? (size_t)(dot - path) : strlen(path);
    if (*p != '{') return 0;
    p = vtcode__ws(p + 1);
    int found = 0;
    while (*p == '"') {
      const char *key = p + 1;
      const char *after = vtcode__skip(p);
      if (!after) return 0;
      int match = (size_t)(after - 1 - key) == keylen && strncmp(key, path, keylen) == 0;
      p = vtcode__ws(after);
      if (*p++ != ':') return 0;
      p = vtcode__ws(p);
      if (match) { found = 1; break; }
      p = vtcode__skip(p);
      if (!p) return 0;
      p = vtcode__ws(p);
      if (*p == ',') p = vtcode__ws(p + 1);
    }
    if (!found) return 0;
    path += keylen + (dot ? 1 : 0);
  }
  const char *end = vtcode__skip(p);
  if (!end) return 0;
  *start = p;
  *len = (size_t)(end - p);
  return 1;
}

/*
 * The raw text of element `index` of the array at a dotted path; 1 on success, 0 when the path is
 * not an array or the array is shorter.
 */
static inline int vtcode_json_array_item(const char *json, const char *path, size_t index, const char **start, size_t *len) {
  const char *p;
  size_t n;
  if (!vtcode_json_find(json, path, &p, &n) || *p != '[') return 0;
  p = vtcode__ws(p + 1);
  for (size_t i = 0; *p && *p != ']'; i++) {
    const char *end = vtcode__skip(p);
    if (!end) return 0;
    if (i == index) {
      *start = p;
      *len = (size_t)(end - p);
      return 1;
    }
    p = vtcode__ws(end);
    if (*p == ',') p = vtcode__ws(p + 1);
  }
  return 0;
}

/* Appends code point cp as UTF-8. */
static inline char *vtcode__utf8(char *o, unsigned long cp) {
  if (cp < 0x80) *o++ = (char)cp;
  else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F)); }
  else { *o++ = (char)(0xF0 | cp >> 18); *o++ = (char)(0x80 | ((cp >> 12) & 0x3F)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F)); }
  return o;
}

/* Unescapes a raw JSON string value (with its quotes) of n bytes into a malloc'ed string. */
static inline char *vtcode_json_unescape(const char *v, size_t n) {
  if (n < 2 || *v != '"') return NULL;
  char *out = (char *)malloc(n);
  if (!out) return NULL;
  char *o = out;
  for (const char *p = v + 1; p < v + n - 1; p++) {
    if (*p != '\\') { *o++ = *p; continue; }
    switch (*++p) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'u': {
        if (v + n - 1 - p < 5) { *o++ = '?'; p = v + n - 2; break; } /* a truncated escape */
        unsigned long cp = strtoul((char[]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && v + n - 1 - p >= 7 && p[1] == '\\' && p[2] == 'u') {
          unsigned long lo = strtoul((char[]){p[3], p[4], p[5], p[6], 0}, NULL, 16);
          if (lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); p += 6; }
        }
        /* A lone surrogate has no UTF-8 form: U+FFFD, so what this returns is always valid UTF-8. */
        o = vtcode__utf8(o, cp >= 0xD800 && cp < 0xE000 ? 0xFFFD : cp);
        break;
      }
      default: *o++ = *p;
    }
  }
  *o = 0;
  return out;
}

/* The string at a dotted path, unescaped, malloc'ed; NULL when absent or not a string. */
static inline char *vtcode_json_string(const char *json, const char *path) {
  const char *v;
  size_t n;
  return vtcode_json_find(json, path, &v, &n) ? vtcode_json_unescape(v, n) : NULL;
}

/* The number at a dotted path, or fallback when absent or not a number. */
static inline double vtcode_json_number(const char *json, const char *path, double fallback) {
  const char *v;
  size_t n;
  if (!vtcode_json_find(json, path, &v, &n)) return fallback;
  char *end;
  double d = strtod(v, &end);
  return end == v + n ? d : fallback;
}

/* The boolean at a dotted path, or fallback when absent or not a boolean. */
static inline int vtcode_json_bool(const char *json, const char *path, int fallback) {
  const char *v;
  size_t n;
  if (!vtcode_json_find(json, path, &v, &n)) return fallback;
  if (n == 4 && strncmp(v, "true", 4) == 0) return 1;
  if (n == 5 && strncmp(v, "false", 5) == 0) return 0;
  return fallback;
}

/* ---------- metadata written once, in plugin.json ---------- */

/*
 * Exports vtcode_plugin_metadata() returning a heap copy of `json` (pair it with
 * VTCODE_PLUGIN_EXPORT_FREE()). With the plugin_meta.h that the template Makefile and
 * `skillplug build` generate from plugin.json, plugin.json is the one place for the name,
 * description, version and schema:
 *
 *   #include "plugin_meta.h"
 *   VTCODE_PLUGIN_EXPORT_METADATA(vtcode_plugin_metadata_json)
 */
#define VTCODE_PLUGIN_EXPORT_METADATA(json) \
  VTCODE_EXTERN_C VTCODE_EXPORT const char *vtcode_plugin_metadata(void) { return vtcode_strdup(json); }

/* ---------- logging (optional; docs/abi.md "Logging") ---------- */

/*
 * A log line is one line on stderr starting with a syslog level in angle brackets; skillplug shows it
 * in `dev` and `run --verbose`, keeps it for logs, and forwards it to MCP clients; VT Code and other
 * hosts see a plain stderr line. Without this header it is one call:
 *   fprintf(stderr, "<6>indexed %d files\n", n);
 */
#define VTCODE_LOG_EMERGENCY 0
#define VTCODE_LOG_ALERT 1
#define VTCODE_LOG_CRITICAL 2
#define VTCODE_LOG_ERROR 3
#define VTCODE_LOG_WARNING 4
#define VTCODE_LOG_NOTICE 5
#define VTCODE_LOG_INFO 6
#define VTCODE_LOG_DEBUG 7

/* Writes one log line (printf-style; newlines in the text become spaces, the line is cut at 4000 bytes). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline void vtcode_log(int level, const char *format, ...) {
  char text[4000];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(text, sizeof text, format, args);
  va_end(args);
  if (n < 0) return;
  for (char *c = text; *c; c++) {
    if (*c == '\n' || *c == '\r') *c = ' ';
  }
  if (level < VTCODE_LOG_EMERGENCY || level > VTCODE_LOG_DEBUG) level = VTCODE_LOG_INFO;
  /* One fprintf: stdio locks stderr for it, so lines from several threads never interleave. */
  fprintf(stderr, "<%d>%s\n", level, text);
}

#define vtcode_log_error(...) vtcode_log(VTCODE_LOG_ERROR, __VA_ARGS__)
#define vtcode_log_warning(...) vtcode_log(VTCODE_LOG_WARNING, __VA_ARGS__)
#define vtcode_log_info(...) vtcode_log(VTCODE_LOG_INFO, __VA_ARGS__)
#define vtcode_log_debug(...) vtcode_log(VTCODE_LOG_DEBUG, __VA_ARGS__)

#endif /* VTCODE_PLUGIN_H */
