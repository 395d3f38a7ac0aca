// `skillplug install DIR` and `skillplug uninstall NAME`: a built plugin into (and out of) a user plugin dir.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants as fsConstants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, realpathSync, renameSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readConfigFile, userConfigPath, writeConfigFile } from '../config/index.js';
import { ErrorCode, PluginError, isPluginError } from '../errors.js';
import { MANIFEST_FILE, findLibrarySync, readManifestSync, validatePlugin, type PluginManifest } from '../manifest/index.js';
import { checkLock, lockEntryFor, lockKey, readLockWithDigest, sha256, writeLockWithDigest, type LockEntry } from '../signing/lock.js';
import { checkPluginTrust, loadTrustedKeys } from '../signing/plugin-signatures.js';
import { compareVersions } from '../signing/policy.js';
import type { PluginLoader } from '../loader/index.js';
import { loaderFromFlags, type LoaderFlags } from './commands.js';
import { ExitCode, writeErr, writeOut } from './output.js';
import { permissionLines, permissionsJson } from './permission-commands.js';

/** A plugin to install holds at most this many files and dirs… */
const MAX_INSTALL_ENTRIES = 4096;
/** …and at most this many bytes in all (they are held in memory: the bytes checked are the bytes written). */
const MAX_INSTALL_BYTES = 256 * 1024 * 1024;

interface SourceFile {
  rel: string;
  bytes: Buffer;
  executable: boolean;
}

/** The user plugin dirs the loader scans (with $VTCODE_HOME and the rest applied), in precedence order; the first is where `install` puts plugins by default. */
function userDirs(loader: PluginLoader): string[] {
  return loader.trustedDirEntries().filter((d) => d.kind === 'user').map((d) => d.path);
}

function refuse(code: ErrorCode, message: string, dir: string, data: Record<string, unknown>, plugin?: string): PluginError {
  return new PluginError(code, message, { path: dir, data, ...(plugin ? { plugin } : {}) });
}

// Opened without following links and without blocking, checked with fstat: a file swapped for a link or FIFO after the walk is refused too.
function readPlainFile(file: string, expected: Stats): Buffer {
  const fd = openSync(file, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0) | (fsConstants.O_NONBLOCK ?? 0));
  try {
    const info = fstatSync(fd);
    if (!info.isFile() || info.ino !== expected.ino || info.size !== expected.size) throw new Error('it changed while being read');
    const bytes = Buffer.alloc(info.size);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, done);
      if (n === 0) throw new Error('it shrank while being read');
      done += n;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** Every file under a plugin dir, read into memory; refuses links, special files and oversize trees. */
function readSourceTree(dir: string): { files: SourceFile[]; dirs: string[] } {
  const files: SourceFile[] = [];
  const dirs: string[] = [];
  let entries = 0;
  let total = 0;
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const child = path.join(dir, childRel);
      const info = lstatSync(child);
      if (++entries > MAX_INSTALL_ENTRIES) {
        throw refuse(ErrorCode.INVALID_STRUCTURE, `${dir} holds more than ${MAX_INSTALL_ENTRIES} files and dirs; install a built plugin dir (plugin.json, the library and its data, e.g. the output of "skillplug build --out DIR"), not a build tree.`, dir, { reason: 'too-many-files', limit: MAX_INSTALL_ENTRIES });
      }
      if (info.isSymbolicLink()) {
        throw refuse(ErrorCode.INVALID_STRUCTURE, `${child} is a symbolic link; an installed plugin holds plain files only, so nothing it points at is copied. Replace the link with the file itself.`, dir, { reason: 'symlink', file: childRel });
      }
      if (info.isDirectory()) {
        dirs.push(childRel);
        walk(childRel);
        continue;
      }
      if (!info.isFile()) {
        throw refuse(ErrorCode.INVALID_STRUCTURE, `${child} is not a regular file (a FIFO, socket or device); an installed plugin holds plain files only. Remove it.`, dir, { reason: 'special-file', file: childRel });
      }
      total += info.size;
      if (total > MAX_INSTALL_BYTES) {
        throw refuse(ErrorCode.INVALID_STRUCTURE, `${dir} holds more than ${MAX_INSTALL_BYTES / (1024 * 1024)} MiB of files; install a built plugin dir, not a build tree.`, dir, { reason: 'too-large', limit_bytes: MAX_INSTALL_BYTES });
      }
      let bytes: Buffer;
      try {
        bytes = readPlainFile(child, info);
      } catch (err) {
        throw refuse(ErrorCode.INVALID_STRUCTURE, `Cannot read ${child} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); nothing was installed.`, dir, { reason: 'unreadable', file: childRel });
      }
      files.push({ rel: childRel, bytes, executable: (info.mode & 0o111) !== 0 });
    }
  };
  walk('');
  return { files, dirs };
}

