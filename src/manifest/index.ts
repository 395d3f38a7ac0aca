import { lstatSync, statSync, type Dirent, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isPlainObject, nestedDeeperThan } from '../abi/codec.js';
import { readErrorCode, readListedRegularTextSync, readSmallRegularFileSync, type SmallFileError } from '../safe-read.js';
import { ErrorCode } from '../errors.js';
import { compileSchema, toolSchemaProblem, type FileIdentity } from './schema.js';
import type { ValidationIssue } from './issue.js';
import { childPath, listedEntry } from './listing.js';
import { diagnoseMissingLibrary } from './missing-library.js';
import { unknownFieldWarnings } from './unknown-fields.js';
import { WarningCode, vtcodeLibraryNames, vtcodeMetadataWarnings, vtcodeNameWarning, type ValidationWarning } from './vtcode.js';

export type { ValidationIssue };

// node:crypto is loaded on first use: most discoveries hash nothing, and loading it costs more than the scan.
const require = createRequire(import.meta.url);

/** The manifest file every plugin directory carries. */
export const MANIFEST_FILE = 'plugin.json';

/** plugin.json larger than this is refused unread: it is parsed on every discovery, untrusted ones too. */
export const MAX_MANIFEST_BYTES = 256 * 1024;

/** Deepest nesting of arrays/objects accepted in plugin.json (tool schemas are re-serialized for MCP clients). */
export const MAX_MANIFEST_DEPTH = 64;

/** Plugin names become file names, so they are restricted to a safe alphabet. */
export const PLUGIN_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/;

/**
 * What a plugin asks to be allowed to do. It gets, without asking the user, reads inside the
 * workspace and its own dir; everything else must be granted by the user, or it does not load.
 */
export interface PluginPermissions {
  /** Network access. Default false. */
  network?: boolean;
  /** `connect()` to Unix sockets in the dirs it can see. Default false. */
  unix_sockets?: boolean;
  /** Paths it reads; `${workspace}` expands to the workspace root. Default: the workspace. */
  fs_read?: string[];
  /** Paths it writes; `${workspace}` expands to the workspace root. Default: none. */
  fs_write?: string[];
}

/** plugin.json. Unknown fields are kept. */
export interface PluginManifest {
  /** Plugin name; the library file name derives from it. */
  name: string;
  /** One-line purpose. */
  description: string;
  /** Version string. */
  version: string;
  /** Author. */
  author?: string;
  /** When an agent should use this skill. */
  when_to_use?: string;
  /** When an agent should not use this skill. */
  when_not_to_use?: string;
  /** Tools the skill expects the agent to have. */
  allowed_tools?: string[];
  /** Sandbox permissions the plugin asks for. */
  permissions?: PluginPermissions;
  /** JSON Schema for `input`. */
  input_schema?: Record<string, unknown>;
  /** JSON Schema for `output`. */
  output_schema?: Record<string, unknown>;
  /** Any other field. */
  [key: string]: unknown;
}

/** plugin.json as read: the manifest when it is usable, and every problem found. */
export interface ManifestReading {
  /** The manifest when every required field is present and well-typed. */
  manifest?: PluginManifest;
  /** The parsed JSON, even when invalid. */
  raw?: unknown;
  /** The problems found. */
  issues: ValidationIssue[];
  /** plugin.json's file identity, when it is valid and holds tool schemas (keys the cache of their compiled form). */
  identity?: FileIdentity;
}

const REQUIRED_STRINGS = ['name', 'description', 'version'] as const;
const OPTIONAL_STRINGS = ['author', 'when_to_use', 'when_not_to_use'] as const;
const SCHEMA_FIELDS = ['input_schema', 'output_schema'] as const;

function bad(message: string, field?: string): ValidationIssue {
  return field === undefined ? { code: ErrorCode.INVALID_MANIFEST, message } : { code: ErrorCode.INVALID_MANIFEST, message, field };
}

/** Reads and checks `<dir>/plugin.json` without touching anything else. */
export async function readManifest(dir: string): Promise<ManifestReading> {
  return readManifestSync(dir);
}

