import { watch } from 'node:fs';
import path from 'node:path';
import { describeLogEvent } from '../abi/plugin-log.js';
import type { JsonObject, PluginResult } from '../abi/types.js';
import { asPluginError, ErrorCode } from '../errors.js';
import { PluginLoader, type PluginLoaderOptions } from '../loader/index.js';
import { buildPlugin, type BuildResult } from './build.js';

/** Options for {@link devLoop}. */
export interface DevOptions {
  /** The plugin project. */
  dir: string;
  /** Input for each run. */
  input: JsonObject;
  /** The plugin's `config` for each run. Default: the user config's for this plugin. */
  config?: JsonObject;
  /** Run once and return instead of watching. */
  once?: boolean;
  /** Loader options for each fresh load (isolation, sandbox, timeout…). */
  loader?: PluginLoaderOptions;
  /** Where lines go. */
  write: (line: string) => void;
  /** Where notices about policy go (the CLI's stderr). Default: `write`. */
  notice?: (line: string) => void;
  /** Stops watching. */
  signal?: AbortSignal;
}

// Build output, and the files editors write beside the one being saved (vim's .swp and 4913 probe,
// emacs' #autosave# and .#lock, JetBrains' safe-write copies, kate's swap, backups): not a change.
const IGNORED = new RegExp(
  [
    '^(target|dist|build|\\.git|node_modules)(/|$)',
    // Written by the build itself from plugin.json.
    '^plugin_meta\\.h$',
    '\\.(so|dylib|dll|o|a|tmp|swp|swo|swx|swn|bak|orig|kate-swp)$',
    '~$',
    '(^|/)4913$',
    '(^|/)\\.?#[^/]*$',
    '___jb_(tmp|old|bak)___$',
  ].join('|'),
);

/** Whether a changed path (relative to the project, `/`-separated) is build output or an editor's scratch file. */
export function isWatchNoise(relative: string): boolean {
  return IGNORED.test(relative);
}

/**
 * A loader for the plugin an author's own build just assembled: it trusts only the build's output
 * dir, and with signatures required it exempts exactly the bytes that build wrote there.
 */
export function ownBuildLoader(built: BuildResult, options: PluginLoaderOptions = {}): PluginLoader {
  return new PluginLoader({
    defaultDirs: false,
    ...options,
    pluginsDirs: [path.dirname(built.pluginDir)],
    ownBuild: { dir: built.pluginDir, manifestSha256: built.manifestSha256, librarySha256: built.librarySha256 },
  });
}

/** What to say, once, when signatures are required and an author's own unsigned build runs anyway. */
export function unsignedBuildNotice(built: BuildResult): string {
  return `!!! signatures are required, but this runs ${built.pluginDir} UNSIGNED: it is the build just made from ${path.dirname(path.dirname(built.pluginDir))}, and only these exact bytes are exempt. Everything else still needs a signature; sign before you ship: skillplug sign ${built.pluginDir} --key KEY`;
}

/**
 * Builds, loads in a fresh host and runs a plugin project with a sample input; with watching on,
 * does it again on every save. Resolves with 0 when the last run succeeded, 1 otherwise.
 */
export async function devLoop(options: DevOptions): Promise<number> {
  const dir = path.resolve(options.dir);
  const out = path.join(dir, 'dist');
  let noticed = false;
  const runOnce = async (): Promise<number> => {
    const t0 = Date.now();
    try {
      const built = await buildPlugin({ dir, out, onProgress: (ms) => options.write(`  building… ${Math.round(ms / 1000)} s`) });
      for (const w of built.warnings) options.write(`warning[${w.code}]: ${w.message}`);
      // The plugin's stderr/stdout lines, as they arrive (isolated plugins; in-process ones write straight to this stderr).
      const loader = ownBuildLoader(built, { ...options.loader, onPluginLog: (event) => options.write(describeLogEvent(event)) });
      if (loader.security.requireSignature && !noticed) {
        noticed = true;
        (options.notice ?? options.write)(unsignedBuildNotice(built));
      }
      const t1 = Date.now();
      const plugin = await loader.loadPlugin(built.pluginDir);
      const t2 = Date.now();
      let result: PluginResult;
      let t3: number;
      try {
        result = await plugin.execute({ input: options.input, workspace_root: loader.workspace, config: options.config ?? loader.pluginConfig(built.name) });
        t3 = Date.now();
      } finally {
        // Closing reads the plugin's log to the end, so its lines come before the result.
        await plugin.close();
      }
      options.write(`${result.success ? '✔' : '✘'} ${built.name}: built with ${built.tool} in ${built.buildMs} ms · loaded in ${t2 - t1} ms · ran in ${t3 - t2} ms (total ${t3 - t0} ms)`);
      options.write(JSON.stringify(result, null, 2));
      return result.success ? 0 : 1;
    } catch (err) {
      const e = asPluginError(err, ErrorCode.INTERNAL, 'dev loop failed');
      options.write(`✘ error[${e.code}]: ${e.message}${e.failure?.stderrTail ? `\n${e.failure.stderrTail}` : ''}`);
      return 1;
    }
  };
  if (options.once) return runOnce();
  // The watcher starts before the first build: Node's recursive watch on Linux sets up asynchronously.
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  let status = 1;
  let settle: (() => void) | undefined;
  const trigger = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    void runOnce().then((code) => {
      status = code;
      running = false;
      if (again) {
        again = false;
        trigger();
      } else settle?.();
    });
  };
  const watcher = watch(dir, { recursive: true }, (_event, file) => {
    if (file && isWatchNoise(String(file).split(path.sep).join('/'))) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      options.write(`change: ${file ?? '(unknown)'}`);
      trigger();
    }, 150);
  });
  await new Promise<void>((resolve) => {
    settle = resolve;
    trigger();
  });
  settle = undefined;
  options.write(`watching ${dir} for changes (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      watcher.close();
      if (timer) clearTimeout(timer);
      resolve();
    };
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener('abort', stop, { once: true });
  });
  return status;
}
