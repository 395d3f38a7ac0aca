import { writeSync } from 'node:fs';
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

let stream: NodeJS.WriteStream | undefined;

/**
 * process.stdout, made ready for the CLI: a reader that stopped reading (`skillplug list | head`) ends
 * the command, as for any Unix tool, not a crash. Once it is in use, {@link writeOut} writes through it too.
 */
export function stdout(): NodeJS.WriteStream {
  if (stream === undefined) {
    stream = process.stdout;
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(process.exitCode ?? 0);
    });
  }
  return stream;
}

/** Writes to stdout and resolves once the data is handed to the OS (large outputs included). Control characters are escaped. */
export function writeOut(text: string): Promise<void> {
  let rest: string | Buffer = escapeTerminal(text, true);
  // Straight to fd 1 while process.stdout is unused: on a pipe, creating it loads Node's net and stream
  // modules, a few ms of a command's start. Whatever that write cannot finish (a full non-blocking pipe,
  // a reader gone, a closed stdout) goes to the stream, which handles it as it always did.
  if (stream === undefined) {
    let written = 0;
    try {
      written = writeSync(1, rest);
    } catch {
      written = 0;
    }
    if (written === Buffer.byteLength(rest)) return Promise.resolve();
    rest = Buffer.from(rest).subarray(written);
  }
  const chunk = rest;
  return new Promise((resolve, reject) => {
    stdout().write(chunk, (err) => (err ? reject(err) : resolve()));
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
