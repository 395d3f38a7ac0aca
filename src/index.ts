/**
 * skillplug's whole public API. Everything a caller may use is exported here by name;
 * anything not exported here is internal and may change.
 */
export { PLUGIN_ABI_VERSION, ABI_SYMBOLS } from './abi/types.js';
export type { JsonObject, JsonValue, PluginContext, PluginMetadata, PluginResult } from './abi/types.js';
export type { ExecuteOptions, NativePluginTrait, SyncNativePlugin } from './plugin/interfaces.js';
export { canExecuteSync } from './plugin/interfaces.js';
export { abiStructTypes } from './abi/native.js';
export { MAX_LOG_LINE_CHARS, LOG_BURST_LINES, LOG_LINES_PER_SECOND, PLUGIN_LOG_LEVELS } from './abi/plugin-log.js';
export type { PluginLogEvent, PluginLogLevel } from './abi/plugin-log.js';
export type { AbiStructTypes } from './abi/native.js';
export { ErrorCode, PluginError, isPluginError } from './errors.js';
export type { HostFailure, PluginErrorDetails } from './errors.js';
export {
  MANIFEST_FILE,
  PLUGIN_NAME_PATTERN,
  libraryCandidates,
  libraryFilename,
  readManifest,
  validatePlugin,
  validatePluginStructure,
} from './manifest/index.js';
export type { ManifestReading, PluginManifest, PluginPermissions, PluginValidation, ValidationIssue } from './manifest/index.js';
export { VTCODE_NAME_PATTERN, WarningCode } from './manifest/vtcode.js';
export type { ValidationWarning } from './manifest/vtcode.js';
export { readLibraryExports } from './manifest/library-symbols.js';
export type { LibraryExports } from './manifest/library-symbols.js';
export { defaultTrustedDirs, discoverPlugins } from './discovery/index.js';
export type { DefaultDirsOptions, DiscoveredPlugin, TrustedDir, TrustedDirKind } from './discovery/index.js';
export type { PluginDirsEnv } from './discovery/user-dirs.js';
export { DEFAULT_MAX_MEMORY_MB, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_PROCESSES, DEFAULT_QUARANTINE_MS, DEFAULT_TIMEOUT_MS, ISOLATION_MODES, PluginLoader } from './loader/index.js';
export type { IsolationMode, PluginLoaderOptions } from './loader/index.js';
export { InProcessPlugin } from './in-process/index.js';
export { IsolatedPlugin } from './host/isolated.js';
export type { IsolatedPluginStats } from './host/isolated.js';
export { SANDBOX_MODES } from './sandbox/index.js';
export type { SandboxGrant, SandboxMode } from './sandbox/index.js';
export type { PermissionGrant, PermissionReport, PermissionSet, RefusedPath } from './sandbox/permissions.js';
export { planTools, renderSkillsPrompt, toolDefinitions, toolName } from './tools/definitions.js';
export type { ShadowedTool, ToolAnnotations, ToolDefinition, ToolPlan, ToolRunOptions } from './tools/definitions.js';
export type { McpServerOptions, SkillplugMcpServer } from './tools/mcp-server.js';

/**
 * Creates an MCP server over the plugins of the trusted dirs; connect it to any MCP transport.
 * The MCP SDK loads on first use, so importing skillplug stays cheap.
 */
export async function createMcpServer(options: import('./tools/mcp-server.js').McpServerOptions = {}): Promise<import('./tools/mcp-server.js').SkillplugMcpServer> {
  const { SkillplugMcpServer } = await import('./tools/mcp-server.js');
  return new SkillplugMcpServer(options);
}

/** Serves MCP over stdin/stdout until stdin ends (what `skillplug serve` runs). */
export async function serveStdio(options: import('./tools/mcp-server.js').McpServerOptions = {}): Promise<void> {
  const server = await import('./tools/mcp-server.js');
  return server.serveStdio(options);
}
export { formatKeyId, generateKeyPair, parsePublicKey, parseSecretKey, signBytes, verifyBytes } from './signing/minisign.js';
export type { MinisignPublicKey, MinisignSecretKey, VerifiedSignature } from './signing/minisign.js';
export { checkPluginSignatures, checkPluginTrust, signPluginFiles } from './signing/plugin-signatures.js';
export type { PluginTrust, SignatureStatus } from './signing/plugin-signatures.js';
export { STATEMENT_FILE } from './signing/files.js';
export { LOCK_FILE, readLock, writeLock } from './signing/lock.js';
export type { LockEntry, LockFile } from './signing/lock.js';
export { CONFIG_FILE, userConfigPath } from './config/index.js';
export type { UserConfig } from './config/index.js';
