/* {{name}}: a skillplug plugin (VT Code native plugin ABI v1). */
#include "vtcode_plugin.h"
/* Generated from plugin.json by `make`: the name, description and version live there only. */
#include "plugin_meta.h"

VTCODE_PLUGIN_EXPORT_VERSION()
VTCODE_PLUGIN_EXPORT_FREE()
/* A free function is exported, so the metadata is a heap copy (the macro makes one). */
VTCODE_PLUGIN_EXPORT_METADATA(vtcode_plugin_metadata_json)

VTCODE_EXPORT const char *vtcode_plugin_execute(const char *ctx) {
  char *text = vtcode_json_string(ctx, "input.text");
  size_t bytes = text ? strlen(text) : 0;
  char output[64];
  snprintf(output, sizeof output, "{\"bytes\":%zu}", bytes);
  free(text);
  return vtcode_result_ok(output);
}
