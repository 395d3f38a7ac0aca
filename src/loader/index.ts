import { lstatSync, readdirSync, realpathSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PluginLogEvent } from '../abi/plugin-log.js';
import type { JsonObject } from '../abi/types.js';
import type { NativePluginTrait } from '../plugin/interfaces.js';
import type { IsolatedOpenOptions } from '../host/isolated.js';
import { mergeSecurity, readConfigFile, userConfigPath, workspaceConfigPath, type EffectiveSecurity, type UserConfig } from '../config/index.js';
import {
  byPrecedence,
  canonicalOrAbsolute,
  containingTrustedDir,
  defaultTrustedDirs,
  discoverPlugins,
  discoverPluginsNoting,
  isInside,
  manifestIdentity,
  pluginDirListing,
  unsafeOwnership,
  type DiscoveredPlugin,
  type TrustedDir,
  type TrustedDirKind,
} from '../discovery/index.js';
import type { PluginDirsEnv } from '../discovery/user-dirs.js';
import { ErrorCode, PluginError, asPluginError, isPluginError } from '../errors.js';
import { compileSchema, SchemaVerdicts } from '../manifest/schema.js';
import { MANIFEST_FILE, findLibrary, libraryFilename, parseManifestText, readManifestBytesSync, type PluginManifest } from '../manifest/index.js';
import { SANDBOX_MODES, type SandboxGrant, type SandboxMode } from '../sandbox/index.js';
import { PROTECTED_WORKSPACE_ENTRIES, assessPermissions, copyPermissionReport, grantProblem, effectivePermissions, fullyGranted, memoizedPathProbe, mergeGrants, permissionDenied, type EffectivePermissions, type PermissionContext, type PermissionReport } from '../sandbox/permissions.js';
import { checkLock, lockEntryFor, readLockWithDigest, sha256, type LockFile } from '../signing/lock.js';
import { hasSignatures, signatureLikeEntries } from '../signing/files.js';
import { checkWorkspacePlugin } from '../signing/policy.js';
import type { MinisignPublicKey } from '../signing/minisign.js';
import { loaderSeams } from './seams.js';
import type { PrivateCopy } from '../plugin/private-copy.js';

/** How a plugin runs: `'none'` loads it into this process; `'process'` runs it in its own host process. */
export type IsolationMode = 'none' | 'process';

/** The isolation modes. */
export const ISOLATION_MODES: readonly IsolationMode[] = ['process', 'none'];

