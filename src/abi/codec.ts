import { ErrorCode, PluginError } from '../errors.js';
import type { JsonValue, PluginContext, PluginMetadata, PluginResult } from './types.js';

/** Who a decoded string came from, for error messages. */
export interface Origin {
  plugin: string;
  path: string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** True for a non-null, non-array object. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * True when a parsed JSON value nests deeper than `max` arrays/objects. Iterative, so it never
 * overflows the stack itself: recursive consumers (JSON.stringify, validators) would.
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  // The stacks are made only once a child is an array or object: most values checked (a plugin.json per plugin of a scan) nest little.
  let values: object[] | undefined;
  let depths: number[] | undefined;
  let current: object = value;
  let depth = 1;
  for (;;) {
    if (depth > max) return true;
    if (Array.isArray(current)) {
      for (let i = 0; i < current.length; i++) {
        const child: unknown = current[i];
        if (typeof child === 'object' && child !== null) {
          (values ??= []).push(child);
          (depths ??= []).push(depth + 1);
        }
      }
    } else {
      // for-in over own keys: what Object.values gives, without an array of them per object.
      for (const key in current) {
        if (!Object.hasOwn(current, key)) continue;
        const child: unknown = (current as Record<string, unknown>)[key];
        if (typeof child === 'object' && child !== null) {
          (values ??= []).push(child);
          (depths ??= []).push(depth + 1);
        }
      }
    }
    if (values === undefined || values.length === 0) return false;
    current = values.pop() as object;
    depth = (depths as number[]).pop() as number;
  }
}

/** Deepest nesting accepted in a plugin result, and in MCP tool arguments. */
export const MAX_RESULT_DEPTH = 1000;

// JSON nesting `max` deep needs at least 2 * max bracket characters, so shorter text needs no walk.
function checkResultDepth(value: unknown, textLength: number, origin: Origin): void {
  if (textLength <= 2 * MAX_RESULT_DEPTH || !nestedDeeperThan(value, MAX_RESULT_DEPTH)) return;
  throw new PluginError(
    ErrorCode.INVALID_RESULT,
    `Plugin "${origin.plugin}" (${origin.path}) returned a result nested more than ${MAX_RESULT_DEPTH} levels deep. Flatten the plugin's output.`,
    { plugin: origin.plugin, path: origin.path, data: { maxDepth: MAX_RESULT_DEPTH } },
  );
}

/** Parses a result's JSON text and checks its nesting depth (walked only for long texts). */
export function parseResultText(text: string, origin: Origin): unknown {
  const value = parseJsonText(text, 'a result', origin);
  checkResultDepth(value, text.length, origin);
  return value;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

// An empty config is the common case, and cheaper to spot than to stringify.
function isEmptyPlainObject(value: object): boolean {
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const _key in value) return false;
  return true;
}

/**
 * A checked context serialized field by field; `null` stands for the usual `null` workspace root and
 * `{}` config, so the common case crosses the boundary as one string.
 */
export interface ContextParts {
  input: string;
  workspaceRoot: string | null;
  config: string | null;
}

/** Checks a context and serializes its fields. Throws `E_INVALID_INPUT` before anything crosses the boundary. */
export function encodeContextParts(ctx: PluginContext, origin: Origin): ContextParts {
  // Allocated only when something is wrong: this runs on every call.
  let problems: string[] | undefined;
  if (!isPlainObject(ctx)) {
    (problems ??= []).push(`the context must be an object, got ${describeType(ctx)}`);
  } else {
    if (!isPlainObject(ctx.input)) (problems ??= []).push(`"input" must be a JSON object, got ${describeType(ctx.input)}`);
    if (ctx.workspace_root !== null && ctx.workspace_root !== undefined && typeof ctx.workspace_root !== 'string') {
      (problems ??= []).push(`"workspace_root" must be a string or null, got ${describeType(ctx.workspace_root)}`);
    }
    if (ctx.config !== undefined && !isPlainObject(ctx.config)) {
      (problems ??= []).push(`"config" must be a JSON object, got ${describeType(ctx.config)}`);
    }
  }
  if (problems) {
    throw new PluginError(
      ErrorCode.INVALID_INPUT,
      `Invalid context for plugin "${origin.plugin}" (${origin.path}): ${problems.join('; ')}. Nothing was run.`,
      { plugin: origin.plugin, path: origin.path, data: { problems } },
    );
  }
  try {
    const input = JSON.stringify(ctx.input) as string | undefined;
    if (typeof input !== 'string') throw new TypeError('"input" serializes to nothing (a toJSON() returned undefined)');
    const workspaceRoot = typeof ctx.workspace_root === 'string' ? JSON.stringify(ctx.workspace_root) : null;
    const config = ctx.config === undefined || isEmptyPlainObject(ctx.config) ? null : (JSON.stringify(ctx.config) as string | undefined);
    if (config === undefined) throw new TypeError('"config" serializes to nothing (a toJSON() returned undefined)');
    return { input, workspaceRoot, config };
  } catch (err) {
    throw new PluginError(
      ErrorCode.INVALID_INPUT,
      `The context for plugin "${origin.plugin}" (${origin.path}) cannot be serialized as JSON: ${(err as Error).message}. Pass plain JSON values only.`,
      { plugin: origin.plugin, path: origin.path, cause: err },
    );
  }
}

