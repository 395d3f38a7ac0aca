import { realpathSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { JsonObject, NativePluginTrait } from '../abi/types.js';
import { mergeSecurity, readConfigFile, userConfigPath, workspaceConfigPath, type EffectiveSecurity, type UserConfig } from '../config/index.js';
import {
  byPrecedence,
  canonicalOrAbsolute,
  containingTrustedDir,
  defaultTrustedDirs,
  discoverPlugins,
  isInside,
  unsafeOwnership,
  type DiscoveredPlugin,
  type TrustedDir,
  type TrustedDirKind,
} from '../discovery/index.js';
import { ErrorCode, PluginError } from '../errors.js';
import { MANIFEST_FILE, findLibrary, libraryFilename, parseManifestText, readManifestBytesSync, type PluginManifest } from '../manifest/index.js';
import { SANDBOX_MODES, type SandboxGrant, type SandboxMode } from '../sandbox/index.js';
import { checkLock, readLock } from '../signing/lock.js';
import { hasSignatures } from '../signing/files.js';
import { metadataKey, readCachedMetadata, writeCachedMetadata } from '../discovery/metadata-cache.js';
import type { MinisignPublicKey } from '../signing/minisign.js';
import { writePrivateCopy, type PrivateCopy } from './private-copy.js';

/** How a plugin runs: `'none'` loads it into this process; `'process'` runs it in its own host process. */
export type IsolationMode = 'none' | 'process';

/** The isolation modes. */
export const ISOLATION_MODES: readonly IsolationMode[] = ['process', 'none'];

/** Options for {@link PluginLoader}. */
export interface PluginLoaderOptions {
  /** Workspace root: becomes `workspace_root` and anchors the workspace plugin dirs. Default: the current directory. */
  workspace?: string;
  /** Home directory for `~/.vtcode/plugins` and `~/.vtcode/skillplug.json`. Default: the user's home. */
  home?: string;
  /** Extra trusted dirs, the user's explicit choice; they take name precedence over the defaults. */
  pluginsDirs?: string[];
  /** Include the default trusted dirs. Default true. */
  defaultDirs?: boolean;
  /** Read `~/.vtcode/skillplug.json` and the workspace's `.vtcode/skillplug.json`. Default true. */
  readConfig?: boolean;
  /** How loaded plugins run. Default `'process'`. */
  isolation?: IsolationMode;
  /** Per-call deadline for isolated plugins, in ms (a call may override it). Default 30 000. */
  timeoutMs?: number;
  /** Address-space limit per isolated host, in MiB. Default 4096. */
  maxMemoryMb?: number;
  /** Sandbox for isolated hosts. Default `'auto'` (or the user config's). */
  sandbox?: SandboxMode;
  /** The user's cap on sandbox permissions; plugins get the overlap with what they ask for. */
  grant?: SandboxGrant;
  /** Extra environment variables for isolated hosts (their environment is an allowlist otherwise). */
  env?: Record<string, string>;
  /** Receives everything isolated plugins write to stdout/stderr. */
  onLog?: (plugin: string, text: string) => void;
  /** Concurrent calls a thread-safe plugin may serve. Default: the CPU count. */
  maxConcurrency?: number;
  /**
   * How long, in µs, the event loop keeps polling for results (of in-process pump threads and isolated
   * hosts) before it sleeps until woken. A polled result costs no cross-thread or cross-process wake-up
   * (tens of µs on small VMs), paid for with CPU while waiting. 0 turns polling off. Default 200 with
   * 2+ CPUs, else 0.
   */
  pollMicros?: number;
  /** Largest result accepted, in bytes. Default 64 MiB. */
  maxOutputBytes?: number;
  /** Refuse plugins not signed by a trusted key. Default false (or the user config's). */
  requireSignature?: boolean;
  /** Trusted minisign public keys: .pub file paths or inline keys, added to the user config's. */
  trustedKeys?: string[];
  /** Refuse, rather than warn about, plugin files writable by group/others or owned by another user. */
  strict?: boolean;
  /** Receives warnings (e.g. a group-writable trusted dir). Default: `process.emitWarning`. */
  onWarning?: (message: string) => void;
  /** Test hooks. */
  hooks?: {
    /** Runs after a plugin's files were verified and before its library loads. */
    afterVerify?: (info: { dir: string; libraryPath: string }) => void | Promise<void>;
  };
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

function integerOption(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new PluginError(ErrorCode.USAGE, `Loader option ${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer, got ${String(value)}.`);
  }
  return value;
}

const positiveInteger = (value: unknown, name: string, fallback: number): number => integerOption(value, name, fallback, 1);

/** Polling pays off only when the plugin's thread has a core of its own. */
const DEFAULT_POLL_MICROS = os.availableParallelism() >= 2 ? 200 : 0;

/**
 * Finds, validates, verifies and loads native skill plugins from trusted directories.
 * Discovery reads files only; {@link PluginLoader.loadPlugin} is the only step that runs plugin code.
 */
export class PluginLoader {
  /** Canonical workspace root. */
  readonly workspace: string;
  /** The security settings in force (user config, workspace restrictions and options merged). */
  readonly security: EffectiveSecurity;
  private readonly options: PluginLoaderOptions;
  private readonly dirs: TrustedDir[] = [];
  private readonly isolation: IsolationMode;
  private readonly maxConcurrency: number;
  private readonly pollMicros: number;
  private readonly maxOutputBytes: number;
  private readonly timeoutMs: number;
  private readonly maxMemoryMb: number;
  private readonly userConfig: UserConfig;
  private readonly warn: (message: string) => void;
  private readonly warned = new Set<string>();
  private keys: MinisignPublicKey[] | undefined;

  constructor(options: PluginLoaderOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new PluginError(ErrorCode.USAGE, 'PluginLoader options must be an object.');
    this.options = options;
    const isolation = options.isolation ?? 'process';
    if (!ISOLATION_MODES.includes(isolation)) {
      throw new PluginError(ErrorCode.USAGE, `Unknown isolation mode ${JSON.stringify(isolation)}; use one of: ${ISOLATION_MODES.join(', ')}.`);
    }
    if (options.sandbox !== undefined && !SANDBOX_MODES.includes(options.sandbox)) {
      throw new PluginError(ErrorCode.USAGE, `Unknown sandbox mode ${JSON.stringify(options.sandbox)}; use one of: ${SANDBOX_MODES.join(', ')}.`);
    }
    this.isolation = isolation;
    this.maxConcurrency = positiveInteger(options.maxConcurrency, 'maxConcurrency', Math.max(1, os.availableParallelism()));
    this.pollMicros = integerOption(options.pollMicros, 'pollMicros', DEFAULT_POLL_MICROS, 0);
    this.maxOutputBytes = positiveInteger(options.maxOutputBytes, 'maxOutputBytes', DEFAULT_MAX_OUTPUT_BYTES);
    this.timeoutMs = positiveInteger(options.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    this.maxMemoryMb = positiveInteger(options.maxMemoryMb, 'maxMemoryMb', DEFAULT_MAX_MEMORY_MB);
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, { code: 'SKILLPLUG_WARNING' }));
    this.workspace = canonicalOrAbsoluteSync(options.workspace ?? process.cwd());
    const home = options.home ?? os.homedir();
    const readConfig = options.readConfig !== false;
    this.userConfig = readConfig ? readConfigFile(userConfigPath(home)) : {};
    const workspaceFile = workspaceConfigPath(this.workspace);
    const workspaceConfig = readConfig ? readConfigFile(workspaceFile) : {};
    this.security = mergeSecurity(
      this.userConfig,
      workspaceConfig,
      { requireSignature: options.requireSignature, trustedKeys: options.trustedKeys, strict: options.strict, sandbox: options.sandbox },
      this.warn,
      workspaceFile,
    );
    for (const dir of options.pluginsDirs ?? []) this.addTrustedDir(dir);
    if (options.defaultDirs !== false) {
      for (const dir of defaultTrustedDirs(this.workspace, home)) this.addDir(dir.path, dir.kind);
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

  /** Whether the user trusts this loader's workspace (its plugin dirs then count as trusted). */
  workspaceTrusted(): boolean {
    return this.security.trustedWorkspaces.includes(this.workspace);
  }

  /** The per-plugin `config` from the user config, or `{}`. */
  pluginConfig(name: string): JsonObject {
    return this.userConfig.plugins?.[name]?.config ?? {};
  }

  private async trustedKeys(): Promise<MinisignPublicKey[]> {
    if (this.security.trustedKeys.length === 0) return [];
    this.keys ??= (await signatures()).loadTrustedKeys(this.security.trustedKeys);
    return this.keys;
  }

  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.warn(message);
  }

  private async checkOwnership(paths: string[], plugin?: string): Promise<void> {
    const problems = await unsafeOwnership(paths);
    if (problems.length === 0) return;
    if (this.security.strict) {
      throw new PluginError(ErrorCode.UNTRUSTED_PATH, `Refusing plugin${plugin ? ` "${plugin}"` : ''} in strict mode: ${problems.join('; ')}. Anyone who can change these files can run code as you.`, {
        ...(plugin ? { plugin } : {}),
        data: { problems },
      });
    }
    for (const problem of problems) this.warnOnce(`${problem}: anyone who can change it can run code as you.`);
  }

  /** Every plugin in the trusted dirs, good and broken, judged from files alone (no plugin code runs). */
  async discoverPlugins(): Promise<DiscoveredPlugin[]> {
    await this.checkOwnership(this.dirs.map((d) => d.path)).catch((err: PluginError) => this.warnOnce(err.message));
    const found = await discoverPlugins(this.dirs);
    if (this.workspaceTrusted()) return found;
    const keys = await this.trustedKeys();
    return Promise.all(
      found.map(async (p) => {
        if (p.trustedDir.kind !== 'workspace' || p.status !== 'ok') return p;
        if (keys.length > 0 && (await this.signedByTrustedKey(p, keys))) return p;
        return {
          ...p,
          status: 'untrusted-workspace' as const,
          errors: [{ code: ErrorCode.UNTRUSTED_PATH, message: this.untrustedWorkspaceHint(p.path) }],
        };
      }),
    );
  }

  private async signedByTrustedKey(p: DiscoveredPlugin, keys: MinisignPublicKey[]): Promise<boolean> {
    const lookup = p.manifest ? await findLibrary(p.path, p.manifest.name) : undefined;
    if (!lookup?.found) return false;
    try {
      const manifestPath = path.join(p.path, MANIFEST_FILE);
      const files = { manifestPath, manifestBytes: readManifestBytes(manifestPath), libraryPath: lookup.path, libraryBytes: await readFile(lookup.path) };
      return (await (await signatures()).checkPluginSignatures(files, keys, false, p.name ?? '?', p.path)).signed;
    } catch {
      return false;
    }
  }

  private untrustedWorkspaceHint(dir: string): string {
    return `${dir} is in the plugin dir of workspace ${this.workspace}, which you have not trusted: plugins that arrive with a repository do not run until you say so. Run "skillplug trust ${this.workspace}" if you trust this workspace, or sign the plugin with a key you trust.`;
  }

  /**
   * Resolves a plugin reference: a name found in the trusted dirs (explicit dirs first, then the
   * workspace's, then the user's), or a path to a plugin directory. Throws `E_NOT_FOUND`.
   */
  async findPlugin(ref: string): Promise<DiscoveredPlugin> {
    if (typeof ref !== 'string' || ref.length === 0) throw new PluginError(ErrorCode.USAGE, 'A plugin name or path is required.');
    const looksLikePath = ref.includes('/') || ref.includes(path.sep) || ref.startsWith('.');
    const plugins = await discoverPlugins(this.dirs);
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
   * Loads the plugin in `dir`: checks that it lies in a trusted dir, validates plugin.json, finds
   * the library, verifies signatures and the lock file when they apply, then loads exactly the
   * verified bytes (this runs the plugin's code) and checks its ABI version and metadata.
   */
  async loadPlugin(dir: string): Promise<NativePluginTrait> {
    if (typeof dir !== 'string' || dir.length === 0) throw new PluginError(ErrorCode.USAGE, 'loadPlugin needs a plugin directory path.');
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
    const manifestPath = path.join(canonical, MANIFEST_FILE);
    const manifestBytes = readManifestBytes(manifestPath);
    const reading = parseManifestText(manifestBytes.toString('utf8'), manifestPath);
    if (!reading.manifest) {
      const first = reading.issues[0];
      throw new PluginError(ErrorCode.INVALID_MANIFEST, reading.issues.map((i) => i.message).join(' '), {
        path: canonical,
        data: { field: first?.field, issues: reading.issues },
      });
    }
    const manifest = reading.manifest;
    const name = manifest.name;
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
    await this.checkOwnership([trusted.path, canonical, manifestPath, libraryPath], name);

    const lock = readLock(this.workspace);
    const untrustedWorkspace = trusted.kind === 'workspace' && !this.workspaceTrusted();
    const verifying = this.security.requireSignature || lock !== undefined || untrustedWorkspace || hasSignatures(manifestPath, lookup.path);
    let loadPath = libraryPath;
    let copy: PrivateCopy | undefined;
    let libraryBytes: Buffer | undefined;
    if (verifying) {
      // Read once: these exact bytes are verified, hashed and then loaded from a private copy.
      libraryBytes = await readFile(libraryPath);
      const files = { manifestPath, manifestBytes, libraryPath: lookup.path, libraryBytes };
      const keys = await this.trustedKeys();
      const signed = await (await signatures()).checkPluginSignatures(files, keys, this.security.requireSignature, name, canonical);
      for (const keyId of signed.unknownKeys) this.warnOnce(`plugin "${name}" is signed by key ${keyId}, which you do not trust; it loads as if unsigned.`);
      if (untrustedWorkspace && !signed.signed) {
        throw new PluginError(ErrorCode.UNTRUSTED_PATH, this.untrustedWorkspaceHint(canonical), { plugin: name, path: canonical, data: { reason: 'untrusted-workspace', workspace: this.workspace } });
      }
      if (lock) checkLock(lock, this.workspace, canonical, name, manifestBytes, libraryBytes);
      copy = await writePrivateCopy(libraryBytes, path.basename(libraryPath));
      loadPath = copy.path;
    }
    try {
      await this.options.hooks?.afterVerify?.({ dir: canonical, libraryPath });
      return await this.open(canonical, loadPath, manifest, copy, libraryBytes);
    } catch (err) {
      copy?.dispose();
      throw err;
    }
  }

  private async open(dir: string, libraryPath: string, manifest: PluginManifest, copy: PrivateCopy | undefined, verifiedBytes: Buffer | undefined): Promise<NativePluginTrait> {
    const onClosed = copy ? () => copy.dispose() : undefined;
    if (this.isolation === 'none') {
      // Imported on demand: only in-process loading needs the FFI library.
      const { InProcessPlugin } = await import('./in-process.js');
      return InProcessPlugin.open({ dir, libraryPath, manifestName: manifest.name, manifest, maxOutputBytes: this.maxOutputBytes, maxConcurrency: this.maxConcurrency, pollMicros: this.pollMicros, onClosed });
    }
    const { IsolatedPlugin } = await import('../host/isolated.js');
    // A build that answered before starts no host until its first call.
    const key = metadataKey(verifiedBytes ?? (await readFile(libraryPath)), manifest.name);
    const known = await readCachedMetadata(key);
    const plugin = await IsolatedPlugin.open({
      dir,
      libraryPath,
      manifestName: manifest.name,
      manifest,
      permissions: manifest.permissions,
      workspace: this.workspace,
      maxOutputBytes: this.maxOutputBytes,
      maxConcurrency: this.maxConcurrency,
      pollMicros: this.pollMicros,
      timeoutMs: this.timeoutMs,
      maxMemoryMb: this.maxMemoryMb,
      sandbox: this.security.sandbox,
      grant: this.options.grant,
      env: this.options.env,
      onWarning: (m) => this.warnOnce(m),
      onLog: this.options.onLog,
      onClosed,
    }, known && 'metadata' in known ? known.metadata : undefined);
    if (!known) await writeCachedMetadata(key, { metadata: plugin.metadata });
    return plugin;
  }
}

// Loaded on demand: signature checking pulls in crypto that most loads never need.
const signatures = (): Promise<typeof import('../signing/plugin-signatures.js')> => import('../signing/plugin-signatures.js');

function readManifestBytes(file: string): Buffer {
  const read = readManifestBytesSync(file);
  if ('issue' in read) throw new PluginError(ErrorCode.INVALID_MANIFEST, read.issue.message, { path: file });
  return read.bytes;
}
