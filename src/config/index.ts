import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPlainObject } from '../abi/codec.js';
import type { JsonObject } from '../abi/types.js';
import { ErrorCode, PluginError } from '../errors.js';
import { SANDBOX_MODES, type SandboxMode } from '../sandbox/index.js';
import { grantProblem, type PermissionGrant } from '../sandbox/permissions.js';
import { readErrorCode, readSmallRegularFileSync } from '../safe-read.js';

/** The config file name, in `~/.vtcode/` (the user's) and `<workspace>/.vtcode/` (restrictions only). */
export const CONFIG_FILE = 'skillplug.json';

/** The user's config: `~/.vtcode/skillplug.json`. */
export interface UserConfig {
  /** Refuse plugins that are not signed by a trusted key. */
  require_signature?: boolean;
  /** Trusted minisign public keys: paths to .pub files, or the key's base64 line. */
  trusted_keys?: string[];
  /** Canonical workspace paths whose plugin dirs the user trusts. */
  trusted_workspaces?: string[];
  /** Refuse (instead of warn about) plugin files and dirs writable by group/others or owned by another user. */
  strict?: boolean;
  /** Default sandbox mode. */
  sandbox?: SandboxMode;
  /** Plugin names a workspace plugin may shadow (by default a workspace plugin named like one you installed is refused). */
  allow_shadowing?: string[];
  /** sha256 of each workspace's lock file as `skillplug lock` wrote it, by canonical workspace path: only such a lock is yours. */
  pinned_locks?: Record<string, string>;
  /** Per-plugin settings, by plugin name: `config` passed to the plugin, `grant` what it may do beyond the default. */
  plugins?: Record<string, { config?: JsonObject; grant?: PermissionGrant }>;
}

/** The user config path under a home dir. */
export function userConfigPath(home: string = os.homedir()): string {
  return path.join(home, '.vtcode', CONFIG_FILE);
}

/** The workspace config path. */
export function workspaceConfigPath(workspace: string): string {
  return path.join(workspace, '.vtcode', CONFIG_FILE);
}

function configError(file: string, problem: string): PluginError {
  return new PluginError(ErrorCode.CONFIG, `${file}: ${problem}. Fix or remove the file.`, { path: file });
}

function stringList(value: unknown, file: string, key: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw configError(file, `"${key}" must be an array of strings`);
  return value as string[];
}

function checkGrant(grant: unknown, file: string, key: string): void {
  const problem = grantProblem(grant);
  if (problem !== undefined) throw configError(file, `"${key}" ${problem}`);
}

/** Reads and checks a config file; a missing file is an empty config. Throws `E_CONFIG`. */
export function readConfigFile(file: string): UserConfig {
  let text: string;
  try {
    text = readSmallRegularFileSync(file).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw configError(file, `cannot be read (${readErrorCode(err)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw configError(file, `is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(raw)) throw configError(file, 'must hold a JSON object');
  const config: UserConfig = {};
  for (const key of ['require_signature', 'strict'] as const) {
    if (raw[key] === undefined) continue;
    if (typeof raw[key] !== 'boolean') throw configError(file, `"${key}" must be true or false`);
    config[key] = raw[key] as boolean;
  }
  const keys = stringList(raw.trusted_keys, file, 'trusted_keys');
  if (keys) config.trusted_keys = keys;
  const workspaces = stringList(raw.trusted_workspaces, file, 'trusted_workspaces');
  if (workspaces) config.trusted_workspaces = workspaces;
  const shadowing = stringList(raw.allow_shadowing, file, 'allow_shadowing');
  if (shadowing) config.allow_shadowing = shadowing;
  if (raw.pinned_locks !== undefined) {
    if (!isPlainObject(raw.pinned_locks) || !Object.values(raw.pinned_locks).every((v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v))) {
      throw configError(file, '"pinned_locks" must map workspace paths to sha256 hex digests');
    }
    config.pinned_locks = raw.pinned_locks as Record<string, string>;
  }
  if (raw.sandbox !== undefined) {
    if (!SANDBOX_MODES.includes(raw.sandbox as SandboxMode)) throw configError(file, `"sandbox" must be one of ${SANDBOX_MODES.join(', ')}`);
    config.sandbox = raw.sandbox as SandboxMode;
  }
  if (raw.plugins !== undefined) {
    if (!isPlainObject(raw.plugins)) throw configError(file, '"plugins" must be an object keyed by plugin name');
    for (const [name, entry] of Object.entries(raw.plugins)) {
      if (!isPlainObject(entry) || (entry.config !== undefined && !isPlainObject(entry.config))) {
        throw configError(file, `"plugins.${name}" must be an object whose "config" is a JSON object`);
      }
      if (entry.grant !== undefined) checkGrant(entry.grant, file, `plugins.${name}.grant`);
    }
    config.plugins = raw.plugins as UserConfig['plugins'];
  }
  return config;
}

/** Writes a config file atomically, readable by its owner only. */
export function writeConfigFile(file: string, config: UserConfig): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, file);
}

/** The security settings in force after merging user, workspace and explicit options. */
export interface EffectiveSecurity {
  requireSignature: boolean;
  trustedKeys: string[];
  trustedWorkspaces: string[];
  /** Plugin names a workspace plugin may shadow (user config only). */
  allowShadowing: string[];
  strict: boolean;
  sandbox: SandboxMode;
}

const SANDBOX_STRENGTH: Record<SandboxMode, number> = { off: 0, auto: 1, required: 2 };

/**
 * Merges settings. Explicit options and the user config may set anything; the workspace config
 * (it arrives with a cloned repo) may only tighten, never loosen, and never add trust.
 */
export function mergeSecurity(
  user: UserConfig,
  workspace: UserConfig,
  explicit: { requireSignature?: boolean | undefined; trustedKeys?: string[] | undefined; strict?: boolean | undefined; sandbox?: SandboxMode | undefined },
  warn: (message: string) => void,
  workspaceFile: string,
): EffectiveSecurity {
  const ignored = (['trusted_keys', 'trusted_workspaces', 'plugins', 'allow_shadowing', 'pinned_locks'] as const).filter((k) => workspace[k] !== undefined);
  if (workspace.require_signature === false) ignored.push('require_signature' as never);
  if (workspace.strict === false) ignored.push('strict' as never);
  const grants = Object.entries(workspace.plugins ?? {}).filter(([, entry]) => entry.grant !== undefined).map(([name]) => `plugins.${name}.grant`);
  if (grants.length > 0) warn(`${workspaceFile} tries to grant permissions (${grants.join(', ')}); only you can grant, in ${userConfigPath()} or with "skillplug grant", so these are ignored.`);
  if (ignored.length > 0) warn(`${workspaceFile} tries to set ${ignored.join(', ')}; a workspace config can only add restrictions, so these are ignored.`);
  const base = explicit.sandbox ?? user.sandbox ?? 'auto';
  const fromWorkspace = workspace.sandbox ?? 'off';
  return {
    requireSignature: (explicit.requireSignature ?? user.require_signature ?? false) || workspace.require_signature === true,
    trustedKeys: [...(user.trusted_keys ?? []), ...(explicit.trustedKeys ?? [])],
    trustedWorkspaces: user.trusted_workspaces ?? [],
    allowShadowing: user.allow_shadowing ?? [],
    strict: (explicit.strict ?? user.strict ?? false) || workspace.strict === true,
    sandbox: SANDBOX_STRENGTH[fromWorkspace] > SANDBOX_STRENGTH[base] ? fromWorkspace : base,
  };
}
