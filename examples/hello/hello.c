/* hello: the smallest complete skillplug plugin, written with the C SDK. */
#include "vtcode_plugin.h"

VTCODE_PLUGIN_EXPORT_VERSION()
VTCODE_PLUGIN_EXPORT_FREE()

VTCODE_EXPORT const char *vtcode_plugin_metadata(void) {
  /* A free function is exported, so even the metadata must be heap-allocated. */
  return vtcode_strdup(
      "{\"name\":\"hello\",\"description\":\"Greets someone by name.\",\"version\":\"1.0.0\","
      "\"author\":\"skillplug\",\"abi_version\":1,\"when_to_use\":\"To check that native skills work.\","
      "\"thread_safe\":true}");
}

VTCODE_EXPORT const char *vtcode_plugin_execute(const char *ctx) {
  char *name = vtcode_json_string(ctx, "input.name");
  const char *who = name && *name ? name : "world";
  char *text = (char *)malloc(strlen(who) + 9);
  char *result = NULL;
  if (text) {
    sprintf(text, "Hello, %s!", who);
    char *greeting = vtcode_json_quote(text);
    char *output = greeting ? (char *)malloc(strlen(greeting) + 16) : NULL;
    if (output) {
      sprintf(output, "{\"greeting\":%s}", greeting);
      result = vtcode_result_ok(output);
    }
    free(output);
    free(greeting);
    free(text);
  }
  free(name);
  return result ? result : vtcode_result_error("out of memory");
}
