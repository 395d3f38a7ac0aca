// VT Code's own rules for finding and listing a native plugin, encoded independently of skillplug's
// code so tests can check skillplug's output against them. Read from vinhnx/VTCode 0.147.0:
//   crates/codegen/vtcode-skills/src/native_plugin.rs  (PluginLoader::library_filename,
//     get_alternative_library_names, find_library_file; PluginMetadata)
//   crates/codegen/vtcode-core/src/skills/loader.rs    (try_load_plugin_from_dir: the listing)
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

type Os = 'linux' | 'macos' | 'windows';

const osOf = (platform: NodeJS.Platform): Os => (platform === 'darwin' ? 'macos' : platform === 'win32' ? 'windows' : 'linux');

/** `library_filename(name)`: the loader's first candidate. */
function libraryFilename(name: string, os: Os): string {
  return os === 'macos' ? `lib${name}.dylib` : os === 'windows' ? `${name}.dll` : `lib${name}.so`;
}

/** The loader's candidates, in order: library_filename, then get_alternative_library_names of it. */
export function vtcodeLoaderCandidates(name: string, platform: NodeJS.Platform = process.platform): string[] {
  const os = osOf(platform);
  const first = libraryFilename(name, os);
  const alternatives = [first.startsWith('lib') ? first.slice(3) : `lib${first}`];
  // The extension is appended to the base that already has one, so these end in e.g. ".so.so".
  const base = first.startsWith('lib') ? first.slice(3) : first;
  const ext = os === 'macos' ? 'dylib' : os === 'windows' ? 'dll' : 'so';
  alternatives.push(`${base}.${ext}`, `lib${base}.${ext}`);
  return [first, ...alternatives];
}

/** The listing's accepted names: library_filename, else any of its fixed alternatives. */
export function vtcodeListingCandidates(name: string, platform: NodeJS.Platform = process.platform): string[] {
  const os = osOf(platform);
  return [libraryFilename(name, os), `lib${name}.dylib`, `${name}.dylib`, `lib${name}.so`, `${name}.so`, `${name}.dll`];
}

/** Problems VT Code's `PluginMetadata` deserializer (serde, unknown fields ignored) has with a JSON value. */
export function vtcodeMetadataProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ['not a JSON object'];
  const m = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const field of ['name', 'description', 'version']) if (typeof m[field] !== 'string') problems.push(`${field}: String required`);
  const abi = m.abi_version;
  if (typeof abi !== 'number' || !Number.isInteger(abi) || abi < 0 || abi > 0xffffffff) problems.push('abi_version: u32 required');
  for (const field of ['author', 'when_to_use', 'when_not_to_use']) {
    if (m[field] !== undefined && m[field] !== null && typeof m[field] !== 'string') problems.push(`${field}: Option<String>`);
  }
  const tools = m.allowed_tools;
  if (tools !== undefined && tools !== null && !(Array.isArray(tools) && tools.every((t) => typeof t === 'string'))) problems.push('allowed_tools: Option<Vec<String>>');
  if (m.thread_safe !== undefined && typeof m.thread_safe !== 'boolean') problems.push('thread_safe: bool (serde default only when absent)');
  return problems;
}

/**
 * What VT Code makes of a plugin dir: whether its listing shows it (plugin.json parses as metadata
 * and a listing name exists) and which file its loader would open (first existing loader candidate).
 */
export function vtcodeView(dir: string, platform: NodeJS.Platform = process.platform): { listed: boolean; problems: string[]; loaderLibrary?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path.join(dir, 'plugin.json'), 'utf8'));
  } catch (err) {
    return { listed: false, problems: [`plugin.json: ${(err as Error).message}`] };
  }
  const problems = vtcodeMetadataProblems(raw);
  if (problems.length > 0) return { listed: false, problems };
  const name = (raw as { name: string }).name;
  const listed = vtcodeListingCandidates(name, platform).some((f) => existsSync(path.join(dir, f)));
  const loaderLibrary = vtcodeLoaderCandidates(name, platform).find((f) => existsSync(path.join(dir, f)));
  return { listed, problems: listed ? [] : ['no library under a name the listing looks for'], ...(loaderLibrary ? { loaderLibrary } : {}) };
}