/** Options for {@link PluginLoader}. */
export interface PluginLoaderOptions {
  /** Workspace root: becomes `workspace_root` and anchors the workspace plugin dirs. Default: the current directory. */
  workspace?: string;
  /** Home directory for the user plugin dirs and `~/.vtcode/skillplug.json`. Default: the user's home. */
  home?: string;
  /**
   * Variables that move the user plugin dirs (`VTCODE_HOME`, `VTCODE_DATA`, `XDG_DATA_HOME`,
   * `CODEX_HOME`). Default: `process.env` when `home` is not given; none when it is, so an explicit
   * `home` alone decides every user dir.
   */
  pluginDirsEnv?: PluginDirsEnv;
  /** Extra trusted dirs, the user's explicit choice; they take name precedence over the defaults. */
  pluginsDirs?: string[];
  /** Include the default trusted dirs. Default true. */
  defaultDirs?: boolean;
  /** Read `~/.vtcode/skillplug.json` and the workspace's `.vtcode/skillplug.json`. Default true. */
  readConfig?: boolean;
  /** How loaded plugins run. Default `'process'`. */
  isolation?: IsolationMode;
  /**
   * Per-call deadline, in ms (a call may override it). In-process (`isolation: 'none'`) a late call is
   * answered E_TIMEOUT on time but cannot be stopped: the plugin answers E_BUSY until it returns. Also bounds loading: library
   * constructors and `vtcode_plugin_metadata()`, in a host in every isolation mode. Default 30 000.
   */
  timeoutMs?: number;
  /**
   * Memory limit in MiB. Each isolated host's address space; where a cgroup can be made, all of a
   * plugin's processes and its /tmp together; a sandboxed plugin's /tmp size and largest file. Default 4096.
   */
  maxMemoryMb?: number;
  /**
   * Tasks (processes and threads) an isolated plugin may have at once, host included, where a cgroup
   * (any user) or the sandbox's user namespace (non-root) can bound them. Default 512.
   */
  maxProcesses?: number;
  /** Sandbox for isolated hosts. Default `'auto'` (or the user config's). */
  sandbox?: SandboxMode;
  /**
   * Permissions the user grants every plugin this loader loads, beyond the default (read the
   * workspace, its own dir, a private /tmp); added to `grants` and the user config's
   * `plugins.<name>.grant`. A plugin that asks for more than is granted fails to load with
   * `E_PERMISSION_DENIED`; it never runs with less.
   */
  grant?: SandboxGrant;
  /** Permissions granted per plugin name; added to `grant` and the user config's. */
  grants?: Record<string, SandboxGrant>;
  /** Extra environment variables for isolated hosts (their environment is an allowlist otherwise). */
  env?: Record<string, string>;
  /** Receives everything isolated plugins write to stdout/stderr. */
  onLog?: (plugin: string, text: string) => void;
  /**
   * Receives isolated plugins' output line by line as it arrives, parsed and bounded: the log API's
   * `<N>` level prefixes (docs/abi.md "Logging"), lines cut at 4096 characters, at most 1000 lines at
   * once then 100 a second (a `source: 'skillplug'` event counts what was dropped).
   */
  onPluginLog?: (event: PluginLogEvent) => void;
  /** Concurrent calls a thread-safe plugin may serve. Default: the CPU count. */
  maxConcurrency?: number;
  /**
   * How long, in µs, the event loop keeps polling for results (of in-process pump threads and isolated
   * hosts) before it sleeps until woken. A polled result costs no cross-thread or cross-process wake-up
   * (tens of µs on small VMs), paid for with CPU while waiting; where the machine's load leaves no core
   * to poll on, an in-process call alone waits asleep instead (Linux). 0 turns both off. Default 200.
   */
  pollMicros?: number;
  /** Isolated only: replace a plugin's host after it served this many calls (between calls, losing none); 0: never. Default 0. */
  recycleAfterCalls?: number;
  /**
   * Isolated only: replace a plugin's host, between calls, once the resident memory of its processes
   * passes this many MiB (read after its first call and every 16th), so a plugin that leaks recovers
   * before it hits `maxMemoryMb`; 0: never. Default: half of `maxMemoryMb`.
   */
  recycleAboveMb?: number;
  /**
   * Isolated only: how long, in ms, a plugin that crashed 3 times within a minute is refused
   * (`E_QUARANTINED`); each repeat doubles it, up to 1 h. 0: until lifted by hand. Default 60 000.
   */
  quarantineMs?: number;
  /** Largest result accepted, in bytes. Default 64 MiB. */
  maxOutputBytes?: number;
  /** Refuse plugins not signed by a trusted key. Default false (or the user config's). */
  requireSignature?: boolean;
  /** Trusted minisign public keys: .pub file paths or inline keys, added to the user config's. */
  trustedKeys?: string[];
  /** Refuse, rather than warn about, plugin files writable by group/others or owned by another user. */
  strict?: boolean;
  /**
   * The plugin `skillplug dev` or `skillplug test` just built from the author's own sources. With
   * signatures required it still loads unsigned, but only from exactly this dir and only while its
   * plugin.json and library are the bytes the build wrote (sha256 hex); every other plugin still
   * needs its signature.
   */
  ownBuild?: { dir: string; manifestSha256: string; librarySha256: string };
  /** Receives warnings (e.g. a group-writable trusted dir). Default: `process.emitWarning`. */
  onWarning?: (message: string) => void;
}

/** Default largest result: 64 MiB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
/** Default per-call deadline for isolated plugins: 30 s. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default address-space limit per isolated host: 4096 MiB. */
export const DEFAULT_MAX_MEMORY_MB = 4096;
/** Default bound on an isolated plugin's tasks (processes and threads): 512. */
export const DEFAULT_MAX_PROCESSES = 512;
/** Default first quarantine of a plugin that keeps crashing: 60 s (doubling on each repeat, up to 1 h). */
export const DEFAULT_QUARANTINE_MS = 60_000;

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

