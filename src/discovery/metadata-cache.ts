// A registry of library metadata keyed by library hash: each build is asked once, in an isolated host.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PluginMetadata } from '../abi/types.js';
import { ErrorCode, PluginError, type ErrorCode as Code } from '../errors.js';
import { cacheDir } from '../toolchain.js';
import type { DiscoveredPlugin } from './index.js';

/** What the registry knows about one library build. */
export type CachedMetadata = { metadata: PluginMetadata } | { error: { code: Code; message: string } };

/** Faults that belong to the build itself, so they are remembered until the file changes. */
const BUILD_FAULTS: ReadonlySet<Code> = new Set<Code>([
  ErrorCode.CRASHED,
  ErrorCode.RESOURCE_LIMIT,
  ErrorCode.TIMEOUT,
  ErrorCode.ABI_MISMATCH,
  ErrorCode.MISSING_SYMBOL,
  ErrorCode.INVALID_METADATA,
  ErrorCode.LOAD_FAILED,
]);

function entryPath(key: string): string {
  return path.join(cacheDir(), 'metadata', `${key}.json`);
}

/** The registry key of one build: the library's bytes and the plugin's name. */
export function metadataKey(libraryBytes: Uint8Array, name: string): string {
  return createHash('sha256').update(libraryBytes).update(`\0${name}`).digest('hex');
}

/** What the registry remembers about a build, if anything. */
export async function readCachedMetadata(key: string): Promise<CachedMetadata | undefined> {
  try {
    return JSON.parse(await readFile(entryPath(key), 'utf8')) as CachedMetadata;
  } catch {
    return undefined;
  }
}

/** Remembers what a build said (or how it failed). Best effort: a cache that cannot be written is skipped. */
export async function writeCachedMetadata(key: string, entry: CachedMetadata): Promise<void> {
  const file = entryPath(key);
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(temp, JSON.stringify(entry));
    await rename(temp, file);
  } catch {
    // The registry only saves time; without it every build is asked again.
  }
}

/**
 * The library metadata of a discovered plugin, from the cache when this exact build (library
 * sha256 and plugin name) was probed before; otherwise `probe` runs it once and the answer is kept.
 */
export async function cachedMetadata(plugin: DiscoveredPlugin, probe: () => Promise<PluginMetadata>): Promise<CachedMetadata & { cached: boolean }> {
  if (!plugin.libraryPath || !plugin.name) throw new PluginError(ErrorCode.INVALID_STRUCTURE, `Plugin at ${plugin.path} has no usable library to probe.`, { path: plugin.path });
  const key = metadataKey(await readFile(plugin.libraryPath), plugin.name);
  const known = await readCachedMetadata(key);
  if (known) return { ...known, cached: true };
  let entry: CachedMetadata;
  try {
    entry = { metadata: await probe() };
  } catch (err) {
    if (!(err instanceof PluginError) || !BUILD_FAULTS.has(err.code)) throw err;
    entry = { error: { code: err.code, message: err.message } };
  }
  await writeCachedMetadata(key, entry);
  return { ...entry, cached: false };
}