/** True when `dir` holds exactly these files (same paths, same bytes) and nothing else. */
function sameFiles(dir: string, files: readonly SourceFile[]): boolean {
  try {
    const tree = readSourceTree(dir);
    if (tree.files.length !== files.length) return false;
    return tree.files.every((f, i) => f.rel === files[i]?.rel && f.bytes.equals(files[i].bytes));
  } catch {
    return false;
  }
}

function lstatOrUndefined(file: string): Stats | undefined {
  try {
    return lstatSync(file);
  } catch {
    return undefined;
  }
}

// Trusted dirs are stored canonical; a --to given through a symlink must compare equal to them.
function canonicalIfExists(dir: string): string {
  try {
    return realpathSync.native(dir);
  } catch {
    return dir;
  }
}

const hidden = (dir: string, what: string, name: string): string => path.join(dir, `.skillplug-${what}-${name}-${randomBytes(6).toString('hex')}`);

/** The workspace lock when the user recorded it as theirs (`skillplug lock`), else why it was left alone. */
function userLock(workspace: string): { lock?: ReturnType<typeof readLockWithDigest>; owned: boolean } {
  const read = readLockWithDigest(workspace);
  if (!read) return { owned: false };
  const config = readConfigFile(userConfigPath(os.homedir()));
  return { lock: read, owned: config.pinned_locks?.[workspace] === read.sha256 };
}

/** Rewrites the user's own workspace lock with `update` applied, recording its new digest as theirs. */
function rewriteUserLock(workspace: string, entries: LockEntry[]): string {
  const { file, sha256: digest } = writeLockWithDigest(workspace, entries);
  const configFile = userConfigPath(os.homedir());
  const config = readConfigFile(configFile);
  config.pinned_locks = { ...(config.pinned_locks ?? {}), [workspace]: digest };
  writeConfigFile(configFile, config);
  return file;
}

/** Options of `skillplug install`. */
export interface InstallFlags extends LoaderFlags {
  to?: string | undefined;
  force?: boolean | undefined;
  json?: boolean | undefined;
}

