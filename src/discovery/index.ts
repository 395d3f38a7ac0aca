import { readdirSync, realpathSync, statSync, type Dirent, type Stats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isPlainObject } from '../abi/codec.js';
import { ErrorCode } from '../errors.js';
import { agentPluginEvidence } from './agent-plugins.js';
import { userPluginDirs, type PluginDirsEnv } from './user-dirs.js';
import { MANIFEST_FILE, findLibrarySync, readManifestSync, type PluginManifest, type ValidationIssue } from '../manifest/index.js';
import { childPath, listedEntry } from '../manifest/listing.js';
import type { FileIdentity } from '../manifest/schema.js';

/** Where a trusted dir came from; decides name precedence (explicit, then workspace, then user). */
export type TrustedDirKind = 'explicit' | 'workspace' | 'user';

/** A directory plugins may load from. */
export interface TrustedDir {
  /** Canonical path when the dir exists, absolute path otherwise. */
  path: string;
  /** Where it came from. */
  kind: TrustedDirKind;
}

/** A plugin found by discovery, judged from its files alone. */
export interface DiscoveredPlugin {
  /** plugin.json's name, when readable. */
  name?: string;
  /** plugin.json's version, when readable. */
  version?: string;
  /** plugin.json's description, when readable. */
  description?: string;
  /** Canonical plugin directory (or the entry's path when it cannot be resolved). */
  path: string;
  /** The trusted dir it was found in. */
  trustedDir: TrustedDir;
  /**
   * `ok` when loadable as far as the files tell; `untrusted-workspace` until the user trusts the
   * workspace; `agent-plugin` for an Agent Plugin (agent-plugins.org: skills and MCP config, no
   * library), which skillplug lists but never loads.
   */
  status: 'ok' | 'error' | 'untrusted-workspace' | 'agent-plugin';
  /** The problems found. */
  errors: ValidationIssue[];
  /** The manifest, when valid. */
  manifest?: PluginManifest;
  /** The library's path inside the plugin dir, when found. */
  libraryPath?: string;
  /** For an Agent Plugin: what marked it as one (`$schema`, `skills/`, `mcp.json`). */
  agentPlugin?: { evidence: string[] };
}

// Kept beside, not in, DiscoveredPlugin: it is a cache key, not a fact about the plugin.
const manifestIdentities = new WeakMap<DiscoveredPlugin, FileIdentity>();
// Likewise: what the scan noted of the plugin dir's listing, so later checks of the same scan can skip lookups.
const dirListings = new WeakMap<DiscoveredPlugin, readonly Dirent[]>();

/** The identity of the plugin.json a discovered plugin was judged from, when it holds tool schemas to compile. */
export function manifestIdentity(plugin: DiscoveredPlugin): FileIdentity | undefined {
  return manifestIdentities.get(plugin);
}

/** The entries of a discovered plugin's dir that its scan noted (see {@link discoverPluginsNoting}), if it could be listed. */
export function pluginDirListing(plugin: DiscoveredPlugin): readonly Dirent[] | undefined {
  return dirListings.get(plugin);
}

/** Options for {@link defaultTrustedDirs}. */
export interface DefaultDirsOptions {
  /** Variables that move the user plugin dirs. Default: none (only `home` decides). */
  env?: PluginDirsEnv;
  /** Platform whose VT Code data dir applies. Default: this one. */
  platform?: NodeJS.Platform;
  /** Told about a variable that was ignored because it is not an absolute path. */
  onIgnored?: (variable: keyof PluginDirsEnv, value: string) => void;
}

/**
 * The default trusted dirs: the user dirs VT Code scans (see {@link userPluginDirs}), in precedence
 * order, then the workspace's `.vtcode/plugins` and `.agents/plugins`.
 */