/** The context JSON the ABI passes to `vtcode_plugin_execute` (pump.c's direct_call builds the same bytes). */
export function joinContext(parts: ContextParts): string {
  return `{"input":${parts.input},"workspace_root":${parts.workspaceRoot ?? 'null'},"config":${parts.config ?? '{}'}}`;
}

/** Checks a context and serializes it as JSON text. Throws `E_INVALID_INPUT` before anything crosses the boundary. */
export function encodeContextText(ctx: PluginContext, origin: Origin): string {
  return joinContext(encodeContextParts(ctx, origin));
}

/** Offset of the first byte that starts no well-formed UTF-8 sequence (RFC 3629: no overlongs, surrogates or code points past U+10FFFF); the length when all are valid. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let at = 0;
  while (at < bytes.length) {
    const c = bytes[at] as number;
    if (c < 0x80) {
      at++;
      continue;
    }
    const len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (len === 0 || c < 0xc2 || c > 0xf4 || at + len > bytes.length) return at;
    for (let i = 1; i < len; i++) if (((bytes[at + i] as number) & 0xc0) !== 0x80) return at;
    const second = bytes[at + 1] as number;
    if ((c === 0xe0 && second < 0xa0) || (c === 0xed && second >= 0xa0) || (c === 0xf0 && second < 0x90) || (c === 0xf4 && second >= 0x90)) return at;
    at += len;
  }
  return bytes.length;
}

/** Decodes strict UTF-8 and parses JSON, with the ABI's error codes. */
export function parseJsonBytes(bytes: Uint8Array, what: string, origin: Origin): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    const offset = firstInvalidUtf8(bytes);
    throw new PluginError(
      ErrorCode.INVALID_UTF8,
      `Plugin "${origin.plugin}" (${origin.path}) returned ${what} that is not valid UTF-8: byte ${offset} of ${bytes.length} (0x${(bytes[offset] ?? 0).toString(16).padStart(2, '0')}) starts no valid sequence. The plugin must return UTF-8 JSON; fix the plugin.`,
      { plugin: origin.plugin, path: origin.path, data: { bytes: bytes.length, offset } },
    );
  }
  return parseJsonText(text, what, origin);
}

/** Parses JSON text (already known to be valid UTF-8), with the ABI's error code. */
export function parseJsonText(text: string, what: string, origin: Origin): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PluginError(
      ErrorCode.INVALID_JSON,
      `Plugin "${origin.plugin}" (${origin.path}) returned ${what} that is not JSON (${(err as Error).message}); it starts with ${JSON.stringify(text.slice(0, 80))}. Fix the plugin.`,
      { plugin: origin.plugin, path: origin.path, data: { excerpt: text.slice(0, 200) } },
    );
  }
}

function optionalString(obj: Record<string, unknown>, key: string, problems: string[]): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    problems.push(`"${key}" must be a string, got ${describeType(value)}`);
    return undefined;
  }
  return value;
}

function requiredString(obj: Record<string, unknown>, key: string, problems: string[], allowEmpty = false): string {
  const value = obj[key];
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0)) {
    problems.push(value === undefined ? `"${key}" is missing` : `"${key}" must be a non-empty string, got ${describeType(value)}`);
    return '';
  }
  return value;
}

