import { spawn } from 'node:child_process';
import { cp, readdir, readFile, rename, rm, stat, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, PluginError } from '../errors.js';
import { PLUGIN_ABI_VERSION } from '../abi/types.js';
import { isPlainObject } from '../abi/codec.js';
import { packageRoot } from '../toolchain.js';
import { unknownFieldWarnings } from '../manifest/unknown-fields.js';
import type { ValidationWarning } from '../manifest/vtcode.js';
import { MANIFEST_FILE, findLibrary, libraryCandidates, libraryFilename, readManifest } from '../manifest/index.js';
import { sha256 } from '../signing/lock.js';
import { writeMetadataHeader } from './metadata-header.js';

/** How a plugin project is built. */
export type BuildTool = 'cargo' | 'make' | 'cc';

/** Options for {@link buildPlugin}. */
export interface BuildOptions {
  /** The plugin project (holds plugin.json and Cargo.toml, a Makefile or C sources). */
  dir: string;
  /** Where to assemble `<name>/`. Default: `<dir>/dist`. */
  out?: string;
  /** Receives the build tool's output as it comes. */
  onOutput?: (text: string) => void;
  /** Called about once a second while the build runs, with the elapsed milliseconds. */
  onProgress?: (elapsedMs: number) => void;
}

/** What {@link buildPlugin} produced. */
export interface BuildResult {
  name: string;
  tool: BuildTool;
  /** The assembled plugin dir: plugin.json, the library under its canonical name, README/scripts/templates. */
  pluginDir: string;
  libraryPath: string;
  buildMs: number;
  /** sha256 (hex) of the plugin.json and the library written into `pluginDir`. */
  manifestSha256: string;
  librarySha256: string;
  /** plugin.json fields nothing reads (likely typos), each with the name it probably meant. */
  warnings: ValidationWarning[];
}

const OUTPUT_TAIL_BYTES = 8192;

