/**
 * Stable error codes. Tests, callers and the CLI branch on these, never on message text.
 */
export const ErrorCode = {
  /** Bad command-line usage or bad options. */
  USAGE: 'E_USAGE',
  /** No plugin with that name or path in the trusted dirs. */
  NOT_FOUND: 'E_NOT_FOUND',
  /** The plugin dir or library resolves outside every trusted dir. */
  UNTRUSTED_PATH: 'E_UNTRUSTED_PATH',
  /** plugin.json is missing, not JSON, or lacks a required field. */
  INVALID_MANIFEST: 'E_INVALID_MANIFEST',
  /** The plugin dir lacks a library, or its files are not what they should be. */
  INVALID_STRUCTURE: 'E_INVALID_STRUCTURE',
  /** The dynamic loader refused the library. */
  LOAD_FAILED: 'E_LOAD_FAILED',
  /** A required ABI symbol is not exported. */
  MISSING_SYMBOL: 'E_MISSING_SYMBOL',
  /** `vtcode_plugin_version()` is not the host's ABI version. */
  ABI_MISMATCH: 'E_ABI_MISMATCH',
  /** The library's metadata is not valid or names another plugin. */
  INVALID_METADATA: 'E_INVALID_METADATA',
  /** The plugin returned a NULL string. */
  NULL_RESULT: 'E_NULL_RESULT',
  /** The plugin returned bytes that are not UTF-8. */
  INVALID_UTF8: 'E_INVALID_UTF8',
  /** The plugin returned text that is not JSON. */
  INVALID_JSON: 'E_INVALID_JSON',
  /** The plugin returned JSON of the wrong shape. */
  INVALID_RESULT: 'E_INVALID_RESULT',
  /** The plugin reported failure (`success: false` in its result). */
  PLUGIN_FAILED: 'E_PLUGIN_FAILED',
  /** The plugin's output does not match the `output_schema` its plugin.json declares (or is not an object when one is declared). */
  INVALID_OUTPUT: 'E_INVALID_OUTPUT',
  /** The call's input or options are invalid; nothing ran. */
  INVALID_INPUT: 'E_INVALID_INPUT',
  /**
   * A call was refused because of a call in flight it must not run beside: `executeSync` beside an
   * asynchronous call, or any call to an in-process plugin whose timed-out call has not returned yet.
   */
  BUSY: 'E_BUSY',
  /** The plugin was closed. */
  CLOSED: 'E_CLOSED',
  /** The plugin host died (signal or exit) during the call. */
  CRASHED: 'E_CRASHED',
  /** The call ran past its deadline. */
  TIMEOUT: 'E_TIMEOUT',
  /** The call was cancelled through its AbortSignal. */
  CANCELLED: 'E_CANCELLED',
  /** The plugin crashed too often and is refused until reloaded. */
  QUARANTINED: 'E_QUARANTINED',
  /** The plugin hit a resource limit (memory). */
  RESOURCE_LIMIT: 'E_RESOURCE_LIMIT',
  /** The result was larger than `maxOutputBytes`. */
  OUTPUT_TOO_LARGE: 'E_OUTPUT_TOO_LARGE',
  /** A sandbox was required but none is available. */
  SANDBOX_UNAVAILABLE: 'E_SANDBOX_UNAVAILABLE',
  /** The isolated host could not be built or started. */
  HOST_UNAVAILABLE: 'E_HOST_UNAVAILABLE',
  /** A signature is missing, malformed, from an unknown key, or does not verify. */
  SIGNATURE: 'E_SIGNATURE',
  /** The plugin's files differ from the lock file. */
  INTEGRITY: 'E_INTEGRITY',
  /** A workspace plugin has the name of a plugin you installed; it is refused unless you allow the shadowing. */
  SHADOWING: 'E_SHADOWING',
  /** A workspace plugin is an older version than the one you installed or pinned. */
  ROLLBACK: 'E_ROLLBACK',
  /** `skillplug install` found something else where the plugin goes (another plugin, or another build of the same version); `--force` replaces it. */
  INSTALL_CONFLICT: 'E_INSTALL_CONFLICT',
  /** Building a plugin project failed. */
  BUILD_FAILED: 'E_BUILD_FAILED',
  /**
   * The plugin asks for permissions the user has not granted it (network, Unix sockets, reads outside
   * the workspace, writes), or for paths that can never be granted (a symlinked component, a write
   * into `.git` or a plugin dir). Nothing of the plugin ran. `data.missing` names what is missing,
   * `data.refused` what can never be granted, `data.grant_command` the command that grants it.
   */
  PERMISSION_DENIED: 'E_PERMISSION_DENIED',
  /** A skillplug config file is unreadable or invalid. */
  CONFIG: 'E_CONFIG',
  /** An unexpected internal failure (a bug in skillplug). */
  INTERNAL: 'E_INTERNAL',
} as const;

/** One of the {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Facts about a failed plugin host, attached to crash, timeout and limit errors. */
export interface HostFailure {
  /** The host died during the call. */
  crashed: boolean;
  /** The call was stopped at its deadline. */
  timedOut: boolean;
  /** The call was aborted by its caller. */
  cancelled: boolean;
  /** The signal that ended the host, if any (e.g. `SIGSEGV`). */
  signal: string | null;
  /** The host's exit code, if it exited. */
  exitCode: number | null;
  /** The last lines the plugin wrote to stderr. */
  stderrTail: string;
}

/** Optional context carried by a {@link PluginError}. */
export interface PluginErrorDetails {
  /** The plugin's name, when known. */
  plugin?: string;
  /** The path the error is about (plugin dir, library or file). */
  path?: string;
  /** Machine-readable facts, e.g. `{ expected: 1, found: 2 }`. */
  data?: Record<string, unknown>;
  /** Host failure facts for crashes, timeouts and limits. */
  failure?: HostFailure;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * The one error class skillplug throws. Branch on {@link PluginError.code}; the message names
 * the plugin, the path and what to do.
 */
export class PluginError extends Error {
  /** The stable error code. */
  readonly code: ErrorCode;
  /** The plugin's name, when known. */
  readonly plugin: string | undefined;
  /** The path the error is about. */
  readonly path: string | undefined;
  /** Machine-readable facts. */
  readonly data: Record<string, unknown> | undefined;
  /** Host failure facts for crashes, timeouts and limits. */
  readonly failure: HostFailure | undefined;

  constructor(code: ErrorCode, message: string, details: PluginErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'PluginError';
    this.code = code;
    this.plugin = details.plugin;
    this.path = details.path;
    this.data = details.data;
    this.failure = details.failure;
  }

  /** A plain JSON form: `{ code, message, data? }`. */
  toJSON(): { code: ErrorCode; message: string; data?: Record<string, unknown> } {
    const data = { ...(this.data ?? {}), ...(this.failure ? { failure: this.failure } : {}) };
    return Object.keys(data).length > 0
      ? { code: this.code, message: this.message, data }
      : { code: this.code, message: this.message };
  }
}

/** True when `err` is a {@link PluginError}, optionally with the given code. */
export function isPluginError(err: unknown, code?: ErrorCode): err is PluginError {
  return err instanceof PluginError && (code === undefined || err.code === code);
}

/** Wraps any thrown value as a PluginError, keeping PluginErrors as they are. */
export function asPluginError(err: unknown, fallback: ErrorCode, context: string): PluginError {
  if (err instanceof PluginError) return err;
  const text = err instanceof Error ? err.message : String(err);
  return new PluginError(fallback, `${context}: ${text}`, { cause: err });
}
