/* {{name}}: a skillplug plugin (VT Code native plugin ABI v1). */
#include "vtcode_plugin.h"

VTCODE_PLUGIN_EXPORT_VERSION()
VTCODE_PLUGIN_EXPORT_FREE()

VTCODE_EXPORT const char *vtcode_plugin_metadata(void) {
  /* A free function is exported, so the metadata string must be heap-allocated too. */
  return vtcode_strdup("{\"name\":\"{{name}}\",\"description\":\"{{description_c}}\",\"version\":\"0.1.0\",\"abi_version\":1,\"thread_safe\":true}");
}

VTCODE_EXPORT const char *vtcode_plugin_execute(const char *ctx) {
  char *text = vtcode_json_string(ctx, "input.text");
  size_t bytes = text ? strlen(text) : 0;
  char output[64];
  snprintf(output, sizeof output, "{\"bytes\":%zu}", bytes);
  free(text);
  return vtcode_result_ok(output);
}
