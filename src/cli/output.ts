import { ErrorCode, type PluginError, type ErrorCode as Code } from '../errors.js';
import { escapeTerminal } from '../terminal.js';

// Re-exported: the CLI's commands take every output helper from here.
export { escapeTerminal };

/** CLI exit codes. */
export const ExitCode = {
  OK: 0,
  /** The plugin returned `success: false`, or validation found problems. */
  PLUGIN_FAILED: 1,
  USAGE: 2,
  /** The plugin could not be loaded. */
  LOAD_FAILED: 3,
  /** The plugin failed while running. */
  RUN_FAILED: 4,
} as const;

const LOAD_CODES: ReadonlySet<Code> = new Set<Code>([
  ErrorCode.NOT_FOUND,
  ErrorCode.UNTRUSTED_PATH,
  ErrorCode.INVALID_MANIFEST,
  ErrorCode.INVALID_STRUCTURE,
  ErrorCode.LOAD_FAILED,
  ErrorCode.MISSING_SYMBOL,
  ErrorCode.ABI_MISMATCH,
  ErrorCode.INVALID_METADATA,
  ErrorCode.SIGNATURE,
  ErrorCode.INTEGRITY,
  ErrorCode.SHADOWING,
  ErrorCode.ROLLBACK,
  ErrorCode.INSTALL_CONFLICT,
  ErrorCode.QUARANTINED,
  ErrorCode.SANDBOX_UNAVAILABLE,
  ErrorCode.HOST_UNAVAILABLE,
  ErrorCode.PERMISSION_DENIED,
]);

/** The exit code for an error. */
export function exitCodeFor(err: PluginError): number {
  if (err.code === ErrorCode.USAGE || err.code === ErrorCode.INVALID_INPUT || err.code === ErrorCode.CONFIG) return ExitCode.USAGE;
  if (err.code === ErrorCode.BUILD_FAILED) return ExitCode.PLUGIN_FAILED;
  if (LOAD_CODES.has(err.code)) return ExitCode.LOAD_FAILED;
  return ExitCode.RUN_FAILED;
}

/** Writes to stdout and resolves once the data is handed to the OS (large outputs included). Control characters are escaped. */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(escapeTerminal(text, true), (err) => (err ? reject(err) : resolve()));
  });
}

/** Writes a line to stderr, control characters escaped. */
export function writeErr(text: string): void {
  const safe = escapeTerminal(text, true);
  process.stderr.write(safe.endsWith('\n') ? safe : `${safe}\n`);
}

/** Reports an error in the CLI's format and returns the exit code to use. */
export async function reportError(err: PluginError, json: boolean): Promise<number> {
  if (json) await writeOut(`${JSON.stringify({ error: err.toJSON() })}\n`);
  else writeErr(`skillplug: error[${err.code}]: ${escapeTerminal(err.message)}${err.failure?.stderrTail ? `\n--- plugin stderr (last lines) ---\n${err.failure.stderrTail}` : ''}`);
  return exitCodeFor(err);
}