/**
 * The synchronous core of {@link readManifest}. Discovery uses it: a few small synchronous reads per
 * plugin beat a thread-pool round trip per read by an order of magnitude. `listedAsRegularFile`: a
 * listing of `dir` made just before showed plugin.json as a regular file (see readListedRegularTextSync).
 */
export function readManifestSync(dir: string, listedAsRegularFile = false): ManifestReading {
  const file = childPath(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = listedAsRegularFile ? readListedRegularTextSync(file, MAX_MANIFEST_BYTES) : readSmallRegularFileSync(file, MAX_MANIFEST_BYTES).toString('utf8');
  } catch (err) {
    return { issues: [manifestReadIssue(err, file)] };
  }
  const reading = parseManifestText(text, file);
  // Only schemas are cached by it (a manifest without them has nothing to compile). The content
  // itself, not timestamps: two writes within one clock tick may leave the same stat facts.
  if (reading.manifest && (reading.manifest.input_schema !== undefined || reading.manifest.output_schema !== undefined)) {
    reading.identity = (require('node:crypto') as typeof import('node:crypto')).createHash('sha1').update(text).digest('base64');
  }
  return reading;
}

/**
 * plugin.json's bytes, or why they cannot be had: missing, not a regular file, over
 * MAX_MANIFEST_BYTES, unreadable. Never blocks, even on a FIFO planted as plugin.json.
 */
export function readManifestBytesSync(file: string): { bytes: Buffer } | { issue: ValidationIssue } {
  try {
    return { bytes: readSmallRegularFileSync(file, MAX_MANIFEST_BYTES) };
  } catch (err) {
    return { issue: manifestReadIssue(err, file) };
  }
}

// Why plugin.json could not be read, as the issue every reader of it reports.
function manifestReadIssue(err: unknown, file: string): ValidationIssue {
  const { code, size } = err as SmallFileError;
  if (code === 'ENOTREG') return bad(`${file} is not a regular file. Make plugin.json a JSON file.`);
  if (code === 'EFBIG') return bad(`${file} is ${size ?? 'over'} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit. Keep plugin.json small.`);
  const why = code === 'ENOENT' ? 'is missing' : `cannot be read (${readErrorCode(err)})`;
  return bad(`${file} ${why}. Every plugin directory needs a plugin.json with name, description and version.`);
}

/** Checks plugin.json text (already read); `file` names it in messages. */
export function parseManifestText(text: string, file: string): ManifestReading {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { issues: [bad(`${file} is not valid JSON: ${(err as Error).message}. Fix the JSON syntax.`)] };
  }
  if (!isPlainObject(raw)) {
    return { raw, issues: [bad(`${file} must hold a JSON object, not ${Array.isArray(raw) ? 'an array' : typeof raw}.`)] };
  }
  if (nestedDeeperThan(raw, MAX_MANIFEST_DEPTH)) {
    // Nothing of it is kept: even its strings may be what overflows a consumer.
    return { issues: [bad(`${file} nests arrays/objects more than ${MAX_MANIFEST_DEPTH} levels deep. Flatten it (tool schemas rarely need more than a few levels).`)] };
  }
  const issues: ValidationIssue[] = [];
  // Indexed loops: this runs once per plugin of a scan, mostly before V8 optimizes it, where for-of allocates.
  for (let i = 0; i < REQUIRED_STRINGS.length; i++) {
    const field = REQUIRED_STRINGS[i] as (typeof REQUIRED_STRINGS)[number];
    const value = raw[field];
    if (value === undefined) issues.push(bad(`${file} lacks the required field "${field}" (a string).`, field));
    else if (typeof value !== 'string') issues.push(bad(`${file}: "${field}" must be a string, not ${typeof value}.`, field));
    else if (field !== 'description' && value.trim() === '') issues.push(bad(`${file}: "${field}" must not be empty.`, field));
  }
  if (typeof raw.name === 'string' && raw.name !== '' && !PLUGIN_NAME_PATTERN.test(raw.name)) {
    issues.push(
      bad(`${file}: name ${JSON.stringify(raw.name)} is not a valid plugin name: use letters, digits, "_", ".", "+" and "-", at most 128 characters, not starting with "." or "-".`, 'name'),
    );
  }
  for (let i = 0; i < OPTIONAL_STRINGS.length; i++) {
    const field = OPTIONAL_STRINGS[i] as (typeof OPTIONAL_STRINGS)[number];
    const value = raw[field];
    if (value !== undefined && value !== null && typeof value !== 'string') {
      issues.push(bad(`${file}: "${field}" must be a string when present.`, field));
    }
  }
  if (raw.allowed_tools !== undefined && raw.allowed_tools !== null) {
    if (!Array.isArray(raw.allowed_tools) || !raw.allowed_tools.every((t) => typeof t === 'string')) {
      issues.push(bad(`${file}: "allowed_tools" must be an array of strings.`, 'allowed_tools'));
    }
  }
  checkPermissions(raw.permissions, file, issues);
  for (let i = 0; i < SCHEMA_FIELDS.length; i++) {
    const field = SCHEMA_FIELDS[i] as (typeof SCHEMA_FIELDS)[number];
    const value = raw[field];
    if (value === undefined) continue;
    if (!isPlainObject(value)) {
      issues.push(bad(`${file}: "${field}" must be a JSON Schema object.`, field));
      continue;
    }
    // Compiled later, and only for plugins that may load (see SchemaVerdicts): an untrusted repo's schema costs no compile.
    const problem = toolSchemaProblem(value);
    if (problem) issues.push(bad(`${file}: "${field}" cannot be an MCP tool schema: ${problem}. Fix plugin.json.`, field));
  }
  return issues.length === 0 ? { manifest: raw as PluginManifest, raw, issues } : { raw, issues };
}

