import { lstatSync, realpathSync, type Stats } from 'node:fs';
import path from 'node:path';
import { ErrorCode, PluginError } from '../errors.js';
import type { PluginPermissions } from '../manifest/index.js';

/**
 * What the user grants a plugin, beyond the default (read the workspace, its own dir read-only,
 * a private /tmp). Paths may use `${workspace}`; a granted path covers everything under it.
 */
export interface PermissionGrant {
  /** Network access. */
  network?: boolean;
  /** `connect()` to Unix sockets in the dirs the plugin can see (e.g. a socket in the workspace). */
  unix_sockets?: boolean;
  /** Paths the plugin may read outside the workspace. */
  fs_read?: string[];
  /** Paths the plugin may write. */
  fs_write?: string[];
}

/** One side of a permission report: absolute, resolved paths. */
export interface PermissionSet {
  network: boolean;
  unix_sockets: boolean;
  fs_read: string[];
  fs_write: string[];
}

/** A requested path that can never be granted as written. */
export interface RefusedPath {
  /** The path as requested, expanded. */
  path: string;
  /** `symlink`: a component is a symbolic link; `protected`: a write into a dir kept read-only (e.g. `.git`). */
  reason: 'symlink' | 'protected';
  /** The symlinked component, or the protected path. */
  at: string;
}

/** What a plugin asks for, what the user granted of that, and what is missing. */
export interface PermissionReport {
  requested: PermissionSet;
  granted: PermissionSet;
  missing: PermissionSet;
  refused: RefusedPath[];
}

/** What a sandboxed plugin actually gets: only ever what it asked for and was granted. */
export interface EffectivePermissions {
  network: boolean;
  unix_sockets: boolean;
  /** Read-only binds. */
  read: string[];
  /** Writable binds. */
  write: string[];
  /** Existing paths inside writable binds that are re-bound read-only (`.git`, plugin dirs, config). */
  readOnlyInside: string[];
  /** Missing dirs inside writable binds that are covered by an empty read-only dir so they cannot be planted. */
  emptyInside: string[];
}

/** Where a plugin's permissions are judged. */
export interface PermissionContext {
  /** Canonical workspace root. */
  workspace: string;
  /** Canonical plugin dir. */
  pluginDir: string;
  /** Paths a plugin may never write: `.git`, `.vtcode`, `.agents`, the lock, the plugin dirs, the user's config dir. */
  protectedPaths: string[];
  /** How paths are looked at; a {@link memoizedPathProbe} lets many reports made at one moment share their walks. */
  probe?: PathProbe;
}

/** The two file-system questions a permission report asks. */
export interface PathProbe {
  /** lstat, or undefined when nothing is there. */
  lstat(p: string): Stats | undefined;
  /** {@link symlinkedComponent} of an absolute path. */
  symlinkedComponent(absolute: string): string | undefined;
}

const lstatOrUndefined = (p: string): Stats | undefined => lstatSync(p, { throwIfNoEntry: false });
const directProbe: PathProbe = { lstat: lstatOrUndefined, symlinkedComponent: (p) => symlinkedComponent(p) };

/** A probe that asks the file system once per path: for judging many plugins' requests at one moment. */
export function memoizedPathProbe(): PathProbe {
  const stats = new Map<string, Stats | undefined>();
  const links = new Map<string, string | undefined>();
  const lstat = (p: string): Stats | undefined => {
    if (!stats.has(p)) stats.set(p, lstatOrUndefined(p));
    return stats.get(p);
  };
  return {
    lstat,
    symlinkedComponent: (p) => {
      if (!links.has(p)) links.set(p, symlinkedComponent(p, lstat));
      return links.get(p);
    },
  };
}

/** The workspace entries no plugin may write, even with the workspace granted writable. */
export const PROTECTED_WORKSPACE_ENTRIES = ['.git', '.vtcode', '.agents', 'skillplug.lock.json'] as const;

/** Expands `${workspace}` and resolves a permission path against the workspace. */
export function expandPermissionPath(p: string, workspace: string): string {
  return path.resolve(workspace, p.split('${workspace}').join(workspace));
}

