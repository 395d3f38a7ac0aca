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

/* A malloc'ed JSON string literal (with quotes) for UTF-8 text s. */
static inline char *vtcode_json_quote(const char *s) {
  size_t cap = strlen(s) * 6 + 3;
  char *out = (char *)malloc(cap);
  if (!out) return NULL;
  char *p = out;
  *p++ = '"';
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    switch (*c) {
      case '"': *p++ = '\\'; *p++ = '"'; break;
      case '\\': *p++ = '\\'; *p++ = '\\'; break;
      case '\n': *p++ = '\\'; *p++ = 'n'; break;
      case '\r': *p++ = '\\'; *p++ = 'r'; break;
      case '\t': *p++ = '\\'; *p++ = 't'; break;
      default:
        if (*c < 0x20) p += sprintf(p, "\\u%04x", *c);
        else *p++ = (char)*c;
    }
  }
  *p++ = '"';
  *p = 0;
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
        unsigned long cp = strtoul((char[]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
          unsigned long lo = strtoul((char[]){p[3], p[4], p[5], p[6], 0}, NULL, 16);
          if (lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); p += 6; }
        }
        o = vtcode__utf8(o, cp);
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

#endif /* VTCODE_PLUGIN_H */