// Adds to `issues` what is wrong with plugin.json's "permissions".
function checkPermissions(value: unknown, file: string, issues: ValidationIssue[]): void {
  if (value === undefined || value === null) return;
  const field = 'permissions';
  if (!isPlainObject(value)) {
    issues.push({ code: ErrorCode.INVALID_MANIFEST, message: `${file}: "permissions" must be an object.`, field });
    return;
  }
  for (const key of ['network', 'unix_sockets']) {
    if (value[key] !== undefined && typeof value[key] !== 'boolean') {
      issues.push({ code: ErrorCode.INVALID_MANIFEST, message: `${file}: "permissions.${key}" must be a boolean.`, field: `permissions.${key}` });
    }
  }
  for (const key of ['fs_read', 'fs_write']) {
    const list = value[key];
    if (list === undefined) continue;
    if (!Array.isArray(list) || !list.every((p) => typeof p === 'string' && p.length > 0)) {
      issues.push({ code: ErrorCode.INVALID_MANIFEST, message: `${file}: "permissions.${key}" must be an array of non-empty path strings.`, field: `permissions.${key}` });
    }
  }
}

// A character no crate name holds: Cargo writes it as "_" in the library's name.
const NOT_IN_CRATE_NAMES = /[^A-Za-z0-9_]/;

/** Library file names tried for a plugin name, in order; the first is the canonical one. */
export function libraryCandidates(name: string, platform: NodeJS.Platform = process.platform): string[] {
  const files = libraryFiles(name, platform);
  // Cargo names a cdylib after its crate, with "-" (and any other character a crate name cannot hold) as "_".
  // Two distinct names of one length never yield the same file name, so no candidate repeats.
  if (NOT_IN_CRATE_NAMES.test(name)) files.push(...libraryFiles(name.replace(/[^A-Za-z0-9_]/g, '_'), platform));
  return files;
}

// The two file names a library of one name may have on `platform`, the canonical one first.
function libraryFiles(name: string, platform: NodeJS.Platform): string[] {
  return [libraryFilename(name, platform), platform === 'win32' ? `lib${name}.dll` : `${name}.${sharedLibraryExtension(platform)}`];
}

function sharedLibraryExtension(platform: NodeJS.Platform): string {
  return platform === 'darwin' ? 'dylib' : 'so';
}