/** `skillplug install DIR [--to DIR] [--force]` */
export async function installCommand(source: string, flags: InstallFlags): Promise<number> {
  let src: string;
  try {
    src = realpathSync.native(source);
  } catch {
    throw new PluginError(ErrorCode.NOT_FOUND, `${source} does not exist. Pass the directory of a built plugin (plugin.json and its library).`, { path: source });
  }
  if (!lstatSync(src).isDirectory()) throw new PluginError(ErrorCode.INVALID_STRUCTURE, `${src} is not a directory. Pass the directory of a built plugin (plugin.json and its library).`, { path: src });
  const loader = loaderFromFlags(flags);
  const workspace = loader.workspace;
  const defaults = userDirs(loader);
  const to = canonicalIfExists(path.resolve(flags.to ?? (defaults[0] as string)));
  const warnings: string[] = [];

  const reading = readManifestSync(src);
  if (!reading.manifest) {
    throw new PluginError(reading.issues[0]?.code ?? ErrorCode.INVALID_MANIFEST, reading.issues.map((i) => i.message).join(' '), { path: src, data: { issues: reading.issues } });
  }
  const manifest: PluginManifest = reading.manifest;
  const name = manifest.name;
  const tree = readSourceTree(src);

  // What is there now decides between a fresh install, an upgrade, nothing to do, and a refusal.
  const target = path.join(to, name);
  const existing = lstatOrUndefined(target);
  let replaced: { version: string } | undefined;
  if (existing) {
    const current = existing.isDirectory() ? readManifestSync(target).manifest : undefined;
    if (current?.name === name && sameFiles(target, tree.files)) {
      const permissions = permissionsJson(loader.permissionReport(target, manifest));
      await report(flags, { name, version: manifest.version, path: target, unchanged: true, replaced: null, lock: null, permissions, warnings }, `Plugin "${name}" ${manifest.version} is already installed in ${target}; nothing changed.`);
      return ExitCode.OK;
    }
    if (!flags.force) {
      if (current?.name !== name) {
        throw refuse(
          ErrorCode.INSTALL_CONFLICT,
          `${target} already exists and is not plugin "${name}" (${current ? `it holds plugin "${current.name}"` : existing.isDirectory() ? 'it holds no valid plugin.json' : 'it is not a directory'}), so it is left alone. Move it away, install with --to DIR elsewhere, or pass --force to replace it.`,
          target,
          { reason: 'different-plugin', found: current?.name ?? null },
          name,
        );
      }
      const order = compareVersions(manifest.version, current.version) ?? (manifest.version === current.version ? 0 : -1);
      if (order === 0) {
        throw refuse(
          ErrorCode.INSTALL_CONFLICT,
          `${target} holds another build of "${name}" ${current.version} (its files differ from ${src}), so it is left alone: a release is never silently swapped for different bytes under the same version. Bump the version, or pass --force to replace it.`,
          target,
          { reason: 'same-version-different-files', version: current.version },
          name,
        );
      }
    }
    replaced = current?.name === name ? { version: current.version } : undefined;
  }
  // The rollback rule: never below a version of this plugin installed in any user dir (or the target), unless forced.
  if (!flags.force) {
    for (const dir of new Set([...defaults, to])) {
      const there = readManifestSync(path.join(dir, name)).manifest;
      if (there?.name !== name) continue;
      const order = compareVersions(manifest.version, there.version) ?? (manifest.version === there.version ? 0 : -1);
      if (order < 0) {
        throw refuse(
          ErrorCode.ROLLBACK,
          `Plugin "${name}" ${manifest.version} (${src}) is older than version ${there.version} installed in ${path.join(dir, name)}, so it is refused: an old release may carry fixed bugs or broader permissions. Install ${there.version} or later, or pass --force to go back on purpose.`,
          src,
          { reason: 'rollback', version: manifest.version, minimum: there.version, installed: path.join(dir, name) },
          name,
        );
      }
    }
  }
  const winner = defaults.slice(0, Math.max(0, defaults.indexOf(to))).find((dir) => readManifestSync(path.join(dir, name)).manifest?.name === name);
  if (winner) warnings.push(`${path.join(winner, name)} also holds "${name}" and comes first, so skillplug and VT Code use that copy, not this one.`);
  if (!defaults.includes(to)) warnings.push(`${to} is not one of the user plugin dirs skillplug scans; pass it with --plugins-dir (or install without --to).`);

  // Copy into a hidden dir beside the target (same file system, skipped by discovery), check the copy, then rename.
  mkdirSync(to, { recursive: true });
  const staging = hidden(to, 'install', name);
  mkdirSync(staging, { mode: 0o700 });
  let swapped = false;
  try {
    for (const dir of tree.dirs) mkdirSync(path.join(staging, dir), { mode: 0o755 });
    for (const file of tree.files) writeFileSync(path.join(staging, file.rel), file.bytes, { mode: file.executable ? 0o755 : 0o644, flag: 'wx' });
    const validation = await validatePlugin(staging);
    warnings.push(...validation.warnings.map((w) => w.message.replaceAll(staging, target)));
    const first = validation.errors[0];
    if (first) {
      throw new PluginError(first.code, `Plugin "${name}" (${src}) is not valid, so it was not installed: ${validation.errors.map((e) => e.message.replaceAll(staging, src)).join(' ')}`, { plugin: name, path: src, data: { issues: validation.errors } });
    }
    const manifestBytes = tree.files.find((f) => f.rel === MANIFEST_FILE)?.bytes as Buffer;
    const library = findLibrarySync(staging, name);
    if (!library.found) throw new PluginError(ErrorCode.INVALID_STRUCTURE, library.issue.message, { plugin: name, path: src });
    const libraryBytes = tree.files.find((f) => path.join(staging, f.rel) === library.path)?.bytes as Buffer;
    // Signatures: required when the policy says so; a signature that is there must verify either way.
    await checkPluginTrust(
      { dir: staging, name, version: manifest.version, manifestPath: path.join(staging, MANIFEST_FILE), manifestBytes, libraryPath: library.path, libraryBytes },
      loadTrustedKeys(loader.security.trustedKeys),
      loader.security.requireSignature,
    );
    // A lock that pins the source dir pins these bytes.
    const lockState = userLock(workspace);
    if (lockState.lock && lockEntryFor(lockState.lock.lock, workspace, src)) checkLock(lockState.lock.lock, workspace, src, name, manifestBytes, libraryBytes);
    // Staged owner-only while being checked; readable like any installed program once done.
    chmodSync(staging, 0o755);

    const retired = hidden(to, 'replaced', name);
    if (existing) renameSync(target, retired);
    try {
      renameSync(staging, target);
      swapped = true;
    } catch (err) {
      if (existing) renameSync(retired, target);
      throw err;
    }
    if (existing) rmSync(retired, { recursive: true, force: true });

    let lockFile: string | null = null;
    if (lockState.lock && lockState.owned) {
      const key = lockKey(target, workspace);
      const entries = lockState.lock.lock.plugins.filter((e) => e.path !== key);
      entries.push({ name, version: manifest.version, path: key, manifest_sha256: sha256(manifestBytes), library_sha256: sha256(libraryBytes) });
      lockFile = rewriteUserLock(workspace, entries);
    } else if (lockState.lock) {
      warnings.push(`${workspace} has a lock you did not record with "skillplug lock", so it was left alone and "${name}" is refused there until you run "skillplug lock" in it.`);
    }
    const verb = replaced ? `Replaced "${name}" ${replaced.version} with ${manifest.version}` : `Installed "${name}" ${manifest.version}`;
    // What it asks for, before it first runs: a plugin missing a grant does not load until you grant it.
    const permissions = loader.permissionReport(target, manifest);
    const asks = permissionLines(name, permissions, '  ');
    const needsGrant = permissions.missing.network || permissions.missing.unix_sockets || permissions.missing.fs_read.length > 0 || permissions.missing.fs_write.length > 0;
    await report(
      flags,
      { name, version: manifest.version, path: target, unchanged: false, replaced: replaced ?? null, lock: lockFile, permissions: permissionsJson(permissions), warnings },
      `${verb} in ${target}.${lockFile ? ` Updated ${lockFile}.` : ''} "skillplug serve" now offers it as an MCP tool${needsGrant ? ' once you grant what it asks for' : ''}.\n${asks.join('\n')}`,
    );
    return ExitCode.OK;
  } finally {
    if (!swapped) rmSync(staging, { recursive: true, force: true });
  }
}

