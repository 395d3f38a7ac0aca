import type { Origin } from '../abi/codec.js';
import type { ExecuteOptions } from './interfaces.js';
import { ErrorCode, PluginError, type HostFailure } from '../errors.js';
import { compileSchema, describeSchemaErrors } from '../manifest/schema.js';

/** Checks per-call options before anything runs. */
export function checkExecuteOptions(options: ExecuteOptions | undefined, origin: Origin): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new PluginError(ErrorCode.INVALID_INPUT, `Execute options for plugin "${origin.plugin}" must be an object.`, { plugin: origin.plugin, path: origin.path });
  }
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0)) {
    throw new PluginError(ErrorCode.INVALID_INPUT, `timeoutMs for plugin "${origin.plugin}" must be a positive number of milliseconds, got ${String(timeoutMs)}.`, {
      plugin: origin.plugin,
      path: origin.path,
    });
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new PluginError(ErrorCode.INVALID_INPUT, `signal for plugin "${origin.plugin}" must be an AbortSignal.`, { plugin: origin.plugin, path: origin.path });
  }
}

/** A failure record with every flag false, to fill in. */
export function failureFacts(partial: Partial<HostFailure>): HostFailure {
  return { crashed: false, timedOut: false, cancelled: false, signal: null, exitCode: null, stderrTail: '', ...partial };
}

/** The error for a call that ran past its deadline. */
export function timeoutError(origin: Origin, timeoutMs: number, extra: Partial<HostFailure> = {}, note = ''): PluginError {
  return new PluginError(
    ErrorCode.TIMEOUT,
    `Plugin "${origin.plugin}" (${origin.path}) did not finish within ${timeoutMs} ms${note}. Raise the timeout (timeoutMs / --timeout MS) if the work is legitimately long, or fix the plugin if it hangs.`,
    { plugin: origin.plugin, path: origin.path, data: { timeoutMs }, failure: failureFacts({ timedOut: true, ...extra }) },
  );
}

/** The error for a call aborted by its caller. */
export function cancelledError(origin: Origin, started: boolean, extra: Partial<HostFailure> = {}): PluginError {
  return new PluginError(
    ErrorCode.CANCELLED,
    `The call to plugin "${origin.plugin}" (${origin.path}) was cancelled ${started ? 'while running' : 'before it started'}.`,
    { plugin: origin.plugin, path: origin.path, data: { started }, failure: failureFacts({ cancelled: true, ...extra }) },
  );
}

/** The error for a call to a closed plugin. */
export function closedError(origin: Origin): PluginError {
  return new PluginError(ErrorCode.CLOSED, `Plugin "${origin.plugin}" (${origin.path}) is closed. Load it again to call it.`, {
    plugin: origin.plugin,
    path: origin.path,
  });
}

/** The error for a result over the size limit. */
export function outputTooLargeError(origin: Origin, length: number, limit: number): PluginError {
  return new PluginError(
    ErrorCode.OUTPUT_TOO_LARGE,
    `Plugin "${origin.plugin}" (${origin.path}) returned ${length} bytes, over the ${limit}-byte limit. Raise maxOutputBytes if this is expected, or make the plugin return less.`,
    { plugin: origin.plugin, path: origin.path, data: { bytes: length, limit } },
  );
}

/** Validates a call's input against the plugin's input_schema; `E_INVALID_INPUT` with the schema errors otherwise. */
export function checkInputSchema(input: unknown, schema: Record<string, unknown> | undefined, origin: Origin): void {
  if (schema === undefined) return;
  const compiled = compileSchema(schema);
  if (!compiled.ok || compiled.validate(input)) return;
  const errors = describeSchemaErrors(compiled.validate.errors);
  throw new PluginError(
    ErrorCode.INVALID_INPUT,
    `Input for plugin "${origin.plugin}" (${origin.path}) does not match its input_schema: ${errors.join('; ')}. Nothing was run.`,
    { plugin: origin.plugin, path: origin.path, data: { errors } },
  );
}