/** The canonical library file name for a plugin name on this platform. */
export function libraryFilename(name: string, platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? `${name}.dll` : `lib${name}.${sharedLibraryExtension(platform)}`;
}

/**
 * The library found in a plugin directory, or why none was. `plain`: a regular file (no symlink)
 * right in the dir, so its path is canonical when the dir's is.
 */
export type LibraryLookup = { found: true; path: string; plain: boolean } | { found: false; issue: ValidationIssue };

/** Where `cargo build --release` leaves a library, so a Cargo project dir is itself a plugin dir. */
const CARGO_RELEASE_DIR = path.join('target', 'release');

/** Finds the plugin's library in `dir` (no loading): the candidate names, then Cargo's release dir. */
export async function findLibrary(dir: string, name: string): Promise<LibraryLookup> {
  return findLibrarySync(dir, name);
}

/**
 * The synchronous core of {@link findLibrary}. `entries`, a listing of `dir` made just before, spares
 * the lookup of each name it answers for (discovery lists every plugin dir anyway).
 */
export function findLibrarySync(dir: string, name: string, entries?: readonly Dirent[]): LibraryLookup {
  // The usual answer, a regular file listed under the canonical name, without the list of every name tried.
  const canonicalFile = libraryFilename(name);
  const canonical = entries === undefined ? undefined : listedEntry(entries, canonicalFile);
  if (canonical !== undefined && canonical !== 'ask' && canonical.isFile()) return { found: true, path: childPath(dir, canonicalFile), plain: true };
  const inDir = libraryCandidates(name);
  for (let i = 0; i < inDir.length; i++) {
    const file = inDir[i] as string;
    const listed = entries === undefined ? 'ask' : listedEntry(entries, file);
    if (listed === undefined) continue;
    const candidate = childPath(dir, file);
    // A regular file listed under this very name is what lstat would find; anything else is looked up.
    const probe: LibraryLookup | undefined = listed !== 'ask' && listed.isFile() ? { found: true, path: candidate, plain: true } : probeLibrary(candidate, true);
    if (probe) return probe;
  }
  const cargoBuilt = libraryCandidates(name.replace(/[^A-Za-z0-9_]/g, '_')).map((f) => path.join(CARGO_RELEASE_DIR, f));
  for (const file of cargoBuilt) {
    const probe = probeLibrary(path.join(dir, file), false);
    if (probe) return probe;
  }
  const tried = [...inDir, ...cargoBuilt];
  const diagnosis = diagnoseMissingLibrary(dir, tried[0] as string);
  const fix = diagnosis ? `It looks like ${diagnosis.hint}` : `Build the plugin and copy its library there as ${tried[0]}.`;
  return {
    found: false,
    issue: {
      code: ErrorCode.INVALID_STRUCTURE,
      message: `No library for plugin "${name}" in ${dir}: tried ${tried.join(', ')}. ${fix}`,
      data: { tried, reason: diagnosis?.reason ?? null, found: diagnosis?.found ?? [] },
    },
  };
}

/** The lookup's answer for one candidate path, or undefined when nothing is there. */
function probeLibrary(candidate: string, directlyInDir: boolean): LibraryLookup | undefined {
  let info: Stats | undefined;
  try {
    info = lstatSync(candidate, { throwIfNoEntry: false });
  } catch {
    info = undefined; // e.g. ENOTDIR when target/ is a file: nothing usable there either
  }
  if (!info) return undefined;
  const link = info.isSymbolicLink();
  if (link) {
    try {
      info = statSync(candidate, { throwIfNoEntry: false });
    } catch {
      info = undefined; // a symlink loop
    }
    if (!info) return { found: false, issue: { code: ErrorCode.INVALID_STRUCTURE, message: `${candidate} is a dangling symlink. Point it at the built library or replace it with the file.` } };
  }
  if (!info.isFile()) {
    return { found: false, issue: { code: ErrorCode.INVALID_STRUCTURE, message: `${candidate} is not a regular file. Put the built library there.` } };
  }
  return { found: true, path: candidate, plain: directlyInDir && !link };
}

