import { isPlainObject } from '../abi/codec.js';
import { WarningCode, type ValidationWarning } from './vtcode.js';

/** Top-level plugin.json fields skillplug or VT Code reads. */
export const KNOWN_MANIFEST_FIELDS: readonly string[] = [
  'name',
  'description',
  'version',
  'abi_version',
  'author',
  'when_to_use',
  'when_not_to_use',
  'allowed_tools',
  'thread_safe',
  'permissions',
  'input_schema',
  'output_schema',
  '$schema',
];

/** Keys of plugin.json's `permissions` object. */
export const KNOWN_PERMISSION_KEYS: readonly string[] = ['network', 'unix_sockets', 'fs_read', 'fs_write'];

// Fields an author adds for their own tools on purpose: "x-…"/"x_…" and "_…" never warn.
const EXTENSION_FIELD = /^(x[-_]|_)/i;

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** The known name an unknown key most likely meant (camelCase, kebab-case or a small typo), if any. */
export function suggestField(key: string, known: readonly string[]): string | undefined {
  const normalized = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[-\s]/g, '_').toLowerCase();
  const exact = known.find((k) => k === normalized);
  if (exact) return exact;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(normalized, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  // At most a third of the name wrong: "fs_reads" → fs_read, but "colour" suggests nothing.
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function unknown(file: string, field: string, known: readonly string[], where: string): ValidationWarning {
  const suggestion = suggestField(field.slice(field.lastIndexOf('.') + 1), known);
  const fix = suggestion ? `did you mean "${suggestion}"?` : `known ${where} are ${known.filter((k) => !k.startsWith('$')).join(', ')}`;
  const message = `${file}: unknown field ${JSON.stringify(field)} is ignored; ${fix}`;
  return suggestion ? { code: WarningCode.UNKNOWN_FIELD, field, message, suggestion } : { code: WarningCode.UNKNOWN_FIELD, field, message };
}

/** Warnings for plugin.json fields and `permissions` keys nothing reads, each with the likely intended name. */
export function unknownFieldWarnings(raw: unknown, file: string): ValidationWarning[] {
  if (!isPlainObject(raw)) return [];
  const warnings: ValidationWarning[] = [];
  for (const key of Object.keys(raw)) {
    if (!KNOWN_MANIFEST_FIELDS.includes(key) && !EXTENSION_FIELD.test(key)) warnings.push(unknown(file, key, KNOWN_MANIFEST_FIELDS, 'fields'));
  }
  if (isPlainObject(raw.permissions)) {
    for (const key of Object.keys(raw.permissions)) {
      if (!KNOWN_PERMISSION_KEYS.includes(key)) warnings.push(unknown(file, `permissions.${key}`, KNOWN_PERMISSION_KEYS, 'permissions'));
    }
  }
  return warnings;
}
