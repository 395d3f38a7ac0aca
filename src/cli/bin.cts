#!/usr/bin/env node
// The `skillplug` bin: runs the bundled CLI (built by scripts/bundle-cli.mjs) from V8's code cache, so
// a command does not parse the whole bundle again each time. Node 22 keeps such a cache itself
// (module.enableCompileCache); on Node 20 this file does, in skillplug's per-user cache dir.
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';

const CLI_BUNDLE = path.join(__dirname, 'skillplug.cjs');
/** The MCP SDK's bundle, as the CLI bundle requires it (serve alone does). */
const SDK_REQUEST = './mcp-sdk.cjs';

// As toolchain.ts cacheDir(): `$SKILLPLUG_CACHE_DIR`, else `$XDG_CACHE_HOME/skillplug`, else `~/.cache/skillplug`.
function cacheDir(): string {
  if (process.env.SKILLPLUG_CACHE_DIR) return path.resolve(process.env.SKILLPLUG_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME ? path.resolve(process.env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'skillplug');
}

// A short stable name for a path (FNV-1a): each installed copy keeps its own cache files.
function pathTag(file: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < file.length; i++) hash = Math.imul(hash ^ file.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16);
}

/**
 * Runs a bundle of scripts/bundle-cli.mjs, whose text is the function Node's loader would wrap a CommonJS
 * module in, compiled from (and, when missing or stale, into) its code cache.
 */
function runCached(file: string, requireFromFile: NodeJS.Require): unknown {
  const source = readFileSync(file, 'utf8');
  // V8 checks a cache against its own version and flags, and the source only by length: the file's identity keys the rest.
  const info = statSync(file);
  const dir = path.join(cacheDir(), 'code-cache');
  const prefix = `${path.basename(file, '.cjs')}-${pathTag(file)}-`;
  const cacheFile = path.join(dir, `${prefix}${process.version}-${process.arch}-${info.size}-${Math.trunc(info.mtimeMs)}-${info.ino}.v8`);
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(source, { filename: file, ...(cachedData ? { cachedData } : {}) });
  if (cachedData === undefined || script.cachedDataRejected) {
    // Written once the command has run, so the functions it compiled are cached too; older builds' files go. Best effort.
    process.once('exit', () => {
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const temp = `${cacheFile}.${process.pid}.tmp`;
        writeFileSync(temp, script.createCachedData(), { mode: 0o600 });
        renameSync(temp, cacheFile);
        for (const old of readdirSync(dir)) if (old.startsWith(prefix) && old.endsWith('.v8') && old !== path.basename(cacheFile)) rmSync(path.join(dir, old), { force: true });
      } catch {
        // The cache only saves time.
      }
    });
  }
  const bundleModule = { exports: {} };
  script.runInThisContext()(bundleModule.exports, requireFromFile, bundleModule, file, path.dirname(file));
  return bundleModule.exports;
}

const builtIn = (Module as typeof Module & { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
if (builtIn) {
  builtIn(path.join(cacheDir(), 'compile-cache'));
  require(CLI_BUNDLE);
} else {
  const plain = Module.createRequire(CLI_BUNDLE);
  let sdk: unknown;
  // The SDK bundle is cached the same way when serve first requires it.
  const cliRequire = Object.assign((id: string): unknown => (id === SDK_REQUEST ? (sdk ??= runCached(path.join(__dirname, SDK_REQUEST), plain)) : plain(id)), plain);
  runCached(CLI_BUNDLE, cliRequire);
}
