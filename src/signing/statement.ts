// The signed statement: one minisign-signed file binding a plugin's name, version and every file's sha256.
import { type Dirent, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isPlainObject } from '../abi/codec.js';
import { readErrorCode, readSmallRegularFileSync } from '../safe-read.js';
import { ErrorCode, PluginError } from '../errors.js';
import { SIGNATURE_SUFFIX, STATEMENT_FILE } from './files.js';
import { sha256 } from './lock.js';
import { verifyBytes, type MinisignPublicKey } from './minisign.js';

export { STATEMENT_FILE };

/** The statement's `type`, so it cannot be confused with another signed JSON document. */
export const STATEMENT_TYPE = 'skillplug-plugin-statement/v1';

/** A plugin dir with more files than this cannot be bound (a build tree, not a plugin). */
export const MAX_STATEMENT_FILES = 4096;

/** A file larger than this is not hashed: 1 GiB. */
const MAX_BOUND_FILE_BYTES = 1024 * 1024 * 1024;

/** What the statement says. */
export interface PluginStatement {
  type: typeof STATEMENT_TYPE;
  name: string;
  version: string;
  /** sha256 (hex) by path relative to the plugin dir, `/`-separated, sorted. */
  files: Record<string, string>;
}

/**
 * "Every file" of a plugin: each regular file under its dir, at any depth, dotfiles included,
 * except the statement itself and `*.minisig` files (signatures cannot sign themselves).
 * Anything else (symlink, FIFO, socket, device) is a problem: a bound plugin holds plain files only.
 */
export function pluginFileList(dir: string): { files: string[]; problems: string[] } {
  const files: string[] = [];
  const problems: string[] = [];
  const walk = (rel: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch (err) {
      problems.push(`${rel || '.'} cannot be listed (${readErrorCode(err)})`);
      return;
    }
    for (const entry of entries) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else if (!entry.isFile()) problems.push(`${child} is not a regular file`);
      else if (child !== STATEMENT_FILE && !child.endsWith(SIGNATURE_SUFFIX)) files.push(child);
      if (files.length + problems.length > MAX_STATEMENT_FILES) throw new PluginError(ErrorCode.INVALID_STRUCTURE, `${dir} holds more than ${MAX_STATEMENT_FILES} files; a plugin dir to sign holds plugin.json, the library and its data only (not a build tree).`, { path: dir });
    }
  };
  walk('');
  files.sort();
  return { files, problems };
}

function readBoundFile(file: string): Buffer {
  return readSmallRegularFileSync(file, MAX_BOUND_FILE_BYTES);
}

/** Builds the statement text for a plugin dir; refuses (`E_INVALID_STRUCTURE`) a dir holding anything but plain files. */
export function buildStatement(dir: string, name: string, version: string): string {
  const { files, problems } = pluginFileList(dir);
  if (problems.length > 0) {
    throw new PluginError(ErrorCode.INVALID_STRUCTURE, `Cannot bind ${dir}: ${problems.join('; ')}. Replace links and special files with plain files.`, { path: dir, data: { problems } });
  }
  const statement: PluginStatement = { type: STATEMENT_TYPE, name, version, files: Object.fromEntries(files.map((f) => [f, sha256(readBoundFile(path.join(dir, f)))])) };
  return `${JSON.stringify(statement, null, 2)}\n`;
}

/** Writes `<dir>/skillplug-statement.json` (unsigned: sign it with `skillplug sign` or `minisign -Sm`); returns its path. */
export function writeStatement(dir: string, name: string, version: string): string {
  const file = path.join(dir, STATEMENT_FILE);
  writeFileSync(file, buildStatement(dir, name, version));
  return file;
}

function mismatch(plugin: string, dir: string, problem: string, data: Record<string, unknown>): PluginError {
  return new PluginError(
    ErrorCode.SIGNATURE,
    `Plugin "${plugin}" (${dir}) does not match its signed ${STATEMENT_FILE}: ${problem}. Files from different releases were mixed, or a file changed after signing; reinstall the release, or sign it again with "skillplug sign".`,
    { plugin, path: dir, data: { reason: 'statement-mismatch', ...data } },
  );
}

function parseStatement(bytes: Buffer, plugin: string, file: string): PluginStatement {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    raw = undefined;
  }
  const valid =
    isPlainObject(raw) &&
    raw.type === STATEMENT_TYPE &&
    typeof raw.name === 'string' &&
    typeof raw.version === 'string' &&
    isPlainObject(raw.files) &&
    Object.values(raw.files).every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h));
  if (!valid) throw new PluginError(ErrorCode.SIGNATURE, `${file} is signed but is not a ${STATEMENT_TYPE} statement. Sign the plugin again with "skillplug sign".`, { plugin, path: file, data: { reason: 'bad-statement' } });
  return raw as unknown as PluginStatement;
}

