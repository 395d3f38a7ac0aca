import { existsSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE } from '../manifest/index.js';
import { listedEntry } from '../manifest/listing.js';

/** The suffix of signature files, beside each signed file. */
export const SIGNATURE_SUFFIX = '.minisig';

/** The signed statement's file name, at the top of the plugin dir; its signature is `<STATEMENT_FILE>.minisig`. */
export const STATEMENT_FILE = 'skillplug-statement.json';

// The signature files a plugin may carry at the top of its dir; the library's own sits beside the library.
const IN_DIR_SIGNATURE_FILES = [`${MANIFEST_FILE}${SIGNATURE_SUFFIX}`, STATEMENT_FILE, `${STATEMENT_FILE}${SIGNATURE_SUFFIX}`];

/**
 * True when plugin.json (at the top of `dir`) or the library has a signature beside it, or the plugin
 * carries a statement. With `entries`, a listing of `dir` made just before (whole, or its
 * {@link signatureLikeEntries}), only a name the listing cannot rule out is looked up.
 */
export function hasSignatures(dir: string, libraryPath: string, entries?: readonly Dirent[]): boolean {
  if (entries) return hasListedSignatures(dir, entries, libraryPath);
  return IN_DIR_SIGNATURE_FILES.some((name) => existsSync(path.join(dir, name))) || existsSync(`${libraryPath}${SIGNATURE_SUFFIX}`);
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// Every name above, in any case, matches; so does any name outside ASCII (case folding may map it onto one).
const SIGNATURE_LIKE = new RegExp(`${escapeRegExp(SIGNATURE_SUFFIX)}$|^${escapeRegExp(STATEMENT_FILE)}$|[\\u0080-\\uffff]`, 'i');

// Frozen, as it is shared by every listing that holds nothing signature-like.
const NONE: readonly Dirent[] = Object.freeze([]);

/**
 * The entries of a plugin dir's listing that could be a signature or statement file, in any case: all
 * hasSignatures needs of the listing, so a scan can keep these instead of every entry of every plugin dir.
 */
export function signatureLikeEntries(entries: readonly Dirent[]): readonly Dirent[] {
  let picked: Dirent[] | undefined;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Dirent;
    if (SIGNATURE_LIKE.test(entry.name)) (picked ??= []).push(entry);
  }
  return picked ?? NONE;
}

// hasSignatures answered from a listing of the plugin's dir.
function hasListedSignatures(dir: string, entries: readonly Dirent[], libraryPath: string): boolean {
  const libraryDirLength = libraryPath.lastIndexOf(path.sep);
  const libraryInDir = libraryDirLength === dir.length && libraryPath.startsWith(dir);
  // The usual dir holds nothing that could be one: no name needs a closer look.
  if (!entries.some((entry) => SIGNATURE_LIKE.test(entry.name))) return !libraryInDir && existsSync(`${libraryPath}${SIGNATURE_SUFFIX}`);
  // A regular file listed under the name exists; a link, or a name that differs only in case, is looked up.
  const inDir = (name: string): boolean => {
    const listed = listedEntry(entries, name);
    return listed !== undefined && ((listed !== 'ask' && listed.isFile()) || existsSync(path.join(dir, name)));
  };
  return (
    IN_DIR_SIGNATURE_FILES.some(inDir) ||
    (libraryInDir ? inDir(`${libraryPath.slice(libraryDirLength + 1)}${SIGNATURE_SUFFIX}`) : existsSync(`${libraryPath}${SIGNATURE_SUFFIX}`))
  );
}
