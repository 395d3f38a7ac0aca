import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { isPlainObject } from '../abi/codec.js';

/** Every Agent Plugins (agent-plugins.org) manifest names its schema under this URL. */
export const AGENT_PLUGIN_SCHEMA_PREFIX = 'https://agent-plugins.org/schemas/';

const LIBRARY_EXTENSIONS = ['.so', '.dylib', '.dll'];

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Why `dir` holds an Agent Plugin (plugin.json + `skills/` + `mcp.json`, no code) rather than a
 * native plugin, or undefined when it does not. Native wins every tie, so a native plugin that lost
 * its library is still reported broken: any library-like file, or an `abi_version` in plugin.json,
 * makes the dir native. Otherwise an agent-plugins.org `$schema`, a `skills/` dir or an `mcp.json`
 * marks an Agent Plugin. `manifest` is plugin.json as parsed (anything, or undefined).
 */
export function agentPluginEvidence(dir: string, manifest: unknown): string[] | undefined {
  if (isPlainObject(manifest) && 'abi_version' in manifest) return undefined;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return undefined;
  }
  if (entries.some((e) => LIBRARY_EXTENSIONS.some((ext) => e.endsWith(ext)))) return undefined;
  const evidence: string[] = [];
  if (isPlainObject(manifest) && typeof manifest.$schema === 'string' && manifest.$schema.startsWith(AGENT_PLUGIN_SCHEMA_PREFIX)) evidence.push('$schema');
  if (entries.includes('skills') && isDir(path.join(dir, 'skills'))) evidence.push('skills/');
  if (entries.includes('mcp.json') && isFile(path.join(dir, 'mcp.json'))) evidence.push('mcp.json');
  return evidence.length > 0 ? evidence : undefined;
}
