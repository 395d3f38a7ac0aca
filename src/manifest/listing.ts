import type { Dirent } from 'node:fs';
import path from 'node:path';

// A POSIX path component `.` or `..`: a path holding one is not in normal form.
const DOT_COMPONENT = /\/\.\.?(?:\/|$)/;

/**
 * `path.join(dir, name)` for a plain `name` (no separator, not `.` or `..`), without its
 * normalizing walk when `dir` is already an absolute path in normal form, as canonical dirs are.
 */
export function childPath(dir: string, name: string): string {
  if (dir === lastNormalDir) return `${dir}/${name}`;
  const normal = path.sep === '/' && dir.length > 1 && dir.charCodeAt(0) === 0x2f && !dir.endsWith('/') && !dir.includes('//') && !DOT_COMPONENT.test(dir);
  if (!normal) return path.join(dir, name);
  lastNormalDir = dir;
  return `${dir}/${name}`;
}

// The dir last found in normal form: a scan asks about one dir several times in a row (its plugin.json, its library).
let lastNormalDir: string | undefined;

// Any name outside ASCII may fold onto an ASCII one where case is ignored (e.g. the Kelvin sign onto "k").
const NON_ASCII = /[\u0080-\uffff]/;

// True when a file system that ignores case could open `name` (ASCII) as the listed name.
function mayFoldTo(listed: string, name: string): boolean {
  return (listed.length === name.length && listed.toLowerCase() === name.toLowerCase()) || NON_ASCII.test(listed);
}

/**
 * What one listing of a dir tells about the file `name` in it, so a scan can skip a syscall per
 * question: the entry listed under exactly that name; `'ask'` when only a name a case-insensitive
 * file system could take for `name` is listed (only a lookup can tell); undefined when nothing
 * listed can answer to `name`.
 */
export function listedEntry(entries: readonly Dirent[], name: string): Dirent | 'ask' | undefined {
  let ask = false;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Dirent;
    if (entry.name === name) return entry;
    ask ||= mayFoldTo(entry.name, name);
  }
  return ask ? 'ask' : undefined;
}