export function defaultTrustedDirs(workspace: string, home: string = os.homedir(), options: DefaultDirsOptions = {}): { path: string; kind: TrustedDirKind }[] {
  return [
    ...userPluginDirs(home, options.env ?? {}, options.platform, options.onIgnored).map((d) => ({ path: d.path, kind: 'user' as const })),
    { path: path.join(workspace, '.vtcode', 'plugins'), kind: 'workspace' },
    { path: path.join(workspace, '.agents', 'plugins'), kind: 'workspace' },
  ];
}

/** Canonical path when it exists, absolute path otherwise. */
export async function canonicalOrAbsolute(dir: string): Promise<string> {
  try {
    return await realpath(dir);
  } catch {
    return path.resolve(dir);
  }
}

/** True when `child` lies strictly inside `parent` (both canonical). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** The trusted dir that contains `canonicalPath`, if any. */
export function containingTrustedDir(canonicalPath: string, dirs: readonly TrustedDir[]): TrustedDir | undefined {
  return dirs.find((d) => isInside(canonicalPath, d.path));
}

// One options object for the thousands of listings of a scan.
const WITH_FILE_TYPES = { withFileTypes: true } as const;

/**
 * Judges one candidate plugin directory from its files, never loading its library. `plainDir`: the
 * entry is a directory, not a symlink, so inside the canonical trusted dir its path is canonical.
 */
function inspectPluginDir(entryPath: string, trustedDir: TrustedDir, plainDir: boolean, note: ListingNote | undefined): DiscoveredPlugin {
  let canonical: string;
  try {
    canonical = plainDir ? entryPath : realpathSync.native(entryPath);
  } catch (err) {
    return {
      path: entryPath,
      trustedDir,
      status: 'error',
      errors: [{ code: ErrorCode.INVALID_STRUCTURE, message: `${entryPath} cannot be resolved (${(err as NodeJS.ErrnoException).code}).` }],
    };
  }
  // A plain entry of a canonical trusted dir lies inside it by construction.
  if (!plainDir && !isInside(canonical, trustedDir.path)) {
    return {
      path: canonical,
      trustedDir,
      status: 'error',
      errors: [{ code: ErrorCode.UNTRUSTED_PATH, message: `${entryPath} resolves to ${canonical}, outside the trusted dir ${trustedDir.path}. Move the plugin into the trusted dir instead of linking to it.` }],
    };
  }
  // One listing answers the questions about plugin.json, the library and signatures that would each cost a syscall.
  let entries: Dirent[] | undefined;
  try {
    entries = readdirSync(canonical, WITH_FILE_TYPES);
  } catch {
    entries = undefined;
  }
  const manifestEntry = entries && listedEntry(entries, MANIFEST_FILE);
  const reading = readManifestSync(canonical, manifestEntry !== undefined && manifestEntry !== 'ask' && manifestEntry.isFile());
  const raw = isPlainObject(reading.raw) ? reading.raw : {};
  // The reading is this function's own: its issues array becomes the plugin's.
  const found: DiscoveredPlugin = { path: canonical, trustedDir, status: 'ok', errors: reading.issues };
  if (reading.identity) manifestIdentities.set(found, reading.identity);
  if (entries && note) dirListings.set(found, note(entries));
  if (typeof raw.name === 'string') found.name = raw.name;
  if (typeof raw.version === 'string') found.version = raw.version;
  if (typeof raw.description === 'string') found.description = raw.description;
  if (reading.manifest) {
    found.manifest = reading.manifest;
    const lookup = findLibrarySync(canonical, reading.manifest.name, entries);
    if (!lookup.found) found.errors.push(lookup.issue);
    else if (lookup.plain) {
      // A plain file of the canonical plugin dir: canonical, and inside the trusted dir with it.
      found.libraryPath = lookup.path;
    } else {
      let libraryReal: string;
      try {
        libraryReal = realpathSync.native(lookup.path);
      } catch {
        libraryReal = path.resolve(lookup.path);
      }
      if (!isInside(libraryReal, trustedDir.path)) {
        found.errors.push({ code: ErrorCode.UNTRUSTED_PATH, message: `The library ${lookup.path} resolves to ${libraryReal}, outside the trusted dir ${trustedDir.path}. Copy the library into the plugin directory.` });
      } else {
        found.libraryPath = libraryReal;
      }
    }
  }
  if (found.errors.length > 0) {
    // Agent Plugins share .agents/plugins with native ones: another kind of plugin, not a broken native one.
    const evidence = agentPluginEvidence(canonical, reading.raw);
    if (evidence) {
      const { manifest: _nativeManifest, libraryPath: _nativeLibrary, ...facts } = found;
      return { ...facts, status: 'agent-plugin', errors: [], agentPlugin: { evidence } };
    }
    found.status = 'error';
  }
  return found;
}

