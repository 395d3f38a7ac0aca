import { realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { NativePluginTrait } from '../abi/types.js';
import {
  byPrecedence,
  canonicalOrAbsolute,
  containingTrustedDir,
  defaultTrustedDirs,
  discoverPlugins,
  isInside,
  trustedDirWarning,
  type DiscoveredPlugin,
  type TrustedDir,
  type TrustedDirKind,
} from '../discovery/index.js';
import { ErrorCode, PluginError } from '../errors.js';
import { findLibrary, libraryFilename, readManifest } from '../manifest/index.js';
import { IsolatedPlugin } from '../host/isolated.js';
import { SANDBOX_MODES, type SandboxGrant, type SandboxMode } from '../sandbox/index.js';
import { InProcessPlugin } from './in-process.js';

/** How a plugin runs: `'none'` loads it into this process; `'process'` runs it in its own host process. */
export type IsolationMode = 'none' | 'process';

/** The isolation modes. */
export const ISOLATION_MODES: readonly IsolationMode[] = ['process', 'none'];

/** Options for {@link PluginLoader}. */
export interface PluginLoaderOptions {
  /** Workspace root: becomes `workspace_root` and anchors the workspace plugin dirs. Default: the current directory. */
  workspace?: string;
  /** Home directory for `~/.vtcode/plugins`. Default: the user's home. */
  home?: string;
  /** Extra trusted dirs, the user's explicit choice; they take name precedence over the defaults. */
  pluginsDirs?: string[];
  /** Include the default trusted dirs. Default true. */
  defaultDirs?: boolean;
  /** How loaded plugins run. Default `'process'`. */
  isolation?: IsolationMode;
  /** Per-call deadline for isolated plugins, in ms (a call may override it). Default 30 000. */
  timeoutMs?: number;
  /** Address-space limit per isolated host, in MiB. Default 4096. */
  maxMemoryMb?: number;
  /** Sandbox for isolated hosts. Default `'auto'`. */
  sandbox?: SandboxMode;
  /** The user's cap on sandbox permissions; plugins get the overlap with what they ask for. */
  grant?: SandboxGrant;
  /** Extra environment variables for isolated hosts (their environment is an allowlist otherwise). */
  env?: Record<string, string>;
  /** Receives everything isolated plugins write to stdout/stderr. */
  onLog?: (plugin: string, text: string) => void;
  /** Concurrent calls a thread-safe plugin may serve. Default: the CPU count. */
  maxConcurrency?: number;
  /** Largest result accepted, in bytes. Default 64 MiB. */
  maxOutputBytes?: number;
  /** Receives warnings (e.g. a group-writable trusted dir). Default: `process.emitWarning`. */
  onWarning?: (message: string) => void;
}

/** Default largest result: 64 MiB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
/** Default per-call deadline for isolated plugins: 30 s. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default address-space limit per isolated host: 4096 MiB. */
export const DEFAULT_MAX_MEMORY_MB = 4096;

function canonicalOrAbsoluteSync(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new PluginError(ErrorCode.USAGE, `Loader option ${name} must be a positive integer, got ${String(value)}.`);
  }
  return value;
}

/**
 * Finds, validates and loads native skill plugins from trusted directories.
 * Discovery reads files only; {@link PluginLoader.loadPlugin} is the only step that runs plugin code.
 */
export class PluginLoader {
  /** Canonical workspace root. */
  readonly workspace: string;
  private readonly dirs: TrustedDir[] = [];
  private readonly isolation: IsolationMode;
  private readonly maxConcurrency: number;
  private readonly maxOutputBytes: number;
  private readonly timeoutMs: number;
  private readonly maxMemoryMb: number;
  private readonly sandbox: SandboxMode;
  private readonly grant: SandboxGrant | undefined;
  private readonly env: Record<string, string> | undefined;
  private readonly onLog: ((plugin: string, text: string) => void) | undefined;
  private readonly warn: (message: string) => void;
  private readonly warned = new Set<string>();