/**
 * Validates the library's metadata JSON (already parsed) and returns it normalized.
 * Throws `E_INVALID_METADATA` listing every problem.
 */
export function validateMetadata(raw: unknown, origin: Origin): PluginMetadata {
  const problems: string[] = [];
  if (!isPlainObject(raw)) {
    problems.push(`metadata must be a JSON object, got ${describeType(raw)}`);
  }
  const obj = isPlainObject(raw) ? raw : {};
  const name = requiredString(obj, 'name', problems);
  const description = requiredString(obj, 'description', problems, true);
  const version = requiredString(obj, 'version', problems);
  const abi = obj.abi_version;
  if (typeof abi !== 'number' || !Number.isInteger(abi) || abi < 0) {
    problems.push(abi === undefined ? '"abi_version" is missing' : `"abi_version" must be a non-negative integer, got ${describeType(abi)}`);
  }
  const author = optionalString(obj, 'author', problems);
  const whenToUse = optionalString(obj, 'when_to_use', problems);
  const whenNotToUse = optionalString(obj, 'when_not_to_use', problems);
  let allowedTools: string[] | undefined;
  if (obj.allowed_tools !== undefined && obj.allowed_tools !== null) {
    if (!Array.isArray(obj.allowed_tools) || !obj.allowed_tools.every((t) => typeof t === 'string')) {
      problems.push('"allowed_tools" must be an array of strings');
    } else {
      allowedTools = obj.allowed_tools as string[];
    }
  }
  let threadSafe = false;
  if (obj.thread_safe !== undefined && obj.thread_safe !== null) {
    if (typeof obj.thread_safe !== 'boolean') problems.push(`"thread_safe" must be a boolean, got ${describeType(obj.thread_safe)}`);
    else threadSafe = obj.thread_safe;
  }
  if (problems.length > 0) {
    throw new PluginError(
      ErrorCode.INVALID_METADATA,
      `Plugin "${origin.plugin}" (${origin.path}) returned invalid metadata from vtcode_plugin_metadata(): ${problems.join('; ')}. Fix the metadata JSON in the plugin.`,
      { plugin: origin.plugin, path: origin.path, data: { problems } },
    );
  }
  const metadata: PluginMetadata = { name, description, version, abi_version: abi as number, thread_safe: threadSafe };
  if (author !== undefined) metadata.author = author;
  if (whenToUse !== undefined) metadata.when_to_use = whenToUse;
  if (whenNotToUse !== undefined) metadata.when_not_to_use = whenNotToUse;
  if (allowedTools !== undefined) metadata.allowed_tools = allowedTools;
  return metadata;
}

function allStrings(values: unknown[]): boolean {
  for (let i = 0; i < values.length; i++) if (typeof values[i] !== 'string') return false;
  return true;
}

/**
 * Validates a parsed result JSON against the ABI's shape.
 * Throws `E_INVALID_RESULT` listing every problem.
 */
export function validateResult(raw: unknown, origin: Origin): PluginResult {
  // Allocated only when something is wrong: this runs on every call.
  let problems: string[] | undefined;
  if (!isPlainObject(raw)) {
    (problems ??= []).push(`the result must be a JSON object, got ${describeType(raw)}`);
  } else {
    if (typeof raw.success !== 'boolean') {
      (problems ??= []).push(raw.success === undefined ? '"success" is missing' : `"success" must be a boolean, got ${describeType(raw.success)}`);
    }
    if (!('output' in raw)) (problems ??= []).push('"output" is missing');
    if (raw.error !== undefined && raw.error !== null && typeof raw.error !== 'string') {
      (problems ??= []).push(`"error" must be a string or null, got ${describeType(raw.error)}`);
    }
    if (!Array.isArray(raw.files)) {
      (problems ??= []).push(raw.files === undefined ? '"files" is missing' : `"files" must be an array, got ${describeType(raw.files)}`);
    } else if (!allStrings(raw.files)) {
      (problems ??= []).push('"files" must hold only strings');
    }
  }
  if (problems) {
    throw new PluginError(
      ErrorCode.INVALID_RESULT,
      `Plugin "${origin.plugin}" (${origin.path}) returned a result of the wrong shape: ${problems.join('; ')}. A result is {"success":bool,"output":…,"error":string|null,"files":[string]}; fix the plugin.`,
      { plugin: origin.plugin, path: origin.path, data: { problems } },
    );
  }
  const obj = raw as Record<string, unknown>;
  return {
    success: obj.success as boolean,
    output: obj.output as JsonValue,
    error: (obj.error as string | null | undefined) ?? null,
    files: obj.files as string[],
  };
}

