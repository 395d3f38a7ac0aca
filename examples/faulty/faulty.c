/* faulty: misbehaves on request, to show what the isolated host contains. */
#include <unistd.h>

#include "vtcode_plugin.h"

VTCODE_PLUGIN_EXPORT_VERSION()
VTCODE_PLUGIN_EXPORT_FREE()

VTCODE_EXPORT const char *vtcode_plugin_metadata(void) {
  return vtcode_strdup(
      "{\"name\":\"faulty\",\"description\":\"Crashes or hangs on request, to show fault containment.\","
      "\"version\":\"1.0.0\",\"author\":\"skillplug\",\"abi_version\":1}");
}

VTCODE_EXPORT const char *vtcode_plugin_execute(const char *ctx) {
  char *mode = vtcode_json_string(ctx, "input.mode");
  if (mode && !strcmp(mode, "crash")) {
    fputs("faulty: about to dereference NULL\n", stderr);
    *(volatile int *)0 = 42;
  }
  if (mode && !strcmp(mode, "hang"))
    for (;;) sleep(1);
  free(mode);
  return vtcode_result_ok("{\"ok\":true}");
}
