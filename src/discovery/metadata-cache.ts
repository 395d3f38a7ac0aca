// A registry of library metadata keyed by library hash: each build is asked once, in an isolated host.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PluginMetadata } from '../abi/types.js';
import { ErrorCode, PluginError, type ErrorCode as Code } from '../errors.js';
import { cacheDir } from '../host/build.js';
import { sha256 } from '../signing/lock.js';
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

/**
 * The library metadata of a discovered plugin, from the cache when this exact build (library
 * sha256 and plugin name) was probed before; otherwise `probe` runs it once and the answer is kept.
 */
export async function cachedMetadata(plugin: DiscoveredPlugin, probe: () => Promise<PluginMetadata>): Promise<CachedMetadata & { cached: boolean }> {
  if (!plugin.libraryPath || !plugin.name) throw new PluginError(ErrorCode.INVALID_STRUCTURE, `Plugin at ${plugin.path} has no usable library to probe.`, { path: plugin.path });
  const key = sha256(Buffer.concat([await readFile(plugin.libraryPath), Buffer.from(`\0${plugin.name}`)]));
  const file = entryPath(key);
  try {
    return { ...(JSON.parse(await readFile(file, 'utf8')) as CachedMetadata), cached: true };
  } catch {
    // Not probed yet.
  }
  let entry: CachedMetadata;
  try {
    entry = { metadata: await probe() };
  } catch (err) {
    if (!(err instanceof PluginError) || !BUILD_FAULTS.has(err.code)) throw err;
    entry = { error: { code: err.code, message: err.message } };
  }
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(entry));
  await rename(temp, file);
  return { ...entry, cached: false };
}