/** Whether `p` is `root` or lies under it (textually; pass resolved paths). */
export function within(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/** The first symlinked component of an absolute path, or undefined; components that do not exist end the walk. */
export function symlinkedComponent(absolute: string, lstat: (p: string) => Stats | undefined = lstatOrUndefined): string | undefined {
  const parts = absolute.split(path.sep).filter(Boolean);
  let at = path.parse(absolute).root;
  for (const part of parts) {
    at = path.join(at, part);
    const info = lstat(at);
    if (!info) return undefined;
    if (info.isSymbolicLink()) return at;
  }
  return undefined;
}

/** A grant root as the user meant it: expanded and, where it exists, resolved (the user chose it, links and all). */
function resolveGrantRoot(p: string, workspace: string): string {
  const expanded = expandPermissionPath(p, workspace);
  try {
    return realpathSync(expanded);
  } catch {
    return expanded;
  }
}

function emptySet(): PermissionSet {
  return { network: false, unix_sockets: false, fs_read: [], fs_write: [] };
}

/** Why a grant is malformed, or undefined when it is a well-formed {@link PermissionGrant}. */
export function grantProblem(grant: unknown): string | undefined {
  if (typeof grant !== 'object' || grant === null || Array.isArray(grant)) return 'must be an object like {"network":true,"fs_read":["/data"]}';
  const known = ['network', 'unix_sockets', 'fs_read', 'fs_write'];
  const g = grant as Record<string, unknown>;
  const unknown = Object.keys(g).filter((k) => !known.includes(k));
  if (unknown.length > 0) return `has unknown keys ${unknown.join(', ')} (known: ${known.join(', ')})`;
  for (const flag of ['network', 'unix_sockets']) if (g[flag] !== undefined && typeof g[flag] !== 'boolean') return `"${flag}" must be true or false`;
  for (const list of ['fs_read', 'fs_write']) {
    const paths = g[list];
    if (paths !== undefined && (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string' && p.length > 0))) return `"${list}" must be an array of non-empty paths`;
  }
  return undefined;
}

/** Merges grants: each adds to the others. */
export function mergeGrants(...grants: (PermissionGrant | undefined)[]): PermissionGrant {
  const merged: Required<PermissionGrant> = { network: false, unix_sockets: false, fs_read: [], fs_write: [] };
  for (const g of grants) {
    if (!g) continue;
    merged.network ||= g.network === true;
    merged.unix_sockets ||= g.unix_sockets === true;
    merged.fs_read.push(...(g.fs_read ?? []));
    merged.fs_write.push(...(g.fs_write ?? []));
  }
  return merged;
}

/**
 * Judges a plugin's request against the user's grant. Reads inside the workspace or the plugin's own
 * dir need no grant; everything else does. Every requested path is refused when a component of it is a
 * symlink (a bind would follow it anywhere), and writes into protected paths are refused.
 */
export function assessPermissions(requested: PluginPermissions | undefined, grant: PermissionGrant | undefined, context: PermissionContext): PermissionReport {
  const { workspace } = context;
  const probe = context.probe ?? directProbe;
  const report: PermissionReport = { requested: emptySet(), granted: emptySet(), missing: emptySet(), refused: [] };
  const readRoots = (grant?.fs_read ?? []).map((p) => resolveGrantRoot(p, workspace));
  const writeRoots = (grant?.fs_write ?? []).map((p) => resolveGrantRoot(p, workspace));
  for (const key of ['network', 'unix_sockets'] as const) {
    if (requested?.[key] !== true) continue;
    report.requested[key] = true;
    if (grant?.[key] === true) report.granted[key] = true;
    else report.missing[key] = true;
  }
  const judge = (key: 'fs_read' | 'fs_write', list: string[], covered: (p: string) => boolean): void => {
    for (const asked of list) {
      const p = expandPermissionPath(asked, workspace);
      if (report.requested[key].includes(p)) continue;
      report.requested[key].push(p);
      const link = probe.symlinkedComponent(p);
      if (link !== undefined) {
        report.refused.push({ path: p, reason: 'symlink', at: link });
        continue;
      }
      const guarded = key === 'fs_write' ? context.protectedPaths.find((g) => within(p, g)) : undefined;
      if (guarded !== undefined) {
        report.refused.push({ path: p, reason: 'protected', at: guarded });
        continue;
      }
      if (covered(p)) report.granted[key].push(p);
      else report.missing[key].push(p);
    }
  };
  judge('fs_read', requested?.fs_read ?? ['${workspace}'], (p) => within(p, workspace) || within(p, context.pluginDir) || readRoots.some((r) => within(p, r)) || writeRoots.some((r) => within(p, r)));
  judge('fs_write', requested?.fs_write ?? [], (p) => writeRoots.some((r) => within(p, r)));
  // A protected path that is a link cannot be re-bound read-only in place: the link itself stays replaceable.
  for (const w of report.granted.fs_write) {
    const link = context.protectedPaths.find((g) => within(g, w) && probe.lstat(g)?.isSymbolicLink());
    if (link !== undefined) report.refused.push({ path: w, reason: 'symlink', at: link });
  }
  return report;
}

/** A copy of a report that shares no object or array with it. */
export function copyPermissionReport(report: PermissionReport): PermissionReport {
  const copySet = (set: PermissionSet): PermissionSet => ({ network: set.network, unix_sockets: set.unix_sockets, fs_read: set.fs_read.slice(), fs_write: set.fs_write.slice() });
  return { requested: copySet(report.requested), granted: copySet(report.granted), missing: copySet(report.missing), refused: report.refused.map((r) => ({ ...r })) };
}

/** True when nothing requested is missing or refused. */
export function fullyGranted(report: PermissionReport): boolean {
  const m = report.missing;
  return !m.network && !m.unix_sockets && m.fs_read.length === 0 && m.fs_write.length === 0 && report.refused.length === 0;
}

/** What the sandbox binds for a fully granted report; protected paths inside writable binds stay read-only. */
export function effectivePermissions(report: PermissionReport, context: PermissionContext): EffectivePermissions {
  const write = report.granted.fs_write;
  const inside = context.protectedPaths.filter((g) => write.some((w) => within(g, w) && g !== w));
  const existing = (p: string): boolean => lstatSync(p, { throwIfNoEntry: false }) !== undefined;
  return {
    network: report.granted.network,
    unix_sockets: report.granted.unix_sockets,
    read: report.granted.fs_read,
    write,
    readOnlyInside: [...new Set(inside.filter(existing))],
    // A missing .git/.vtcode/.agents could be planted, then used by git or skillplug outside the sandbox.
    emptyInside: [...new Set(inside.filter((p) => !existing(p) && path.extname(p) === ''))],
  };
}

/** Quotes a word for a POSIX shell when it needs it. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(word) ? word : `'${word.split("'").join(`'\\''`)}'`;
}

/** The `skillplug grant` command that grants what is missing. */
export function grantCommand(name: string, missing: PermissionSet): string {
  const args = ['skillplug', 'grant', name];
  if (missing.network) args.push('--network');
  if (missing.unix_sockets) args.push('--unix-sockets');
  for (const p of missing.fs_read) args.push('--read', p);
  for (const p of missing.fs_write) args.push('--write', p);
  return args.map(shellWord).join(' ');
}

/** Short human form of a permission set, e.g. `network, write /ws/out`. */
export function describePermissionSet(set: PermissionSet): string {
  const parts: string[] = [];
  if (set.network) parts.push('network');
  if (set.unix_sockets) parts.push('unix sockets');
  for (const p of set.fs_read) parts.push(`read ${p}`);
  for (const p of set.fs_write) parts.push(`write ${p}`);
  return parts.join(', ');
}

/** The `E_PERMISSION_DENIED` error for a report that is not fully granted. */
export function permissionDenied(name: string, dir: string, report: PermissionReport): PluginError {
  const problems: string[] = [];
  const missing = describePermissionSet(report.missing);
  if (missing) problems.push(`it asks for ${missing}, which you have not granted it; to grant that, run: ${grantCommand(name, report.missing)} (or pass --grant-… flags for one run)`);
  for (const r of report.refused) {
    problems.push(
      r.reason === 'symlink'
        ? `${r.path} goes through the symbolic link ${r.at}, which a sandbox bind would follow anywhere; remove the link or make the plugin ask for the real path`
        : `it asks to write ${r.path}, inside ${r.at}, which plugins may never write (git hooks, plugin dirs and skillplug config run code outside the sandbox); ask for a path outside it`,
    );
  }
  return new PluginError(ErrorCode.PERMISSION_DENIED, `Plugin "${name}" (${dir}) was not loaded: ${problems.join('; ')}.`, {
    plugin: name,
    path: dir,
    data: { missing: report.missing, refused: report.refused, requested: report.requested, granted: report.granted, grant_command: missing ? grantCommand(name, report.missing) : null },
  });
}