/** On one CPU too: the spin budget then refuses polls (no core is free), and a lone in-process call parks instead. */
const DEFAULT_POLL_MICROS = 200;

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
  private readonly maxProcesses: number;
  private readonly recycleAfterCalls: number;
  private readonly recycleAboveMb: number;
  private readonly quarantineMs: number;
  private readonly userConfig: UserConfig;
  private readonly home: string;
  private readonly warn: (message: string) => void;
  private readonly warned = new Set<string>();
  private keys: MinisignPublicKey[] | undefined;
  /** Why the workspace config cannot be used; only the workspace's plugins are refused for it. */
  private readonly workspaceConfigProblem: PluginError | undefined;
  /** Verdicts of discovery's signature checks, by plugin dir and file identities. */
  private readonly verdicts = new Map<string, { identity: string; error: PluginError | undefined }>();
  private readonly schemaVerdicts = new SchemaVerdicts();

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
    if (options.grants !== undefined && (typeof options.grants !== 'object' || options.grants === null || Array.isArray(options.grants))) {
      throw new PluginError(ErrorCode.USAGE, 'Loader option grants must be an object keyed by plugin name.');
    }
    const grants = [['grant', options.grant], ...Object.entries(options.grants ?? {}).map(([name, g]) => [`grants.${name}`, g])] as const;
    for (const [label, grant] of grants) {
      const problem = grant === undefined ? undefined : grantProblem(grant);
      if (problem !== undefined) throw new PluginError(ErrorCode.USAGE, `Loader option ${label} ${problem}.`);
    }
    const own = options.ownBuild;
    if (own !== undefined && (typeof own !== 'object' || own === null || typeof own.dir !== 'string' || ![own.manifestSha256, own.librarySha256].every((d) => typeof d === 'string' && /^[0-9a-f]{64}$/.test(d)))) {
      throw new PluginError(ErrorCode.USAGE, 'Loader option ownBuild must be {dir, manifestSha256, librarySha256} with sha256 hex digests.');
    }
    this.maxConcurrency = positiveInteger(options.maxConcurrency, 'maxConcurrency', Math.max(1, os.availableParallelism()));
    this.pollMicros = integerOption(options.pollMicros, 'pollMicros', DEFAULT_POLL_MICROS, 0);
    this.maxOutputBytes = positiveInteger(options.maxOutputBytes, 'maxOutputBytes', DEFAULT_MAX_OUTPUT_BYTES);
    this.timeoutMs = positiveInteger(options.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    this.maxMemoryMb = positiveInteger(options.maxMemoryMb, 'maxMemoryMb', DEFAULT_MAX_MEMORY_MB);
    this.maxProcesses = positiveInteger(options.maxProcesses, 'maxProcesses', DEFAULT_MAX_PROCESSES);
    this.recycleAfterCalls = integerOption(options.recycleAfterCalls, 'recycleAfterCalls', 0, 0);
    this.recycleAboveMb = integerOption(options.recycleAboveMb, 'recycleAboveMb', Math.floor(this.maxMemoryMb / 2), 0);
    this.quarantineMs = integerOption(options.quarantineMs, 'quarantineMs', DEFAULT_QUARANTINE_MS, 0);
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, { code: 'SKILLPLUG_WARNING' }));
    this.workspace = canonicalOrAbsoluteSync(options.workspace ?? process.cwd());
    const home = options.home ?? os.homedir();
    this.home = home;
    const readConfig = options.readConfig !== false;
    this.userConfig = readConfig ? readConfigFile(userConfigPath(home)) : {};
    const workspaceFile = workspaceConfigPath(this.workspace);
    let workspaceConfig: UserConfig = {};
    try {
      if (readConfig) workspaceConfig = readConfigFile(workspaceFile);
    } catch (err) {
      // A repository's broken config must not take the user's own plugins down with it.
      if (!isPluginError(err)) throw err;
      this.workspaceConfigProblem = err;
      this.warn(`${err.message} Until then the workspace's plugins are refused; your own plugins still load.`);
    }
    this.security = mergeSecurity(
      this.userConfig,
      workspaceConfig,
      { requireSignature: options.requireSignature, trustedKeys: options.trustedKeys, strict: options.strict, sandbox: options.sandbox },
      this.warn,
      workspaceFile,
    );
    for (const dir of options.pluginsDirs ?? []) this.addTrustedDir(dir);
    if (options.defaultDirs !== false) {
      const env = options.pluginDirsEnv ?? (options.home === undefined ? process.env : {});
      const onIgnored = (variable: string, value: string): void => this.warnOnce(`${variable}=${JSON.stringify(value)} is not an absolute path, so it is ignored and its default plugin dir is used.`);
      for (const dir of defaultTrustedDirs(this.workspace, home, { env, onIgnored })) this.addDir(dir.path, dir.kind);
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

  /** What the user grants plugin `name`: the user config's, `grants[name]` and `grant`, merged. */
  grantFor(name: string): SandboxGrant {
    return mergeGrants(...this.ownGrants(name), this.options.grant);
  }

  // The grants given to this plugin by name (config, then options), as opposed to the one for every plugin.
  private ownGrants(name: string): (SandboxGrant | undefined)[] {
    return [this.userConfig.plugins?.[name]?.grant, this.options.grants?.[name]];
  }

  // Whether the plugin has a grant of its own, asked once per plugin of a listing without building the list.
  private hasOwnGrant(name: string): boolean {
    return this.userConfig.plugins?.[name]?.grant !== undefined || this.options.grants?.[name] !== undefined;
  }

  private permissionContext(pluginDir: string): PermissionContext {
    return { workspace: this.workspace, pluginDir, protectedPaths: this.protectedPaths() };
  }

  private protectedPaths(): string[] {
    return [
      ...PROTECTED_WORKSPACE_ENTRIES.map((entry) => path.join(this.workspace, entry)),
      ...this.dirs.map((d) => d.path),
      canonicalOrAbsoluteSync(path.dirname(userConfigPath(this.home))),
    ];
  }

  /**
   * What the plugin in `dir` asks for (its plugin.json `permissions`), what the user granted of it,
   * what is missing, and paths that can never be granted. Reads files only; no plugin code runs.
   */
  permissionReport(dir: string, manifest: PluginManifest): PermissionReport {
    return assessPermissions(manifest.permissions, this.grantFor(manifest.name), this.permissionContext(canonicalOrAbsoluteSync(dir)));
  }

  /**
   * {@link permissionReport} of each plugin this loader discovered (undefined where it has no valid
   * manifest), judged at one moment: paths the reports share are resolved once, not once per plugin.
   * Each report is its caller's own, unless `shared`: then plugins that ask for nothing get one report
   * object between them, to read and not to change (list prints it for a thousand plugins).
   */
  permissionReports(plugins: readonly DiscoveredPlugin[], options: { shared?: boolean } = {}): (PermissionReport | undefined)[] {
    const context = { workspace: this.workspace, protectedPaths: this.protectedPaths(), probe: memoizedPathProbe() };
    // A plugin that asks for nothing, with no grant of its own, gets the report every such plugin gets
    // (reading the workspace decides it; its own dir plays no part): judged once, then copied.
    let asksNothing: PermissionReport | undefined;
    const reports: (PermissionReport | undefined)[] = [];
    for (let i = 0; i < plugins.length; i++) {
      const p = plugins[i] as DiscoveredPlugin;
      const manifest = p.manifest;
      if (!manifest) reports.push(undefined);
      else if (manifest.permissions !== undefined || this.hasOwnGrant(manifest.name)) {
        // Discovery's path of a plugin with a manifest is already canonical.
        reports.push(assessPermissions(manifest.permissions, this.grantFor(manifest.name), { ...context, pluginDir: p.path }));
      } else {
        asksNothing ??= assessPermissions(undefined, this.grantFor(manifest.name), { ...context, pluginDir: p.path });
        reports.push(options.shared === true ? asksNothing : copyPermissionReport(asksNothing));
      }
    }
    return reports;
  }

  // Up front, in every isolation and sandbox mode: a plugin never runs with less than it asked for.
  private checkPermissions(dir: string, manifest: PluginManifest): EffectivePermissions {
    const context = this.permissionContext(dir);
    const report = assessPermissions(manifest.permissions, this.grantFor(manifest.name), context);
    if (!fullyGranted(report)) throw permissionDenied(manifest.name, dir, report);
    return effectivePermissions(report, context);
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

  /**
   * Every native plugin in the trusted dirs, good and broken, judged from files alone (no plugin
   * code runs) and by the policy in force: a plugin that would be refused at load is listed with that
   * error. Agent Plugins (status `agent-plugin`) are left out unless `agentPlugins` is true.
   */
  async discoverPlugins(options: { agentPlugins?: boolean } = {}): Promise<DiscoveredPlugin[]> {
    await this.checkOwnership(this.dirs.map((d) => d.path)).catch((err: PluginError) => this.warnOnce(err.message));
    const all = await discoverPluginsNoting(this.dirs, signatureLikeEntries);
    const found = all.filter((p) => p.status !== 'agent-plugin');
    const lock = this.lockState();
    const judge = async (p: DiscoveredPlugin & { manifest: PluginManifest }, verify: boolean): Promise<DiscoveredPlugin> => {
      try {
        await this.checkPlacement(p.manifest, p.path, p.trustedDir, lock, found);
        if (verify) await this.verdictFor(p, lock);
        return p;
      } catch (err) {
        const e = asPluginError(err, ErrorCode.INTERNAL, `checking ${p.path}`);
        const status = e.data?.reason === 'untrusted-workspace' ? ('untrusted-workspace' as const) : ('error' as const);
        return { ...p, status, errors: [...p.errors, { code: e.code, message: e.message }] };
      }
    };
    // Most plugins need neither check: those are judged here and now, without a promise each (nor one awaited each).
    const judged = (options.agentPlugins === true ? all : found).slice();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < judged.length; i++) {
      const p = judged[i] as DiscoveredPlugin;
      if (p.status !== 'ok' || !p.manifest || !p.libraryPath) continue;
      const verify = this.verifiesUnsigned(p.trustedDir, lock.lock) || hasSignatures(p.path, p.libraryPath, pluginDirListing(p));
      if (verify || p.trustedDir.kind === 'workspace') {
        pending.push(
          judge(p as DiscoveredPlugin & { manifest: PluginManifest }, verify).then((verdict) => {
            judged[i] = verdict;
          }),
        );
      }
    }
    if (pending.length > 0) await Promise.all(pending);
    const seen = new Set<string>();
    for (let i = 0; i < judged.length; i++) judged[i] = this.withSchemaVerdict(judged[i] as DiscoveredPlugin, seen);
    this.schemaVerdicts.retain(seen);
    return judged;
  }

  // Schemas are compiled only for plugins that may load (after the policy above), once per
  // plugin.json content; entries of plugins gone from this discovery are dropped with them.
  private withSchemaVerdict(p: DiscoveredPlugin, seen: Set<string>): DiscoveredPlugin {
    const identity = manifestIdentity(p);
    if (p.status !== 'ok' || !p.manifest || !identity) return p;
    const file = path.join(p.path, MANIFEST_FILE);
    seen.add(file);
    const problems = this.schemaVerdicts.judge(file, identity, p.manifest);
    if (problems.length === 0) return p;
    const errors = problems.map((message) => ({ code: ErrorCode.INVALID_MANIFEST, message }));
    const { manifest: _dropped, ...rest } = p;
    return { ...rest, status: 'error', errors };
  }

  /** The workspace lock, whether the user recorded it as theirs, and why it is unusable if it is. */
  private lockState(): LockState {
    try {
      const read = readLockWithDigest(this.workspace);
      if (!read) return { userOwned: false };
      return { lock: read.lock, userOwned: this.userConfig.pinned_locks?.[this.workspace] === read.sha256 };
    } catch (err) {
      if (!isPluginError(err)) throw err;
      this.warnOnce(`${err.message} Until then the workspace's plugins are refused; your own plugins still load.`);
      return { userOwned: false, problem: err };
    }
  }

  /** Refuses a workspace plugin when the workspace's config or lock is broken, or when it shadows or rolls back one of the user's. */
  private async checkPlacement(manifest: PluginManifest, dir: string, trusted: TrustedDir, lock: LockState, found?: DiscoveredPlugin[]): Promise<void> {
    if (trusted.kind !== 'workspace') return;
    for (const problem of [this.workspaceConfigProblem, lock.problem]) {
      if (problem) throw new PluginError(problem.code, `Workspace plugin "${manifest.name}" (${dir}) is refused: ${problem.message}`, { plugin: manifest.name, path: dir, data: { reason: 'workspace-file', file: problem.path } });
    }
    const userDirs = this.dirs.filter((d) => d.kind === 'user');
    // An Agent Plugin of the same name has no code to shadow.
    const installed = (found ?? (await discoverPlugins(userDirs))).filter((p) => p.trustedDir.kind === 'user' && p.status !== 'agent-plugin');
    const pinned = lock.lock && lock.userOwned ? lock.lock.plugins : [];
    checkWorkspacePlugin({ name: manifest.name, version: manifest.version, dir, kind: trusted.kind }, { installed, pinned, allowShadowing: this.security.allowShadowing });
  }

  // Discovery re-checks signatures only when a plugin's files change (serve rediscovers often); called only for plugins that are verified.
  private async verdictFor(p: DiscoveredPlugin, lock: LockState): Promise<void> {
    const manifestPath = path.join(p.path, MANIFEST_FILE);
    const libraryPath = p.libraryPath as string;
    const identity = `${fileIdentities(p.path)}|${lock.lock ? JSON.stringify(lock.lock) : '-'}|${lock.userOwned}`;
    const cached = this.verdicts.get(p.path);
    if (cached?.identity === identity) {
      if (cached.error) throw cached.error;
      return;
    }
    let error: PluginError | undefined;
    try {
      const lookup = await findLibrary(p.path, (p.manifest as PluginManifest).name);
      const lookupPath = lookup.found ? lookup.path : libraryPath;
      // Listing stays quiet about keys you do not trust; loading says it.
      await this.verify({ dir: p.path, trusted: p.trustedDir, manifest: p.manifest as PluginManifest, manifestPath, manifestBytes: readManifestBytes(manifestPath), lookupPath, libraryPath }, lock, false);
    } catch (err) {
      error = asPluginError(err, ErrorCode.INTERNAL, `verifying ${p.path}`);
    }
    this.verdicts.set(p.path, { identity, error });
    if (error) throw error;
  }

  // Whether a plugin from `trusted` is verified even without a signature; one that carries any is verified always.
  private verifiesUnsigned(trusted: TrustedDir, lock: LockFile | undefined): boolean {
    const untrustedWorkspace = trusted.kind === 'workspace' && !this.workspaceTrusted();
    return this.security.requireSignature || lock !== undefined || untrustedWorkspace;
  }

  /**
   * Verifies signatures, the statement and the lock as the policy in force requires; returns the
   * library bytes it checked (the ones to load). Throws `E_SIGNATURE`, `E_INTEGRITY` or `E_UNTRUSTED_PATH`.
   */
  private async verify(v: VerifyInput, lockState: LockState, warnUnknownKeys = true): Promise<Buffer> {
    const { dir, trusted, manifest } = v;
    const name = manifest.name;
    const lock = lockState.lock;
    const workspacePlugin = trusted.kind === 'workspace';
    const untrustedWorkspace = workspacePlugin && !this.workspaceTrusted();
    const pinnedByUser = workspacePlugin && lockState.userOwned && lock !== undefined && lockEntryFor(lock, this.workspace, dir) !== undefined;
    // Read once: these exact bytes are verified, hashed and then loaded from a private copy.
    const libraryBytes = await readFile(v.libraryPath);
    const keys = await this.trustedKeys();
    const files = { manifestPath: v.manifestPath, manifestBytes: v.manifestBytes, libraryPath: v.lookupPath, libraryBytes, dir, name, version: manifest.version };
    const required = this.security.requireSignature && !this.isOwnBuild(dir, v.manifestBytes, libraryBytes);
    const trust = await (await signatures()).checkPluginTrust(files, keys, required && !workspacePlugin);
    if (warnUnknownKeys) for (const keyId of trust.unknownKeys) this.warnOnce(`plugin "${name}" is signed by key ${keyId}, which you do not trust; it loads as if unsigned.`);
    if (untrustedWorkspace && !trust.bound) {
      throw new PluginError(ErrorCode.UNTRUSTED_PATH, this.untrustedWorkspaceHint(dir), { plugin: name, path: dir, data: { reason: 'untrusted-workspace', workspace: this.workspace } });
    }
    if (required && workspacePlugin && !trust.bound && !pinnedByUser) {
      throw new PluginError(
        ErrorCode.SIGNATURE,
        `Workspace plugin "${name}" (${dir}) has no signed statement binding its name, version and files, and your lock does not pin it; signatures are required. Sign it with "skillplug sign" using a key you trust (this writes skillplug-statement.json), or pin it with "skillplug lock".`,
        { plugin: name, path: dir, data: { reason: 'not-bound' } },
      );
    }
    if (lock) checkLock(lock, this.workspace, dir, name, v.manifestBytes, libraryBytes);
    return libraryBytes;
  }

  // The exact bytes the author's own build wrote, in the dir it wrote them to: nothing else is exempt.
  private isOwnBuild(dir: string, manifestBytes: Buffer, libraryBytes: Buffer): boolean {
    const own = this.options.ownBuild;
    if (!own || canonicalOrAbsoluteSync(own.dir) !== dir) return false;
    return sha256(manifestBytes) === own.manifestSha256 && sha256(libraryBytes) === own.librarySha256;
  }

  private untrustedWorkspaceHint(dir: string): string {
    return `${dir} is in the plugin dir of workspace ${this.workspace}, which you have not trusted: plugins that arrive with a repository do not run until you say so. Run "skillplug trust ${this.workspace}" if you trust this workspace, or sign the plugin with "skillplug sign" using a key you trust (a signed skillplug-statement.json binds its name, version and files).`;
  }

  /**
   * Resolves a plugin reference: a name found in the trusted dirs (explicit dirs first, then the
   * workspace's, then the user's), or a path to a plugin directory. Throws `E_NOT_FOUND`.
   */
  async findPlugin(ref: string): Promise<DiscoveredPlugin> {
    if (typeof ref !== 'string' || ref.length === 0) throw new PluginError(ErrorCode.USAGE, 'A plugin name or path is required.');
    const looksLikePath = ref.includes('/') || ref.includes(path.sep) || ref.startsWith('.');
    const plugins = (await discoverPlugins(this.dirs)).filter((p) => p.status !== 'agent-plugin');
    if (!looksLikePath) {
      const named = byPrecedence(plugins).filter((p) => p.name === ref);
      // A workspace plugin refused for shadowing yields the name to the user's own plugin.
      const lock = named.length > 1 ? this.lockState() : { userOwned: false };
      let match = named[0];
      for (const p of named) {
        if (!p.manifest || (await this.checkPlacement(p.manifest, p.path, p.trustedDir, lock, plugins).then(() => true, () => false))) {
          match = p;
          break;
        }
      }
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
    if (!lookup.found) throw new PluginError(ErrorCode.INVALID_STRUCTURE, lookup.issue.message, { plugin: name, path: canonical, ...(lookup.issue.data ? { data: lookup.issue.data } : {}) });
    const libraryPath = await canonicalOrAbsolute(lookup.path);
    if (!isInside(libraryPath, trusted.path)) {
      throw new PluginError(
        ErrorCode.UNTRUSTED_PATH,
        `The library of plugin "${name}" (${lookup.path}) resolves to ${libraryPath}, outside the trusted dir ${trusted.path}. Copy the library into the plugin directory instead of linking to it.`,
        { plugin: name, path: libraryPath },
      );
    }
    await this.checkOwnership([trusted.path, canonical, manifestPath, libraryPath], name);

    const lock = this.lockState();
    await this.checkPlacement(manifest, canonical, trusted, lock);
    let loadPath = libraryPath;
    let copy: PrivateCopy | undefined;
    let libraryBytes: Buffer | undefined;
    if (this.verifiesUnsigned(trusted, lock.lock) || hasSignatures(canonical, lookup.path)) {
      libraryBytes = await this.verify({ dir: canonical, trusted, manifest, manifestPath, manifestBytes, lookupPath: lookup.path, libraryPath }, lock);
      copy = await (await import('../plugin/private-copy.js')).writePrivateCopy(libraryBytes, path.basename(libraryPath));
      loadPath = copy.path;
    }
    try {
      for (const field of ['input_schema', 'output_schema'] as const) {
        // Compiled once here, for this manifest object: calls validate with the same compiled schema.
        const compiled = manifest[field] === undefined ? undefined : compileSchema(manifest[field]);
        if (compiled && !compiled.ok) {
          throw new PluginError(ErrorCode.INVALID_MANIFEST, `${manifestPath}: "${field}" is not a valid JSON Schema: ${compiled.problem}. Fix plugin.json.`, {
            plugin: name,
            path: canonical,
            data: { field },
          });
        }
      }
      const permissions = this.checkPermissions(canonical, manifest);
      await loaderSeams.afterVerify?.({ dir: canonical, libraryPath });
      return await this.open(canonical, loadPath, manifest, copy, libraryBytes, permissions);
    } catch (err) {
      copy?.dispose();
      throw err;
    }
  }

  private async open(dir: string, libraryPath: string, manifest: PluginManifest, copy: PrivateCopy | undefined, verifiedBytes: Buffer | undefined, permissions: EffectivePermissions): Promise<NativePluginTrait> {
    const onClosed = copy ? () => copy.dispose() : undefined;
    if (this.isolation === 'none') {
      await this.probeLoadInHost(dir, libraryPath, manifest, verifiedBytes, permissions);
      // Imported on demand: only in-process loading needs the FFI library.
      const { InProcessPlugin } = await import('../in-process/index.js');
      return InProcessPlugin.open({ dir, libraryPath, manifestName: manifest.name, manifest, maxOutputBytes: this.maxOutputBytes, maxConcurrency: this.maxConcurrency, pollMicros: this.pollMicros, onClosed, timeoutMs: this.timeoutMs });
    }
    const { IsolatedPlugin } = await import('../host/isolated.js');
    // A build that answered before starts no host until its first call.
    const { metadataKey, readCachedMetadata, writeCachedMetadata } = await metadataCache();
    const key = metadataKey(verifiedBytes ?? (await readFile(libraryPath)), manifest.name);
    const known = await readCachedMetadata(key);
    const plugin = await IsolatedPlugin.open({
      ...this.isolatedOptions(dir, libraryPath, manifest, permissions),
      onClosed,
    }, known && 'metadata' in known ? known.metadata : undefined);
    if (!known) await writeCachedMetadata(key, { metadata: plugin.metadata });
    return plugin;
  }

  // What every isolated host of this loader gets, whether it serves calls or only probes a load.
  private isolatedOptions(dir: string, libraryPath: string, manifest: PluginManifest, permissions: EffectivePermissions): IsolatedOpenOptions {
    return {
      dir,
      libraryPath,
      manifestName: manifest.name,
      manifest,
      permissions,
      workspace: this.workspace,
      maxOutputBytes: this.maxOutputBytes,
      maxConcurrency: this.maxConcurrency,
      pollMicros: this.pollMicros,
      timeoutMs: this.timeoutMs,
      maxMemoryMb: this.maxMemoryMb,
      maxProcesses: this.maxProcesses,
      sandbox: this.security.sandbox,
      env: this.options.env,
      onWarning: (m) => this.warnOnce(m),
      onLog: this.options.onLog,
      onPluginLog: this.options.onPluginLog,
      recycleAfterCalls: this.recycleAfterCalls,
      recycleAboveMb: this.recycleAboveMb,
      quarantineMs: this.quarantineMs,
    };
  }

  /**
   * dlopen runs a library's constructors on the calling thread and nothing can interrupt them, so
   * before a build first loads in-process it loads once in a host under the loader's deadline: a
   * build whose constructors or metadata block fails with E_TIMEOUT instead of hanging this process.
   * Builds that answered before (the metadata registry) skip it. Without a C compiler (no host) it is skipped.
   */
  private async probeLoadInHost(dir: string, libraryPath: string, manifest: PluginManifest, verifiedBytes: Buffer | undefined, permissions: EffectivePermissions): Promise<void> {
    const { metadataKey, readCachedMetadata, writeCachedMetadata } = await metadataCache();
    const key = metadataKey(verifiedBytes ?? (await readFile(libraryPath)), manifest.name);
    const known = await readCachedMetadata(key);
    if (known && 'metadata' in known) return;
    const { IsolatedPlugin } = await import('../host/isolated.js');
    let probe: NativePluginTrait;
    try {
      probe = await IsolatedPlugin.open({
        ...this.isolatedOptions(dir, libraryPath, manifest, permissions),
        maxConcurrency: 1,
        pollMicros: 0,
        // In-process code runs unsandboxed anyway; the probe only asks whether loading finishes.
        sandbox: 'off',
      });
    } catch (err) {
      if (err instanceof PluginError && err.code === ErrorCode.HOST_UNAVAILABLE) return;
      throw err;
    }
    await probe.close();
    await writeCachedMetadata(key, { metadata: probe.metadata });
  }
}

/** The workspace lock as the loader sees it. */
interface LockState {
  lock?: LockFile;
  /** The lock's digest is the one `skillplug lock` recorded in the user's config. */
  userOwned: boolean;
  /** The lock exists but cannot be used. */
  problem?: PluginError;
}

/** A plugin's files, as verification needs them. */
interface VerifyInput {
  dir: string;
  trusted: TrustedDir;
  manifest: PluginManifest;
  manifestPath: string;
  manifestBytes: Buffer;
  /** The library's path as found in the plugin dir (its signature sits beside it). */
  lookupPath: string;
  /** The library's canonical path (what is read). */
  libraryPath: string;
}

/** Identities (inode, size, times) of every entry under a plugin dir: any change to any file changes it. */
function fileIdentities(dir: string): string {
  const parts: string[] = [];
  const walk = (rel: string, depth: number): void => {
    if (depth > 16 || parts.length > 4096) return;
    let entries: string[];
    try {
      entries = readdirSync(path.join(dir, rel)).sort();
    } catch {
      parts.push(`${rel}:unlistable`);
      return;
    }
    for (const entry of entries) {
      const child = path.join(rel, entry);
      try {
        const info = lstatSync(path.join(dir, child), { bigint: true });
        parts.push(`${child}:${info.mode}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`);
        if (info.isDirectory()) walk(child, depth + 1);
      } catch {
        parts.push(`${child}:gone`);
      }
    }
  };
  walk('', 0);
  return parts.join('/');
}

// Loaded on demand, like the two below: listing never needs the metadata registry.
const metadataCache = (): Promise<typeof import('../discovery/metadata-cache.js')> => import('../discovery/metadata-cache.js');

// Loaded on demand: signature checking pulls in crypto that most loads never need.
const signatures = (): Promise<typeof import('../signing/plugin-signatures.js')> => import('../signing/plugin-signatures.js');

function readManifestBytes(file: string): Buffer {
  const read = readManifestBytesSync(file);
  if ('issue' in read) throw new PluginError(ErrorCode.INVALID_MANIFEST, read.issue.message, { path: file });
  return read.bytes;
}
