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
  const safe = escapeTerminal(text, true);
  // Straight to fd 1 while process.stdout is unused: on a pipe, creating it loads Node's net and stream
  // modules, a few ms of a command's start. Whatever that write cannot finish (a full non-blocking pipe,
  // a reader gone, a closed stdout) goes to the stream, which handles it as it always did. Not on Windows,
  // where only the stream writes text to a console as such.
  const rest = stream === undefined && process.platform !== 'win32' ? writeDirect(safe) : safe;
  if (rest === undefined) return Promise.resolve();
  return new Promise((resolve, reject) => {
    stdout().write(rest, (err) => (err ? reject(err) : resolve()));
  });
}

// The pieces ASCII text is written in, through one buffer: a Linux pipe's capacity.
const PIECE_BYTES = 64 * 1024;
let piece: Buffer | undefined;

// Writes to fd 1 what it can of `text`; returns what is left for the stream, or undefined when all of it was written.
function writeDirect(text: string): string | Buffer | undefined {
  const bytes = Buffer.byteLength(text);
  if (bytes !== text.length) {
    let written = 0;
    try {
      written = writeSync(1, text);
    } catch {
      written = 0;
    }
    return written === bytes ? undefined : Buffer.from(text).subarray(written);
  }
  // ASCII, as JSON output mostly is: through one reused buffer in pieces, where a write of the whole text
  // first copies it into a new buffer as large (373 KB for list over 1000 plugins), faulted in page by page.
  const buffer = (piece ??= Buffer.allocUnsafe(PIECE_BYTES));
  for (let at = 0; at < text.length; ) {
    const length = buffer.write(text.slice(at, at + PIECE_BYTES), 'latin1');
    let written = 0;
    try {
      written = writeSync(1, buffer, 0, length);
    } catch {
      written = 0;
    }
    at += written;
    if (written < length) return text.slice(at);
  }
  return undefined;
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