/** Libraries larger than this are not read for their symbols (validate holds the file in memory). */
const MAX_SYMBOL_CHECK_BYTES = 512 * 1024 * 1024;

/** What {@link validatePlugin} found: problems (the plugin is invalid) and warnings (it is valid). */
export interface PluginValidation {
  /** Problems that stop skillplug from loading the plugin. */
  errors: ValidationIssue[];
  /** Places where VT Code would treat the plugin differently, and checks that could not be made. */
  warnings: ValidationWarning[];
}

/**
 * Checks a plugin directory from its files alone (never loads or runs the library): plugin.json,
 * the library's presence and its exported symbols (ELF), and where VT Code would differ.
 */
export async function validatePlugin(dir: string): Promise<PluginValidation> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) return { errors: [{ code: ErrorCode.INVALID_STRUCTURE, message: `${dir} is not a directory. A plugin is a directory holding plugin.json and the library.` }], warnings: [] };
  } catch {
    return { errors: [{ code: ErrorCode.NOT_FOUND, message: `${dir} does not exist. Pass the path of a plugin directory.` }], warnings: [] };
  }
  const reading = await readManifest(dir);
  const errors = [...reading.issues];
  const file = path.join(dir, MANIFEST_FILE);
  const warnings = [...vtcodeMetadataWarnings(reading.raw, file), ...unknownFieldWarnings(reading.raw, file)];
  // Asked for by name, so the schemas are compiled too (discovery compiles only what may load).
  for (const field of ['input_schema', 'output_schema'] as const) {
    const value = isPlainObject(reading.raw) ? reading.raw[field] : undefined;
    const compiled = !isPlainObject(value) || errors.some((i) => i.field === field) ? undefined : compileSchema(value);
    if (compiled && !compiled.ok) errors.push(bad(`${file}: "${field}" is not a valid JSON Schema: ${compiled.problem}.`, field));
  }
  const name = isPlainObject(reading.raw) && typeof reading.raw.name === 'string' ? reading.raw.name : undefined;
  if (name !== undefined && PLUGIN_NAME_PATTERN.test(name)) {
    const nameWarning = vtcodeNameWarning(name, file);
    if (nameWarning) warnings.push(nameWarning);
    const lookup = await findLibrary(dir, name);
    if (!lookup.found) errors.push(lookup.issue);
    else {
      if (!vtcodeLibraryNames(name).includes(path.relative(dir, lookup.path))) {
        warnings.push({
          code: WarningCode.VTCODE_LIBRARY_NAME,
          message: `The library ${lookup.path} is found only under a name skillplug adds; VT Code looks for ${vtcodeLibraryNames(name).join(' or ')} in ${dir}. Run "skillplug build", which lays it out as ${vtcodeLibraryNames(name)[0]}, or copy it there.`,
        });
      }
      const size = (await stat(lookup.path)).size;
      if (size > MAX_SYMBOL_CHECK_BYTES) {
        warnings.push({ code: WarningCode.SYMBOLS_NOT_CHECKED, message: `${lookup.path} is ${size} bytes, over the ${MAX_SYMBOL_CHECK_BYTES}-byte limit for reading its symbols; they were not checked. Loading it checks them.` });
      } else {
        // Imported here: the ELF reader is only for validate, never for discovery.
        const { checkLibrarySymbols } = await import('./library-symbols.js');
        const symbols = checkLibrarySymbols(lookup.path, await readFile(lookup.path));
        errors.push(...symbols.errors);
        warnings.push(...symbols.warnings);
      }
    }
  } else if (name === undefined) {
    errors.push({ code: ErrorCode.INVALID_STRUCTURE, message: `Cannot look for the library in ${dir}: plugin.json gives no usable "name" to derive its file name from.` });
  }
  return { errors, warnings };
}

/**
 * Checks a plugin directory from its files alone (never loads the library): every problem found.
 * An empty array means the plugin is structurally valid. {@link validatePlugin} also gives warnings.
 */
export async function validatePluginStructure(dir: string): Promise<ValidationIssue[]> {
  return (await validatePlugin(dir)).errors;
}