  constructor(options: PluginLoaderOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new PluginError(ErrorCode.USAGE, 'PluginLoader options must be an object.');
    const isolation = options.isolation ?? 'process';
    if (!ISOLATION_MODES.includes(isolation)) {
      throw new PluginError(ErrorCode.USAGE, `Unknown isolation mode ${JSON.stringify(isolation)}; use one of: ${ISOLATION_MODES.join(', ')}.`);
    }
    this.isolation = isolation;
    this.maxConcurrency = positiveInteger(options.maxConcurrency, 'maxConcurrency', Math.max(1, os.availableParallelism()));
    this.maxOutputBytes = positiveInteger(options.maxOutputBytes, 'maxOutputBytes', DEFAULT_MAX_OUTPUT_BYTES);
    this.timeoutMs = positiveInteger(options.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    this.maxMemoryMb = positiveInteger(options.maxMemoryMb, 'maxMemoryMb', DEFAULT_MAX_MEMORY_MB);
    const sandbox = options.sandbox ?? 'auto';
    if (!SANDBOX_MODES.includes(sandbox)) {
      throw new PluginError(ErrorCode.USAGE, `Unknown sandbox mode ${JSON.stringify(sandbox)}; use one of: ${SANDBOX_MODES.join(', ')}.`);
    }
    this.sandbox = sandbox;
    this.grant = options.grant;
    this.env = options.env;
    this.onLog = options.onLog;
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, { code: 'SKILLPLUG_WARNING' }));
    this.workspace = canonicalOrAbsoluteSync(options.workspace ?? process.cwd());
    for (const dir of options.pluginsDirs ?? []) this.addTrustedDir(dir);
    if (options.defaultDirs !== false) {
      for (const dir of defaultTrustedDirs(this.workspace, options.home ?? os.homedir())) this.addDir(dir.path, dir.kind);
    }
  }

  /** Adds a trusted dir (canonicalized when it exists, made absolute otherwise); returns the stored path. Duplicates are ignored. */
  addTrustedDir(dir: string): string {
    if (typeof dir !== 'string' || dir.length === 0) throw new PluginError(ErrorCode.USAGE, 'addTrustedDir needs a non-empty directory path.');
    return this.addDir(dir, 'explicit');
  }

  private addDir(dir: string, kind: TrustedDirKind): string {
    const canonical = canonicalOrAbsoluteSync(dir);
    if (!this.dirs.some((d) => d.path === canonical)) this.dirs.push({ path: canonical, kind });
    return canonical;
  }

  /** The trusted dirs, in the order they were added. */
  trustedDirs(): string[] {
    return this.dirs.map((d) => d.path);
  }

  /** The trusted dirs with where each came from. */
  trustedDirEntries(): TrustedDir[] {
    return this.dirs.map((d) => ({ ...d }));
  }

  /** The library file name this platform expects for a plugin name (e.g. `libhello.so`). */
  libraryFilename(name: string): string {
    return libraryFilename(name);
  }

  private async warnAboutDirs(): Promise<void> {
    for (const dir of this.dirs) {
      if (this.warned.has(dir.path)) continue;
      const warning = await trustedDirWarning(dir.path);
      if (warning) {
        this.warned.add(dir.path);
        this.warn(warning);
      }
    }
  }

  /** Every plugin in the trusted dirs, good and broken, judged from files alone (no plugin code runs). */
  async discoverPlugins(): Promise<DiscoveredPlugin[]> {
    await this.warnAboutDirs();
    return discoverPlugins(this.dirs);
  }

  /**
   * Resolves a plugin reference: a name found in the trusted dirs (explicit dirs first, then the
   * workspace's, then the user's), or a path to a plugin directory. Throws `E_NOT_FOUND`.
   */
  async findPlugin(ref: string): Promise<DiscoveredPlugin> {
    if (typeof ref !== 'string' || ref.length === 0) throw new PluginError(ErrorCode.USAGE, 'A plugin name or path is required.');
    const looksLikePath = ref.includes('/') || ref.includes(path.sep) || ref.startsWith('.');
    const plugins = await this.discoverPlugins();
    if (!looksLikePath) {
      const match = byPrecedence(plugins).find((p) => p.name === ref);
      if (match) return match;
    }
    const isDir = await stat(ref).then((s) => s.isDirectory(), () => false);
    if (isDir) {
      const canonical = await realpath(ref);
      const known = plugins.find((p) => p.path === canonical);
      if (known) return known;
      return { path: canonical, trustedDir: containingTrustedDir(canonical, this.dirs) ?? { path: '', kind: 'explicit' }, status: 'ok', errors: [] };
    }
    const names = [...new Set(plugins.filter((p) => p.name !== undefined).map((p) => p.name as string))].sort();
    throw new PluginError(
      ErrorCode.NOT_FOUND,
      `No plugin ${JSON.stringify(ref)} in the trusted dirs (${this.trustedDirs().join(', ')}). ${names.length > 0 ? `Known plugins: ${names.join(', ')}.` : 'No plugins were found.'} Pass a plugin name, a path to a plugin directory, or add its parent with --plugins-dir.`,
      { data: { ref, known: names } },
    );
  }

  /**
   * Loads the plugin in `dir`: checks that it lies in a trusted dir, validates plugin.json, finds the
   * library, loads it (this runs its code) and checks its ABI version and metadata.
   */
  async loadPlugin(dir: string): Promise<NativePluginTrait> {
    if (typeof dir !== 'string' || dir.length === 0) throw new PluginError(ErrorCode.USAGE, 'loadPlugin needs a plugin directory path.');
    await this.warnAboutDirs();
    let canonical: string;
    try {
      canonical = await realpath(dir);
    } catch {
      throw new PluginError(ErrorCode.NOT_FOUND, `Plugin directory ${path.resolve(dir)} does not exist.`, { path: path.resolve(dir) });
    }
    const trusted = containingTrustedDir(canonical, this.dirs);
    if (!trusted) {
      throw new PluginError(
        ErrorCode.UNTRUSTED_PATH,
        `Plugin directory ${canonical}${canonical !== path.resolve(dir) ? ` (given as ${dir})` : ''} is not inside a trusted dir (${this.trustedDirs().join(', ') || 'none'}). Move it into one, or trust its parent with --plugins-dir / addTrustedDir.`,
        { path: canonical, data: { trustedDirs: this.trustedDirs() } },
      );
    }
    const reading = await readManifest(canonical);
    if (!reading.manifest) {
      const first = reading.issues[0];
      throw new PluginError(ErrorCode.INVALID_MANIFEST, reading.issues.map((i) => i.message).join(' '), {
        path: canonical,
        data: { field: first?.field, issues: reading.issues },
      });
    }
    const name = reading.manifest.name;
    const lookup = await findLibrary(canonical, name);
    if (!lookup.found) throw new PluginError(ErrorCode.INVALID_STRUCTURE, lookup.issue.message, { plugin: name, path: canonical });
    const libraryPath = await canonicalOrAbsolute(lookup.path);
    if (!isInside(libraryPath, trusted.path)) {
      throw new PluginError(
        ErrorCode.UNTRUSTED_PATH,
        `The library of plugin "${name}" (${lookup.path}) resolves to ${libraryPath}, outside the trusted dir ${trusted.path}. Copy the library into the plugin directory instead of linking to it.`,
        { plugin: name, path: libraryPath },
      );
    }
    if (this.isolation === 'none') {
      return InProcessPlugin.open({ dir: canonical, libraryPath, manifestName: name, maxOutputBytes: this.maxOutputBytes, maxConcurrency: this.maxConcurrency });
    }
    return IsolatedPlugin.open({
      dir: canonical,
      libraryPath,
      manifestName: name,
      permissions: reading.manifest.permissions,
      workspace: this.workspace,
      maxOutputBytes: this.maxOutputBytes,
      maxConcurrency: this.maxConcurrency,
      timeoutMs: this.timeoutMs,
      maxMemoryMb: this.maxMemoryMb,
      sandbox: this.sandbox,
      grant: this.grant,
      env: this.env,
      onWarning: this.warn,
      onLog: this.onLog,
    });
  }
}
