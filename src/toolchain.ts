import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { constants, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ErrorCode, PluginError } from './errors.js';

const run = promisify(execFile);

/** The package root: the nearest dir above this module holding skillplug's package.json. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'skillplug') return dir;
    } catch {
      // Not here; keep climbing.
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new PluginError(ErrorCode.INTERNAL, 'Cannot find the skillplug package root above its own modules.');
    dir = parent;
  }
}


/** skillplug's per-user cache dir: `$SKILLPLUG_CACHE_DIR`, else `$XDG_CACHE_HOME/skillplug`, else `~/.cache/skillplug`. */
export function cacheDir(): string {
  if (process.env.SKILLPLUG_CACHE_DIR) return path.resolve(process.env.SKILLPLUG_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME ? path.resolve(process.env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'skillplug');
}

/** A native helper skillplug compiles from its own C source on first use. */
interface NativeArtifact {
  /** What it is, for messages. */
  title: string;
  /** Source, relative to the package root. */
  source: string;
  /** File name of the build. */
  output: string;
  /** Compiler flags before `-o`. */
  flags: string[];
  /** Environment variable that names a prebuilt copy instead. */
  override: string;
  /** What the user can do instead when no compiler exists. */
  fallback: string;
}

const HOST: NativeArtifact = {
  title: "skillplug's isolated plugin host",
  source: path.join('src', 'host', 'skillplug-host.c'),
  output: 'skillplug-host',
  flags: ['-O2', '-pthread'],
  override: 'SKILLPLUG_HOST',
  fallback: 'or use isolation "none" for plugins you fully trust',
};

const PUMP: NativeArtifact = {
  title: "skillplug's in-process call pump",
  source: path.join('src', 'abi', 'pump.c'),
  output: process.platform === 'darwin' ? 'libskillplug-pump.dylib' : 'libskillplug-pump.so',
  flags: ['-O2', '-shared', '-fPIC', '-pthread'],
  override: 'SKILLPLUG_PUMP',
  fallback: 'in-process calls then use koffi\'s own thread pool',
};

const ADDON: NativeArtifact = {
  title: "skillplug's host addon (a tiny Node-API addon: spawns hosts without forking this process, maps their shared lanes)",
  source: path.join('src', 'host', 'host-addon.c'),
  output: 'skillplug-host-addon.node',
  flags: ['-O2', '-shared', '-fPIC'],
  override: 'SKILLPLUG_HOST_ADDON',
  fallback: 'hosts are then forked by Node and isolated calls keep to the socket',
};

const LAUNCHER: NativeArtifact = {
  title: "skillplug's sandbox launcher (joins the plugin's cgroup, sets its resource limits)",
  source: path.join('src', 'sandbox', 'skillplug-launch.c'),
  output: 'skillplug-launch',
  flags: ['-O2'],
  override: 'SKILLPLUG_LAUNCHER',
  fallback: 'or use sandbox "off" for plugins you fully trust',
};

const pending = new Map<NativeArtifact, Promise<string>>();

function ensureBuilt(artifact: NativeArtifact): Promise<string> {
  let build = pending.get(artifact);
  if (!build) {
    build = buildArtifact(artifact).catch((err: unknown) => {
      pending.delete(artifact);
      throw err;
    });
    pending.set(artifact, build);
  }
  return build;
}

/**
 * The path of the native host binary, compiling it on first use with the system C compiler into
 * the cache (keyed by the source's hash). `$SKILLPLUG_HOST` names a prebuilt host instead.
 * Throws `E_HOST_UNAVAILABLE` with what to do when it cannot be built.
 */
export function ensureHostBinary(): Promise<string> {
  return ensureBuilt(HOST);
}

/** The path of the launcher that puts a host into its cgroup and limits, built like the host. Throws `E_HOST_UNAVAILABLE`. */
export function ensureLauncherBinary(): Promise<string> {
  return ensureBuilt(LAUNCHER);
}

/** The path of the addon that spawns isolated hosts and maps their shared lanes, built like the host. Throws `E_HOST_UNAVAILABLE`. */
export function ensureHostAddon(): Promise<string> {
  return ensureBuilt(ADDON);
}

/** The path of the in-process call pump library, built like the host. Throws `E_HOST_UNAVAILABLE`. */
export function ensurePumpLibrary(): Promise<string> {
  return ensureBuilt(PUMP);
}

async function buildArtifact(artifact: NativeArtifact): Promise<string> {
  const override = process.env[artifact.override];
  if (override) {
    try {
      await access(override, constants.R_OK);
      return path.resolve(override);
    } catch {
      throw new PluginError(ErrorCode.HOST_UNAVAILABLE, `${artifact.override} names ${override}, which cannot be read. Unset it to let skillplug build ${artifact.title}.`, { path: override });
    }
  }
  const sourcePath = path.join(packageRoot(), artifact.source);
  let source: Buffer;
  try {
    source = await readFile(sourcePath);
  } catch {
    throw new PluginError(ErrorCode.HOST_UNAVAILABLE, `The source of ${artifact.title}, ${sourcePath}, is missing; the skillplug install is incomplete. Reinstall skillplug.`, { path: sourcePath });
  }
  const key = createHash('sha256').update(source).update(`${process.platform}-${process.arch}`).digest('hex').slice(0, 16);
  const dir = path.join(cacheDir(), `${path.basename(artifact.output, path.extname(artifact.output))}-${key}`);
  const binary = path.join(dir, artifact.output);
  try {
    await access(binary, constants.R_OK);
    return binary;
  } catch {
    // Not built yet.
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = `${binary}.${process.pid}.${Date.now()}.tmp`;
  const compiler = process.env.CC ?? 'cc';
  const libs = process.platform === 'linux' ? ['-ldl'] : [];
  try {
    await run(compiler, [...artifact.flags, '-o', temp, sourcePath, ...libs], { timeout: 120_000 });
    await chmod(temp, 0o755);
    // Rename is atomic, so concurrent first uses never see a half-written build.
    await rename(temp, binary);
  } catch (err) {
    await rm(temp, { force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const why = e.code === 'ENOENT' ? `no C compiler was found (tried "${compiler}")` : `${compiler} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-5).join(' | ')}`;
    throw new PluginError(
      ErrorCode.HOST_UNAVAILABLE,
      `Cannot build ${artifact.title}: ${why}. Install a C compiler (e.g. "apt-get install gcc libc6-dev"), point CC at one, set ${artifact.override} to a prebuilt copy, ${artifact.fallback}.`,
      { path: sourcePath, cause: err },
    );
  }
  return binary;
}
