/**
 * skillplug's whole public API. Everything a caller may use is exported here by name;
 * anything not exported here is internal and may change.
 */
export { PLUGIN_ABI_VERSION, ABI_SYMBOLS } from './abi/types.js';
export type {
  ExecuteOptions,
  JsonObject,
  JsonValue,
  NativePluginTrait,
  PluginContext,
  PluginMetadata,
  PluginResult,
} from './abi/types.js';
export { PluginMetadataFFI, PluginResultFFI } from './abi/native.js';
export { ErrorCode, PluginError, isPluginError } from './errors.js';
export type { HostFailure, PluginErrorDetails } from './errors.js';
export {
  MANIFEST_FILE,
  PLUGIN_NAME_PATTERN,
  libraryCandidates,
  libraryFilename,
  readManifest,
  validatePluginStructure,
} from './manifest/index.js';
export type { ManifestReading, PluginManifest, PluginPermissions, ValidationIssue } from './manifest/index.js';
export { defaultTrustedDirs, discoverPlugins } from './discovery/index.js';
export type { DiscoveredPlugin, TrustedDir, TrustedDirKind } from './discovery/index.js';
export { DEFAULT_MAX_OUTPUT_BYTES, ISOLATION_MODES, PluginLoader } from './loader/index.js';
export type { IsolationMode, PluginLoaderOptions } from './loader/index.js';
export { InProcessPlugin } from './loader/in-process.js';
