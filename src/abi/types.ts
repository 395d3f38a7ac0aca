/** The native plugin ABI version this host speaks (`vtcode_plugin_version()` must return it). */
export const PLUGIN_ABI_VERSION = 1;

/** The exported symbol names of ABI v1. */
export const ABI_SYMBOLS = {
  version: 'vtcode_plugin_version',
  metadata: 'vtcode_plugin_metadata',
  execute: 'vtcode_plugin_execute',
  freeString: 'vtcode_plugin_free_string',
} as const;

/** Metadata JSON returned by `vtcode_plugin_metadata()`. */
export interface PluginMetadata {
  /** Plugin name; must equal plugin.json's `name`. */
  name: string;
  /** One-line purpose. */
  description: string;
  /** The plugin's own version string. */
  version: string;
  /** Author, if given. */
  author?: string;
  /** The ABI version the plugin says it was built for. */
  abi_version: number;
  /** When an agent should use this skill. */
  when_to_use?: string;
  /** When an agent should not use this skill. */
  when_not_to_use?: string;
  /** Tools the skill expects the agent to have (advisory in ABI v1). */
  allowed_tools?: string[];
  /** True when the plugin can serve concurrent calls; calls are serialized otherwise. */
  thread_safe: boolean;
}

/** A JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** The context JSON passed to `vtcode_plugin_execute()`. */
export interface PluginContext {
  /** The tool input: a JSON object. */
  input: JsonObject;
  /** Canonical workspace path, or null. */
  workspace_root: string | null;
  /** Per-plugin configuration: a JSON object. */
  config: JsonObject;
}

/** The result JSON returned by `vtcode_plugin_execute()`. */
export interface PluginResult {
  /** Whether the plugin did its job. */
  success: boolean;
  /** The plugin's output. */
  output: JsonValue;
  /** What went wrong, when `success` is false. */
  error: string | null;
  /** Files the plugin wrote or wants to point at. */
  files: string[];
}
