import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { constants, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ErrorCode, PluginError } from '../errors.js';

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

/** The host's C source, shipped with the package. */
export function hostSourcePath(): string {
  return path.join(packageRoot(), 'src', 'host', 'skillplug-host.c');
}

/** skillplug's per-user cache dir: `$SKILLPLUG_CACHE_DIR`, else `$XDG_CACHE_HOME/skillplug`, else `~/.cache/skillplug`. */
export function cacheDir(): string {
  if (process.env.SKILLPLUG_CACHE_DIR) return path.resolve(process.env.SKILLPLUG_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME ? path.resolve(process.env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'skillplug');
}

let pending: Promise<string> | undefined;

/**
 * The path of the native host binary, compiling it on first use with the system C compiler into
 * the cache (keyed by the source's hash). `$SKILLPLUG_HOST` names a prebuilt host instead.
 * Throws `E_HOST_UNAVAILABLE` with what to do when it cannot be built.
 */
export function ensureHostBinary(): Promise<string> {
  pending ??= buildHost().catch((err: unknown) => {
    pending = undefined;
    throw err;
  });
  return pending;
}

async function buildHost(): Promise<string> {
  const override = process.env.SKILLPLUG_HOST;
  if (override) {
    try {
      await access(override, constants.X_OK);
      return path.resolve(override);
    } catch {
      throw new PluginError(ErrorCode.HOST_UNAVAILABLE, `SKILLPLUG_HOST names ${override}, which is not an executable file. Unset it to let skillplug build its host.`, { path: override });
    }
  }
  const sourcePath = hostSourcePath();
  let source: Buffer;
  try {
    source = await readFile(sourcePath);
  } catch {
    throw new PluginError(ErrorCode.HOST_UNAVAILABLE, `The isolated host's source ${sourcePath} is missing; the skillplug install is incomplete. Reinstall skillplug.`, { path: sourcePath });
  }
  const key = createHash('sha256').update(source).update(`${process.platform}-${process.arch}`).digest('hex').slice(0, 16);
  const dir = path.join(cacheDir(), `host-${key}`);
  const binary = path.join(dir, 'skillplug-host');
  try {
    await access(binary, constants.X_OK);
    return binary;
  } catch {
    // Not built yet.
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = `${binary}.${process.pid}.${Date.now()}.tmp`;
  const compiler = process.env.CC ?? 'cc';
  const libs = process.platform === 'linux' ? ['-ldl'] : [];
  try {
    await run(compiler, ['-O2', '-pthread', '-o', temp, sourcePath, ...libs], { timeout: 120_000 });
    await chmod(temp, 0o755);
    // Rename is atomic, so concurrent first uses never see a half-written host.
    await rename(temp, binary);
  } catch (err) {
    await rm(temp, { force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const why = e.code === 'ENOENT' ? `no C compiler was found (tried "${compiler}")` : `${compiler} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-5).join(' | ')}`;
    throw new PluginError(
      ErrorCode.HOST_UNAVAILABLE,
      `Cannot build skillplug's isolated plugin host: ${why}. Install a C compiler (e.g. "apt-get install gcc libc6-dev"), point CC at one, set SKILLPLUG_HOST to a prebuilt host, or use isolation "none" for plugins you fully trust.`,
      { path: sourcePath, cause: err },
    );
  }
  return binary;
}