function runTool(command: string, args: string[], cwd: string, options: BuildOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    let tail = '';
    const started = Date.now();
    const ticker = options.onProgress ? setInterval(() => options.onProgress?.(Date.now() - started), 1000) : undefined;
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer): void => {
      const text = chunk.toString();
      tail = (tail + text).slice(-OUTPUT_TAIL_BYTES);
      options.onOutput?.(text);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (ticker) clearInterval(ticker);
      reject(
        new PluginError(ErrorCode.BUILD_FAILED, `Cannot run ${command}: ${err.code === 'ENOENT' ? 'it is not installed' : err.message}. Install it to build this plugin.`, {
          path: cwd,
          data: { command },
        }),
      );
    });
    child.on('close', (code) => {
      if (ticker) clearInterval(ticker);
      if (code === 0) resolve();
      else {
        reject(
          new PluginError(ErrorCode.BUILD_FAILED, `${[command, ...args].join(' ')} failed in ${cwd} (exit ${code}):\n${tail.trim().split('\n').slice(-30).join('\n')}`, {
            path: cwd,
            data: { command, exitCode: code },
          }),
        );
      }
    });
  });
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Builds a plugin project with cargo, make or cc and assembles a loadable plugin dir from it. */
export async function buildPlugin(options: BuildOptions): Promise<BuildResult> {
  const dir = path.resolve(options.dir);
  const reading = await readManifest(dir);
  if (!reading.manifest) {
    throw new PluginError(ErrorCode.INVALID_MANIFEST, reading.issues.map((i) => i.message).join(' '), { path: dir, data: { issues: reading.issues } });
  }
  const name = reading.manifest.name;
  const started = Date.now();
  let tool: BuildTool;
  let libraryPath: string | undefined;
  if (await exists(path.join(dir, 'Cargo.toml'))) {
    tool = 'cargo';
    await runTool('cargo', ['build', '--release'], dir, options);
    const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(dir, process.env.CARGO_TARGET_DIR) : path.join(dir, 'target');
    for (const file of libraryCandidates(name.replace(/[^A-Za-z0-9_]/g, '_'))) {
      const candidate = path.join(targetDir, 'release', file);
      if (await exists(candidate)) libraryPath ??= candidate;
    }
  } else if (await exists(path.join(dir, 'Makefile'))) {
    tool = 'make';
    await writeMetadataHeader(dir, await readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
    await runTool('make', [], dir, options);
  } else {
    const sources = (await readdir(dir)).filter((f) => f.endsWith('.c')).sort();
    if (sources.length === 0) {
      throw new PluginError(ErrorCode.BUILD_FAILED, `${dir} has no Cargo.toml, Makefile or .c files: nothing to build.`, { path: dir });
    }
    tool = 'cc';
    await writeMetadataHeader(dir, await readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
    const output = path.join(dir, libraryFilename(name));
    await runTool(process.env.CC ?? 'cc', ['-O2', '-shared', '-fPIC', `-I${path.join(packageRoot(), 'sdk', 'c')}`, '-o', output, ...sources], dir, options);
  }
  if (!libraryPath) {
    const lookup = await findLibrary(dir, name);
    if (!lookup.found) throw new PluginError(ErrorCode.BUILD_FAILED, `The ${tool} build succeeded but left no library: ${lookup.issue.message}`, { path: dir });
    libraryPath = lookup.path;
  }
  const buildMs = Date.now() - started;
  const out = path.resolve(options.out ?? path.join(dir, 'dist'));
  const pluginDir = path.join(out, name);
  // Assemble beside the target and swap in, so a running host keeps its old library file.
  const stage = `${pluginDir}.tmp-${process.pid}`;
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true });
  const manifestBytes = Buffer.from(await vtcodeReadableManifest(dir, reading.raw));
  await writeFile(path.join(stage, MANIFEST_FILE), manifestBytes);
  // A copy, not a move: the build tool's own output stays where it looks for it next time.
  const libraryBytes = await readFile(libraryPath);
  await writeFile(path.join(stage, libraryFilename(name)), libraryBytes, { mode: 0o755 });
  for (const extra of ['README.md', 'scripts', 'templates']) {
    if (await exists(path.join(dir, extra))) await cp(path.join(dir, extra), path.join(stage, extra), { recursive: true });
  }
  await rm(pluginDir, { recursive: true, force: true });
  await rename(stage, pluginDir);
  const warnings = unknownFieldWarnings(reading.raw, path.join(dir, MANIFEST_FILE));
  return {
    name,
    tool,
    pluginDir,
    libraryPath: path.join(pluginDir, libraryFilename(name)),
    buildMs,
    manifestSha256: sha256(manifestBytes),
    librarySha256: sha256(libraryBytes),
    warnings,
  };
}

/**
 * plugin.json for the built plugin dir: the project's bytes as they are when they carry a valid
 * `abi_version`, else with `"abi_version": 1` added after `version`, because VT Code's listing
 * parses plugin.json as metadata and skips a plugin without it. A wrong `abi_version` is refused.
 */
async function vtcodeReadableManifest(dir: string, raw: unknown): Promise<Buffer | string> {
  const file = path.join(dir, MANIFEST_FILE);
  if (!isPlainObject(raw)) throw new PluginError(ErrorCode.INVALID_MANIFEST, `${file} must hold a JSON object.`, { path: dir });
  const abi = raw.abi_version;
  if (abi !== undefined) {
    if (abi !== PLUGIN_ABI_VERSION) {
      throw new PluginError(ErrorCode.INVALID_MANIFEST, `${file}: "abi_version" is ${JSON.stringify(abi)}; this build targets ABI ${PLUGIN_ABI_VERSION}. Set "abi_version": ${PLUGIN_ABI_VERSION}.`, {
        path: dir,
        data: { field: 'abi_version' },
      });
    }
    return readFile(file);
  }
  // No prototype, so a "__proto__" key in plugin.json is kept as data.
  const withAbi: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [key, value] of Object.entries(raw)) {
    withAbi[key] = value;
    if (key === 'version') withAbi.abi_version = PLUGIN_ABI_VERSION;
  }
  withAbi.abi_version ??= PLUGIN_ABI_VERSION;
  return `${JSON.stringify(withAbi, null, 2)}\n`;
}
