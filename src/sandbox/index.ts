import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PluginPermissions } from '../manifest/index.js';

const run = promisify(execFile);

/** `'auto'` sandboxes when it can and warns once when it cannot; `'required'` refuses to run unsandboxed; `'off'` never sandboxes. */
export type SandboxMode = 'auto' | 'required' | 'off';

/** The sandbox modes. */
export const SANDBOX_MODES: readonly SandboxMode[] = ['auto', 'required', 'off'];

/**
 * The user's cap on what plugins may be granted. A plugin gets the overlap of what it asks for
 * and this. Defaults: network allowed if asked, reads anywhere asked, writes only inside the workspace.
 */
export interface SandboxGrant {
  /** Allow network to plugins that ask for it. Default true. */
  network?: boolean;
  /** Roots under which requested reads are granted. Default: everything. */
  fs_read?: string[];
  /** Roots under which requested writes are granted. Default: `${workspace}`. */
  fs_write?: string[];
}

/** What a sandboxed plugin actually gets. */
export interface EffectivePermissions {
  network: boolean;
  read: string[];
  write: string[];
}

/** Expands `${workspace}` and resolves a permission path against the workspace. */
export function expandPermissionPath(p: string, workspace: string): string {
  return path.resolve(workspace, p.split('${workspace}').join(workspace));
}

function within(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/** The overlap of what a plugin asks for and what the user grants. */
export function effectivePermissions(requested: PluginPermissions | undefined, grant: SandboxGrant | undefined, workspace: string): EffectivePermissions {
  const expand = (list: string[]) => list.map((p) => expandPermissionPath(p, workspace));
  const readRoots = expand(grant?.fs_read ?? ['/']);
  const writeRoots = expand(grant?.fs_write ?? ['${workspace}']);
  const wantRead = expand(requested?.fs_read ?? ['${workspace}']);
  const wantWrite = expand(requested?.fs_write ?? []);
  return {
    network: (requested?.network ?? false) && (grant?.network ?? true),
    read: wantRead.filter((p) => readRoots.some((r) => within(p, r))),
    write: wantWrite.filter((p) => writeRoots.some((r) => within(p, r))),
  };
}

/** Whether bubblewrap can be used here. */
export interface SandboxSupport {
  available: boolean;
  /** The bwrap binary. */
  bwrap?: string;
  /** Why not, when unavailable. */
  reason?: string;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Keep looking.
    }
  }
  return undefined;
}

const probes = new Map<string, Promise<SandboxSupport>>();

/** Finds bwrap (or `$SKILLPLUG_BWRAP`) and checks once per process that it can make namespaces here. */
export function detectSandbox(): Promise<SandboxSupport> {
  if (process.platform !== 'linux') {
    return Promise.resolve({ available: false, reason: `no sandbox is implemented for ${process.platform} yet (Linux uses bubblewrap)` });
  }
  const configured = process.env.SKILLPLUG_BWRAP;
  const key = configured ?? '';
  let probe = probes.get(key);
  if (!probe) {
    probe = (async (): Promise<SandboxSupport> => {
      const bwrap = configured ?? findOnPath('bwrap');
      if (!bwrap) return { available: false, reason: 'bubblewrap (bwrap) is not installed; install it with "apt-get install bubblewrap"' };
      try {
        await run(bwrap, ['--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', '--', 'true'], { timeout: 10_000 });
        return { available: true, bwrap };
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { stderr?: string };
        return { available: false, reason: `bubblewrap at ${bwrap} cannot create a sandbox here: ${(e.stderr ?? e.message).trim() || e.code}` };
      }
    })();
    probes.set(key, probe);
  }
  return probe;
}

/** Everything needed to run the host in bubblewrap. */
export interface SandboxPlan {
  bwrap: string;
  hostBinary: string;
  pluginDir: string;
  libraryPath: string;
  workspace: string | null;
  permissions: EffectivePermissions;
  env: Record<string, string>;
}

const SYSTEM_DIRS = ['/usr', '/lib', '/lib64', '/lib32', '/bin', '/sbin', '/etc'];

/**
 * bwrap arguments: own PID, IPC, UTS and (unless granted) network namespaces, a read-only view of
 * system dirs plus what the plugin may read, a private /tmp, writable binds only where granted,
 * and an environment built from scratch.
 */
export function bwrapArgs(plan: SandboxPlan): string[] {
  const args = ['--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try'];
  if (!plan.permissions.network) args.push('--unshare-net');
  for (const dir of SYSTEM_DIRS) args.push('--ro-bind-try', dir, dir);
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  const readOnly = new Set([path.dirname(plan.hostBinary), plan.pluginDir, path.dirname(plan.libraryPath), ...plan.permissions.read]);
  for (const p of readOnly) args.push('--ro-bind-try', p, p);
  for (const p of plan.permissions.write) args.push('--bind-try', p, p);
  const cwd = plan.workspace && plan.permissions.read.some((p) => within(plan.workspace as string, p)) ? plan.workspace : '/';
  args.push('--chdir', cwd, '--clearenv');
  for (const [key, value] of Object.entries(plan.env)) args.push('--setenv', key, value);
  return args;
}

const ENV_ALLOWLIST = ['PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'LC_NUMERIC', 'TZ', 'RUST_BACKTRACE'];

/** The host's environment: an allowlist of the caller's, plus explicit extras; never the caller's secrets. */
export function hostEnvironment(extra: Record<string, string> | undefined, sandboxed: boolean): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ENV_ALLOWLIST) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  env.HOME = sandboxed ? '/tmp' : (process.env.HOME ?? '/tmp');
  env.TMPDIR = sandboxed ? '/tmp' : (process.env.TMPDIR ?? '/tmp');
  return { ...env, ...(extra ?? {}) };
}