async function report(flags: { json?: boolean | undefined }, json: Record<string, unknown>, text: string): Promise<void> {
  const warnings = (json.warnings as string[] | undefined) ?? [];
  if (flags.json) {
    await writeOut(`${JSON.stringify(json)}\n`);
    return;
  }
  for (const w of warnings) writeErr(`skillplug: warning: ${w}`);
  await writeOut(`${text}\n`);
}

/** Options of `skillplug uninstall`. */
export interface UninstallFlags extends LoaderFlags {
  from?: string | undefined;
  json?: boolean | undefined;
}

/** `skillplug uninstall NAME [--from DIR]`: removes the plugin named NAME from the first user plugin dir holding it. */
export async function uninstallCommand(name: string, flags: UninstallFlags): Promise<number> {
  const loader = loaderFromFlags(flags);
  const workspace = loader.workspace;
  const dirs = flags.from ? [canonicalIfExists(path.resolve(flags.from))] : userDirs(loader);
  for (const dir of dirs) {
    const entry = installedEntry(dir, name);
    if (!entry) continue;
    if (entry.link) rmSync(entry.path, { force: true });
    else {
      // Out of sight first (one rename), then removed: discovery never sees a half-deleted plugin.
      const doomed = hidden(dir, 'uninstall', name);
      renameSync(entry.path, doomed);
      rmSync(doomed, { recursive: true, force: true });
    }
    let lockFile: string | null = null;
    let lockState: ReturnType<typeof userLock> = { owned: false };
    try {
      lockState = userLock(workspace);
    } catch (err) {
      if (!isPluginError(err)) throw err;
    }
    if (lockState.lock && lockState.owned) {
      const key = lockKey(entry.path, workspace);
      const entries = lockState.lock.lock.plugins.filter((e) => e.path !== key);
      if (entries.length !== lockState.lock.lock.plugins.length) lockFile = rewriteUserLock(workspace, entries);
    }
    const still = (flags.from ? [] : dirs.filter((d) => d !== dir)).map((d) => installedEntry(d, name)?.path).filter((p): p is string => p !== undefined);
    await report(
      flags,
      { name, removed: entry.path, link: entry.link, lock: lockFile, still_installed: still, warnings: [] },
      `Removed "${name}" (${entry.link ? 'a link' : 'a plugin dir'} ${entry.path}).${lockFile ? ` Updated ${lockFile}.` : ''}${still.length > 0 ? ` Still installed: ${still.join(', ')}.` : ''}`,
    );
    return ExitCode.OK;
  }
  throw new PluginError(ErrorCode.NOT_FOUND, `No plugin "${name}" is installed in ${dirs.join(', ')}. "skillplug list" shows what is installed where; pass --from DIR for another dir.`, { plugin: name, data: { searched: dirs } });
}

/** The entry of `dir` (a dir, or a link to one) holding the plugin named `name`: `<dir>/<name>` first, then any other. */
function installedEntry(dir: string, name: string): { path: string; link: boolean } | undefined {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return undefined;
  }
  names.sort((a, b) => (a === name ? -1 : b === name ? 1 : a < b ? -1 : a > b ? 1 : 0));
  for (const entry of names) {
    const full = path.join(dir, entry);
    const info = lstatOrUndefined(full);
    if (!info || !(info.isDirectory() || info.isSymbolicLink())) continue;
    if (readManifestSync(full).manifest?.name !== name) continue;
    // Only the entry itself goes: a link is unlinked, never followed into what it points at.
    return { path: full, link: info.isSymbolicLink() };
  }
  return undefined;
}
