import { realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readConfigFile, userConfigPath, writeConfigFile } from '../config/index.js';
import { ErrorCode, PluginError } from '../errors.js';
import { PLUGIN_NAME_PATTERN } from '../manifest/index.js';
import { describePermissionSet, grantCommand, type PermissionGrant, type PermissionReport } from '../sandbox/permissions.js';
import { ExitCode, escapeTerminal, writeOut } from './output.js';

/** Flags of `skillplug grant` and `skillplug revoke`. */
export interface GrantFlags {
  network?: boolean;
  unixSockets?: boolean;
  read?: string[] | undefined;
  write?: string[] | undefined;
  all?: boolean;
  json?: boolean;
}

/** A granted path as stored: `${workspace}` paths as written, others absolute and resolved. */
export function grantPath(p: string): string {
  if (p.includes('${workspace}')) return p;
  const absolute = path.resolve(p);
  try {
    return realpathSync(absolute);
  } catch {
    return absolute;
  }
}

/** Grant flags for one run (`--grant-network`, `--grant-unix-sockets`, `--grant-read P`, `--grant-write P`), or undefined when none. */
export function oneRunGrant(values: Record<string, unknown>): PermissionGrant | undefined {
  const grant: PermissionGrant = {};
  if (values['grant-network'] === true) grant.network = true;
  if (values['grant-unix-sockets'] === true) grant.unix_sockets = true;
  const read = values['grant-read'] as string[] | undefined;
  const write = values['grant-write'] as string[] | undefined;
  if (read?.length) grant.fs_read = read.map(grantPath);
  if (write?.length) grant.fs_write = write.map(grantPath);
  return Object.keys(grant).length > 0 ? grant : undefined;
}

function sortedUnique(list: string[]): string[] {
  return [...new Set(list)].sort();
}

/** `skillplug grant NAME …` and `skillplug revoke NAME …`: edits `plugins.NAME.grant` in the user config. */
export async function grantCommandRun(name: string, granting: boolean, flags: GrantFlags): Promise<number> {
  if (!PLUGIN_NAME_PATTERN.test(name)) throw new PluginError(ErrorCode.USAGE, `${JSON.stringify(name)} is not a plugin name.`);
  const read = (flags.read ?? []).map(grantPath);
  const write = (flags.write ?? []).map(grantPath);
  const nothing = !flags.network && !flags.unixSockets && read.length === 0 && write.length === 0;
  if (granting && (flags.all || nothing)) {
    throw new PluginError(ErrorCode.USAGE, '"skillplug grant" needs what to grant: --network, --unix-sockets, --read PATH, --write PATH (repeatable).');
  }
  if (!granting && flags.all === !nothing) {
    throw new PluginError(ErrorCode.USAGE, '"skillplug revoke" needs what to revoke: --network, --unix-sockets, --read PATH, --write PATH, or --all.');
  }
  const file = userConfigPath(os.homedir());
  const config = readConfigFile(file);
  const plugins = { ...(config.plugins ?? {}) };
  const entry = { ...(plugins[name] ?? {}) };
  const grant: PermissionGrant = { ...(entry.grant ?? {}) };
  if (granting) {
    if (flags.network) grant.network = true;
    if (flags.unixSockets) grant.unix_sockets = true;
    if (read.length > 0) grant.fs_read = sortedUnique([...(grant.fs_read ?? []), ...read]);
    if (write.length > 0) grant.fs_write = sortedUnique([...(grant.fs_write ?? []), ...write]);
  } else if (flags.all) {
    for (const key of Object.keys(grant)) delete grant[key as keyof PermissionGrant];
  } else {
    if (flags.network) delete grant.network;
    if (flags.unixSockets) delete grant.unix_sockets;
    if (read.length > 0) grant.fs_read = (grant.fs_read ?? []).filter((p) => !read.includes(p));
    if (write.length > 0) grant.fs_write = (grant.fs_write ?? []).filter((p) => !write.includes(p));
    if (grant.fs_read?.length === 0) delete grant.fs_read;
    if (grant.fs_write?.length === 0) delete grant.fs_write;
  }
  if (Object.keys(grant).length > 0) entry.grant = grant;
  else delete entry.grant;
  if (Object.keys(entry).length > 0) plugins[name] = entry;
  else delete plugins[name];
  config.plugins = plugins;
  writeConfigFile(file, config);
  const now = { network: grant.network === true, unix_sockets: grant.unix_sockets === true, fs_read: grant.fs_read ?? [], fs_write: grant.fs_write ?? [] };
  if (flags.json) await writeOut(`${JSON.stringify({ plugin: name, grant: now, config: file })}\n`);
  else await writeOut(`Plugin "${name}" is now granted: ${describePermissionSet(now) || 'nothing beyond the default (read the workspace)'} (${file}).\n`);
  return ExitCode.OK;
}

/** Permissions in JSON output: requested, granted, missing and refused. */
export function permissionsJson(report: PermissionReport): Record<string, unknown> {
  return { requested: report.requested, granted: report.granted, missing: report.missing, refused: report.refused };
}

/** Human lines for a plugin's permissions, each starting with `indent`. */
export function permissionLines(name: string, report: PermissionReport, indent: string): string[] {
  const asked = describePermissionSet(report.requested);
  const missing = describePermissionSet(report.missing);
  const verdict = missing || report.refused.length > 0 ? '' : ' (all granted)';
  const lines = [`${indent}permissions:     ${escapeTerminal(asked || 'nothing beyond the default')}${verdict}`];
  if (missing) lines.push(`${indent}NOT GRANTED:     ${escapeTerminal(missing)}; grant with: ${escapeTerminal(grantCommand(name, report.missing))}`);
  for (const r of report.refused) lines.push(`${indent}REFUSED:         ${escapeTerminal(r.path)} (${r.reason === 'symlink' ? `symbolic link at ${escapeTerminal(r.at)}` : `inside protected ${escapeTerminal(r.at)}`})`);
  return lines;
}

/** A short marker for `list`: empty when everything requested is granted. */
export function permissionMarker(report: PermissionReport): string {
  const missing = describePermissionSet(report.missing);
  const parts = [...(missing ? [`needs grant: ${missing}`] : []), ...(report.refused.length > 0 ? [`refused: ${report.refused.map((r) => r.path).join(', ')}`] : [])];
  return escapeTerminal(parts.join('; '));
}