/**
 * Every plugin in the immediate subdirectories of each trusted dir, good and broken alike.
 * Reads plugin.json and file facts only: no plugin code runs. One bad plugin never fails the scan.
 */
export async function discoverPlugins(dirs: readonly TrustedDir[]): Promise<DiscoveredPlugin[]> {
  return discoverPluginsNoting(dirs, undefined);
}

/** Picks the entries of a plugin dir's listing worth keeping for later checks of the same scan. */
export type ListingNote = (entries: readonly Dirent[]) => readonly Dirent[];

/**
 * {@link discoverPlugins}, keeping of each plugin dir's listing what `note` picks, for
 * {@link pluginDirListing}: only that, as a scan of 1000 dirs would otherwise keep every entry of each.
 */
export async function discoverPluginsNoting(dirs: readonly TrustedDir[], note: ListingNote | undefined): Promise<DiscoveredPlugin[]> {
  // Synchronous on purpose: a handful of tiny reads per plugin, far faster than thread-pool hops.
  const found: DiscoveredPlugin[] = [];
  for (const dir of dirs) {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir.path, WITH_FILE_TYPES);
    } catch {
      continue;
    }
    // Entries of a dir stored in canonical form are canonical unless they are links (a dir created after it was trusted may not be).
    let storedCanonical: boolean;
    try {
      storedCanonical = realpathSync.native(dir.path) === dir.path;
    } catch {
      storedCanonical = false;
    }
    const candidates = entries
      .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || e.isSymbolicLink()))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of candidates) {
      const entryPath = childPath(dir.path, entry.name);
      if (entry.isSymbolicLink()) {
        let target: Stats | undefined;
        try {
          target = statSync(entryPath);
        } catch {
          target = undefined;
        }
        if (target && !target.isDirectory()) continue;
      }
      found.push(inspectPluginDir(entryPath, dir, storedCanonical && !entry.isSymbolicLink(), note));
    }
  }
  return found;
}

const KIND_RANK: Record<TrustedDirKind, number> = { explicit: 0, workspace: 1, user: 2 };

/** Orders plugins by name precedence: explicit dirs, then workspace, then user; stable within a kind. */
export function byPrecedence(plugins: readonly DiscoveredPlugin[]): DiscoveredPlugin[] {
  return [...plugins].sort((a, b) => KIND_RANK[a.trustedDir.kind] - KIND_RANK[b.trustedDir.kind]);
}

/**
 * Problems with who may change a plugin's files: writable by group or others, or owned by a user
 * other than this one (root excepted).
 */
export async function unsafeOwnership(paths: readonly string[]): Promise<string[]> {
  if (process.platform === 'win32') return [];
  const uid = process.getuid?.();
  const problems: string[] = [];
  for (const p of paths) {
    // Synchronous, as the scan it precedes: a stat each, not a thread-pool round trip each.
    let info: Stats | undefined;
    try {
      info = statSync(p, { throwIfNoEntry: false });
    } catch {
      info = undefined;
    }
    if (!info) continue;
    if ((info.mode & 0o022) !== 0) problems.push(`${p} is writable by ${info.mode & 0o020 ? 'group' : 'others'} (fix: chmod go-w ${p})`);
    if (uid !== undefined && info.uid !== uid && info.uid !== 0) problems.push(`${p} is owned by another user (uid ${info.uid})`);
  }
  return problems;
}