/** How a plugin's statement stands. */
export type StatementStatus =
  | { state: 'absent' }
  | { state: 'unsigned' }
  | { state: 'unknown-key'; keyId: string }
  | { state: 'bound'; keyId: string; statement: PluginStatement };

/** The plugin being checked: its name and version from plugin.json, and the bytes already read (these are the ones loaded). */
export interface BoundPlugin {
  dir: string;
  name: string;
  version: string;
  /** Bytes by path relative to dir (plugin.json, the library): compared as they are, not re-read. */
  known: ReadonlyMap<string, Uint8Array>;
}

/**
 * Verifies the plugin's statement: its signature by a trusted key, then that its name and version
 * are plugin.json's and that the plugin holds exactly the listed files with the listed hashes.
 * Throws `E_SIGNATURE` when a signature is present and bad, or when the files do not match.
 */
export function checkStatement(plugin: BoundPlugin, keys: readonly MinisignPublicKey[]): StatementStatus {
  const file = path.join(plugin.dir, STATEMENT_FILE);
  const read = (f: string): Buffer | undefined => {
    try {
      return readSmallRegularFileSync(f);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new PluginError(ErrorCode.SIGNATURE, `Plugin "${plugin.name}": ${f} cannot be read (${readErrorCode(err)}). Make it the regular file "skillplug sign" writes.`, { plugin: plugin.name, path: f, data: { reason: 'unreadable' } });
    }
  };
  const bytes = read(file);
  const signature = read(`${file}${SIGNATURE_SUFFIX}`);
  if (!bytes) {
    if (signature) throw new PluginError(ErrorCode.SIGNATURE, `Plugin "${plugin.name}" has ${STATEMENT_FILE}${SIGNATURE_SUFFIX} but no ${STATEMENT_FILE}. Sign it again with "skillplug sign".`, { plugin: plugin.name, path: file, data: { reason: 'statement-missing' } });
    return { state: 'absent' };
  }
  if (!signature) return { state: 'unsigned' };
  let keyId: string;
  try {
    keyId = verifyBytes(bytes, signature.toString('utf8'), keys).keyId;
  } catch (err) {
    const e = err as PluginError;
    if (e.data?.reason === 'unknown-key') return { state: 'unknown-key', keyId: String(e.data.keyId) };
    throw new PluginError(ErrorCode.SIGNATURE, `Plugin "${plugin.name}" (${plugin.dir}): ${STATEMENT_FILE}${SIGNATURE_SUFFIX} does not verify: ${e.message}`, { plugin: plugin.name, path: file, data: { ...(e.data ?? {}), file: STATEMENT_FILE } });
  }
  const statement = parseStatement(bytes, plugin.name, file);
  if (statement.name !== plugin.name || statement.version !== plugin.version) {
    throw mismatch(plugin.name, plugin.dir, `it was signed for ${JSON.stringify(statement.name)} ${JSON.stringify(statement.version)}, but plugin.json says ${JSON.stringify(plugin.name)} ${JSON.stringify(plugin.version)}`, {
      signed: { name: statement.name, version: statement.version },
    });
  }
  const { files, problems } = pluginFileList(plugin.dir);
  if (problems.length > 0) throw mismatch(plugin.name, plugin.dir, problems.join('; '), { problems });
  const listed = Object.keys(statement.files);
  const unlisted = files.filter((f) => !(f in statement.files));
  const missing = listed.filter((f) => !files.includes(f));
  const changed = files.filter((f) => {
    const expected = statement.files[f];
    if (expected === undefined) return false;
    const known = plugin.known.get(f);
    return sha256(known ?? readBoundFile(path.join(plugin.dir, f))) !== expected;
  });
  for (const known of plugin.known.keys()) if (!(known in statement.files)) unlisted.includes(known) || unlisted.push(known);
  if (unlisted.length + missing.length + changed.length > 0) {
    const parts = [
      ...(changed.length ? [`changed: ${changed.join(', ')}`] : []),
      ...(missing.length ? [`missing: ${missing.join(', ')}`] : []),
      ...(unlisted.length ? [`not in the statement: ${unlisted.join(', ')}`] : []),
    ];
    throw mismatch(plugin.name, plugin.dir, parts.join('; '), { changed, missing, unlisted });
  }
  return { state: 'bound', keyId, statement };
}
