import { isPlainObject } from '../abi/codec.js';

/**
 * Stable codes of `validate` warnings: places where VT Code would treat a plugin differently from
 * skillplug. A warning never makes a plugin invalid.
 */
export const WarningCode = {
  /** plugin.json has no (or no valid) `abi_version`: VT Code's `skills list` skips the plugin. */
  VTCODE_ABI_VERSION: 'W_VTCODE_ABI_VERSION',
  /** plugin.json has a field VT Code's metadata parser rejects (so its `skills list` skips the plugin). */
  VTCODE_METADATA: 'W_VTCODE_METADATA',
  /** The library is found only under a name skillplug adds (e.g. Cargo's underscores): VT Code finds none. */
  VTCODE_LIBRARY_NAME: 'W_VTCODE_LIBRARY_NAME',
  /** The name is outside VT Code's documented rule: lowercase letters, digits, hyphens, at most 64. */
  VTCODE_NAME: 'W_VTCODE_NAME',
  /** A call's `output` was not a JSON object: VT Code rejects such results. */
  VTCODE_OUTPUT: 'W_VTCODE_OUTPUT',
  /** The library is in no format skillplug reads (ELF, Mach-O, PE) or too large, so its exported symbols were not checked. */
  SYMBOLS_NOT_CHECKED: 'W_SYMBOLS_NOT_CHECKED',
  /** plugin.json has a field (or a `permissions` key) neither skillplug nor VT Code reads: a typo is ignored silently otherwise. */
  UNKNOWN_FIELD: 'W_UNKNOWN_FIELD',
} as const;

/** One of the {@link WarningCode} values. */
export type WarningCode = (typeof WarningCode)[keyof typeof WarningCode];

/** A problem that does not stop skillplug but would change what another tool does. */
export interface ValidationWarning {
  code: WarningCode;
  /** What differs and how to fix it. */
  message: string;
  /** The plugin.json field at fault, when there is one. */
  field?: string;
  /** For an unknown field: the known name it most likely meant. */
  suggestion?: string;
}

/** VT Code's documented plugin name rule (docs/skills/NATIVE_PLUGIN_GUIDE.md): lowercase, digits, hyphens, at most 64. */
export const VTCODE_NAME_PATTERN = /^[a-z0-9-]{1,64}$/;

const U32_MAX = 0xffff_ffff;

/**
 * The fields of plugin.json VT Code's metadata parser (its `PluginMetadata`, which its skill listing
 * applies to plugin.json) would reject, each with the fix. Empty when VT Code can list the plugin.
 */
export function vtcodeMetadataWarnings(raw: unknown, file: string): ValidationWarning[] {
  if (!isPlainObject(raw)) return [];
  const warnings: ValidationWarning[] = [];
  const abi = raw.abi_version;
  if (abi === undefined) {
    warnings.push({ code: WarningCode.VTCODE_ABI_VERSION, field: 'abi_version', message: `${file} has no "abi_version": VT Code's skill listing parses plugin.json as metadata, needs it, and skips the plugin without it. Add "abi_version": 1.` });
  } else if (typeof abi !== 'number' || !Number.isInteger(abi) || abi < 0 || abi > U32_MAX) {
    warnings.push({ code: WarningCode.VTCODE_ABI_VERSION, field: 'abi_version', message: `${file}: "abi_version" must be an integer from 0 to ${U32_MAX} for VT Code, got ${JSON.stringify(abi)}. Use "abi_version": 1.` });
  }
  const metadata = (field: string, why: string): void => {
    warnings.push({ code: WarningCode.VTCODE_METADATA, field, message: `${file}: "${field}" ${why}; VT Code's skill listing rejects this plugin.json and skips the plugin.` });
  };
  for (const field of ['author', 'when_to_use', 'when_not_to_use']) {
    const value = raw[field];
    if (value !== undefined && value !== null && typeof value !== 'string') metadata(field, 'must be a string or null');
  }
  const tools = raw.allowed_tools;
  if (tools !== undefined && tools !== null && !(Array.isArray(tools) && tools.every((t) => typeof t === 'string'))) metadata('allowed_tools', 'must be an array of strings or null');
  // A missing thread_safe defaults to false there, but null is not a boolean.
  if (raw.thread_safe !== undefined && typeof raw.thread_safe !== 'boolean') metadata('thread_safe', 'must be a boolean when present');
  return warnings;
}

/** A warning when `name` is outside VT Code's documented rule, else undefined. */
export function vtcodeNameWarning(name: string, file: string): ValidationWarning | undefined {
  if (VTCODE_NAME_PATTERN.test(name)) return undefined;
  return {
    code: WarningCode.VTCODE_NAME,
    field: 'name',
    message: `${file}: name ${JSON.stringify(name)} is outside VT Code's rule (lowercase letters, digits and hyphens, at most 64 characters). skillplug accepts it; VT Code may not. Rename it, e.g. ${JSON.stringify(suggestName(name))}.`,
  };
}

function suggestName(name: string): string {
  const suggestion = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64);
  return suggestion || 'my-plugin';
}

/**
 * Library file names VT Code finds for a plugin name on `platform`: those both its loader
 * (native_plugin.rs: `lib<name>.<ext>`, then variants) and its listing (skills/loader.rs) accept.
 */
export function vtcodeLibraryNames(name: string, platform: NodeJS.Platform = process.platform): string[] {
  if (platform === 'win32') return [`${name}.dll`];
  const ext = platform === 'darwin' ? 'dylib' : 'so';
  return [`lib${name}.${ext}`, `${name}.${ext}`];
}

/** Whether a JSON value is what VT Code accepts as a result's `output`: a JSON object. */
export function isVtcodeOutput(output: unknown): boolean {
  return isPlainObject(output);
}