function parseReturned(returned: DecodableString, what: string, origin: Origin): unknown {
  return returned.kind === 'text' ? parseJsonText(returned.text, what, origin) : parseJsonBytes(returned.bytes, what, origin);
}

/** Decodes a plugin's result into a {@link PluginResult}. */
export function decodeResult(returned: DecodableString, origin: Origin): PluginResult {
  const value = parseReturned(returned, 'a result', origin);
  checkResultDepth(value, returned.kind === 'text' ? returned.text.length : returned.bytes.length, origin);
  return validateResult(value, origin);
}

/** Decodes a plugin's metadata into {@link PluginMetadata}. */
export function decodeMetadata(returned: DecodableString, origin: Origin): PluginMetadata {
  try {
    return validateMetadata(parseReturned(returned, 'metadata', origin), origin);
  } catch (err) {
    // Bad metadata bytes are a metadata fault whatever layer found them.
    if (err instanceof PluginError && err.code !== ErrorCode.INVALID_METADATA) {
      throw new PluginError(ErrorCode.INVALID_METADATA, err.message, {
        plugin: origin.plugin,
        path: origin.path,
        data: { ...(err.data ?? {}), cause: err.code },
      });
    }
    throw err;
  }
}

/** A returned string's content: raw bytes (checked as UTF-8 when decoded) or text already known to be valid UTF-8. */
export type DecodableString = { kind: 'bytes'; bytes: Uint8Array } | { kind: 'text'; text: string };

/** A string a plugin returned, copied out of its memory (and already freed when it exports a free function). */
export type ReturnedString = { kind: 'null' } | DecodableString | { kind: 'too-large'; length: number } | NotFreeableString;

/**
 * A string in the library's own image (a literal, or a static buffer when `writable`) returned by a
 * plugin that exports `vtcode_plugin_free_string`: freeing it would crash, so it was neither read nor freed.
 */
export interface NotFreeableString {
  kind: 'not-freeable';
  writable: boolean;
}

/** The same returned string, off the memory it was read from: valid UTF-8 becomes text (decoded as a result would be), anything else a copy. */
export function detachReturned(returned: ReturnedString): ReturnedString {
  if (returned.kind !== 'bytes') return returned;
  try {
    return { kind: 'text', text: strictUtf8.decode(returned.bytes) };
  } catch {
    return { kind: 'bytes', bytes: new Uint8Array(returned.bytes) };
  }
}

/** The error for a {@link NotFreeableString}: E_INVALID_METADATA from `vtcode_plugin_metadata()`, else E_INVALID_RESULT. */
export function notFreeableError(returned: NotFreeableString, fn: 'vtcode_plugin_metadata' | 'vtcode_plugin_execute', origin: Origin): PluginError {
  const what = returned.writable ? 'a static buffer' : 'a string literal';
  return new PluginError(
    fn === 'vtcode_plugin_metadata' ? ErrorCode.INVALID_METADATA : ErrorCode.INVALID_RESULT,
    `Plugin "${origin.plugin}" (${origin.path}) returned ${what} from ${fn}() while exporting vtcode_plugin_free_string: VT Code passes every returned string to that function, and freeing memory that was never allocated crashes it. Return a heap copy (malloc/strdup, CString::into_raw) or stop exporting vtcode_plugin_free_string.`,
    { plugin: origin.plugin, path: origin.path, data: { reason: 'not-freeable', function: fn, storage: returned.writable ? 'static-buffer' : 'string-literal' } },
  );
}

/** Builds the NULL-result error. */
export function nullResultError(what: string, origin: Origin): PluginError {
  return new PluginError(
    ErrorCode.NULL_RESULT,
    `Plugin "${origin.plugin}" (${origin.path}) returned NULL from ${what}. The plugin must always return a JSON string; fix the plugin.`,
    { plugin: origin.plugin, path: origin.path },
  );
}
