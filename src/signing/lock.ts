import { renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isPlainObject } from '../abi/codec.js';
import { readErrorCode, readSmallRegularFileSync } from '../safe-read.js';
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

// node:crypto is loaded on first hash: listing and most loads hash nothing.
const require = createRequire(import.meta.url);

/** sha256 of bytes, as hex. */
export function sha256(bytes: Uint8Array): string {
  return (require('node:crypto') as typeof import('node:crypto')).createHash('sha256').update(bytes).digest('hex');
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

/** Reads the workspace lock; undefined when there is none. Throws `E_INTEGRITY` when it is corrupt or not a regular file. */
export function readLock(workspace: string): LockFile | undefined {
  return readLockWithDigest(workspace)?.lock;
}

/** The workspace lock and the sha256 of its bytes (what `pinned_locks` records); undefined when there is none. */
export function readLockWithDigest(workspace: string): { lock: LockFile; sha256: string } | undefined {
  const file = lockPath(workspace);
  let bytes: Buffer;
  try {
    bytes = readSmallRegularFileSync(file, 16 * 1024 * 1024);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PluginError(ErrorCode.INTEGRITY, `Cannot read ${file} (${readErrorCode(err)}). Remove it, or recreate it with "skillplug lock".`, { path: file });
  }
  const text = bytes.toString('utf8');
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
  return { lock: raw as unknown as LockFile, sha256: sha256(bytes) };
}

/** The lock entry pinning a plugin dir, if any. */
export function lockEntryFor(lock: LockFile, workspace: string, pluginDir: string): LockEntry | undefined {
  const key = lockKey(pluginDir, workspace);
  return lock.plugins.find((p) => p.path === key);
}

/** Writes the workspace lock atomically; returns its path. */
export function writeLock(workspace: string, entries: LockEntry[]): string {
  return writeLockWithDigest(workspace, entries).file;
}

/** Writes the workspace lock atomically; returns its path and the sha256 of the bytes written. */
export function writeLockWithDigest(workspace: string, entries: LockEntry[]): { file: string; sha256: string } {
  const file = lockPath(workspace);
  const lock: LockFile = { lockfile_version: 1, plugins: [...entries].sort((a, b) => a.path.localeCompare(b.path)) };
  const bytes = Buffer.from(`${JSON.stringify(lock, null, 2)}\n`);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, bytes);
  renameSync(temp, file);
  return { file, sha256: sha256(bytes) };
}

/** Throws `E_INTEGRITY` unless the plugin's bytes are exactly what the lock pins. */
export function checkLock(lock: LockFile, workspace: string, pluginDir: string, name: string, manifestBytes: Uint8Array, libraryBytes: Uint8Array): void {
  const entry = lockEntryFor(lock, workspace, pluginDir);
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
