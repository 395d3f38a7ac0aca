import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isPlainObject } from '../abi/codec.js';
import { ErrorCode, PluginError } from '../errors.js';

/** The lock file name, at the workspace root. */
export const LOCK_FILE = 'skillplug.lock.json';

/** One pinned plugin. */
export interface LockEntry {
  name: string;
  version: string;
  /** The plugin dir: relative to the workspace when inside it (so the lock survives a re-clone), else absolute. */
  path: string;
  manifest_sha256: string;
  library_sha256: string;
}

/** The lock file's content. */
export interface LockFile {
  lockfile_version: 1;
  plugins: LockEntry[];
}

/** sha256 of bytes, as hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The lock file path for a workspace. */
export function lockPath(workspace: string): string {
  return path.join(workspace, LOCK_FILE);
}

/** How a plugin dir is written in the lock. */
export function lockKey(pluginDir: string, workspace: string): string {
  const rel = path.relative(workspace, pluginDir);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : pluginDir;
}

/** Reads the workspace lock; undefined when there is none. Throws `E_INTEGRITY` when it is corrupt. */
export function readLock(workspace: string): LockFile | undefined {
  const file = lockPath(workspace);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PluginError(ErrorCode.INTEGRITY, `Cannot read ${file} (${(err as NodeJS.ErrnoException).code}).`, { path: file });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  const valid =
    isPlainObject(raw) &&
    raw.lockfile_version === 1 &&
    Array.isArray(raw.plugins) &&
    raw.plugins.every((p) => isPlainObject(p) && ['name', 'version', 'path', 'manifest_sha256', 'library_sha256'].every((k) => typeof p[k] === 'string'));
  if (!valid) throw new PluginError(ErrorCode.INTEGRITY, `${file} is corrupt. Recreate it with "skillplug lock".`, { path: file });
  return raw as unknown as LockFile;
}

/** Writes the workspace lock atomically. */
export function writeLock(workspace: string, entries: LockEntry[]): string {
  const file = lockPath(workspace);
  const lock: LockFile = { lockfile_version: 1, plugins: [...entries].sort((a, b) => a.path.localeCompare(b.path)) };
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(lock, null, 2)}\n`);
  renameSync(temp, file);
  return file;
}

/** Throws `E_INTEGRITY` unless the plugin's bytes are exactly what the lock pins. */
export function checkLock(lock: LockFile, workspace: string, pluginDir: string, name: string, manifestBytes: Uint8Array, libraryBytes: Uint8Array): void {
  const key = lockKey(pluginDir, workspace);
  const entry = lock.plugins.find((p) => p.path === key);
  const file = lockPath(workspace);
  if (!entry) {
    throw new PluginError(
      ErrorCode.INTEGRITY,
      `Plugin "${name}" (${pluginDir}) is not in ${file}, so it is refused. If you trust it, run "skillplug lock" to pin it.`,
      { plugin: name, path: pluginDir, data: { reason: 'not-locked' } },
    );
  }
  const changed = [
    ...(sha256(manifestBytes) !== entry.manifest_sha256 ? ['plugin.json'] : []),
    ...(sha256(libraryBytes) !== entry.library_sha256 ? ['library'] : []),
  ];
  if (changed.length > 0) {
    throw new PluginError(
      ErrorCode.INTEGRITY,
      `Plugin "${name}" (${pluginDir}) differs from ${file}: its ${changed.join(' and ')} changed since it was locked. If the change is yours, run "skillplug lock" again.`,
      { plugin: name, path: pluginDir, data: { reason: 'changed', changed } },
    );
  }
}
