import { accessSync, constants, realpathSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { symlinkedComponent, within, type EffectivePermissions, type PermissionGrant } from './permissions.js';

// child_process is loaded when a sandbox is first probed: commands that start no host never need it.
const run = async (file: string, args: string[], options: { timeout: number }) => promisify((await import('node:child_process')).execFile)(file, args, options);

/** `'auto'` sandboxes when it can and warns once when it cannot; `'required'` refuses to run unsandboxed; `'off'` never sandboxes. */
export type SandboxMode = 'auto' | 'required' | 'off';

/** The sandbox modes. */
export const SANDBOX_MODES: readonly SandboxMode[] = ['auto', 'required', 'off'];

/**
 * What the user grants plugins beyond the default (read the workspace, own dir, private /tmp).
 * Kept as the loader's `grant` option type; see {@link PermissionGrant}.
 */
export type SandboxGrant = PermissionGrant;

export { expandPermissionPath, type EffectivePermissions } from './permissions.js';

/** Whether bubblewrap can be used here. */
export interface SandboxSupport {
  available: boolean;
  /** The bwrap binary. */
  bwrap?: string;
  /** Why not, when unavailable. */
  reason?: string;
  /**
   * Set when bwrap works only without its user namespace flags (`--unshare-user --disable-userns`),
   * e.g. a bwrap older than 0.8 or one that cannot make a user namespace: capabilities are still
   * dropped, but the plugin may be able to create namespaces of its own. Says why.
   */
  weaker?: string;
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

/** The flags that take every privilege from the sandbox: own user namespace, none nested in it, no capabilities. */
export const PRIVILEGE_FLAGS: readonly string[] = ['--unshare-user', '--disable-userns', '--cap-drop', 'ALL'];
/** What is left when bwrap cannot make a user namespace: capabilities are still dropped. */
const FALLBACK_PRIVILEGE_FLAGS: readonly string[] = ['--cap-drop', 'ALL'];

async function tryBwrap(bwrap: string, flags: readonly string[]): Promise<string | null> {
  try {
    await run(bwrap, [...flags, '--unshare-all', '--die-with-parent', '--new-session', '--ro-bind', '/', '/', '--size', '1048576', '--tmpfs', '/tmp', '--', 'true'], { timeout: 10_000 });
    return null;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    return (e.stderr ?? e.message).trim() || String(e.code);
  }
}

/**
 * Finds bwrap (or `$SKILLPLUG_BWRAP`) and checks once per process that it can make a sandbox here
 * with the flags {@link bwrapArgs} uses; falls back to dropping capabilities alone (reported in `weaker`).
 */
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
      const full = await tryBwrap(bwrap, PRIVILEGE_FLAGS);
      if (full === null) return { available: true, bwrap };
      const fallback = await tryBwrap(bwrap, FALLBACK_PRIVILEGE_FLAGS);
      if (fallback === null) {
        return { available: true, bwrap, weaker: `bubblewrap at ${bwrap} cannot run with ${PRIVILEGE_FLAGS.slice(0, 2).join(' ')} (${full}); bubblewrap 0.8 or later with user namespaces enabled has them` };
      }
      return { available: false, reason: `bubblewrap at ${bwrap} cannot create a sandbox here: ${fallback}` };
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
  /** The host's environment: bwrap inherits it, so no value ever appears on a command line. */
  env: Record<string, string>;
  /** Flags that take privileges away (default {@link PRIVILEGE_FLAGS}; see {@link SandboxSupport.weaker}). */
  privilegeFlags?: readonly string[];
  /** Dirs hidden under an empty tmpfs when a grant covers them. Default {@link socketDirs}(). */
  maskDirs?: string[];
  /** Size of the private /tmp in MiB; unbounded (half of RAM, the kernel default) when absent. */
  tmpSizeMb?: number;
  /** Limits set inside the sandbox, just before the host starts, by skillplug's launcher. */
  inner?: { launcher: string; args: string[] };
}

const SYSTEM_DIRS = ['/usr', '/lib', '/lib64', '/lib32', '/bin', '/sbin', '/etc'];

/**
 * Dirs that hold other programs' Unix sockets (D-Bus, docker.sock, ssh-agent, the session bus):
 * `/run`, `/var/run` and `$XDG_RUNTIME_DIR`, resolved, those that exist. A read-only bind does not
 * stop `connect()`, so the sandbox never shows them.
 */
export function socketDirs(): string[] {
  const dirs: string[] = [];
  for (const candidate of ['/run', '/var/run', process.env.XDG_RUNTIME_DIR]) {
    if (!candidate || !path.isAbsolute(candidate)) continue;
    let real: string;
    try {
      real = realpathSync(candidate);
    } catch {
      continue;
    }
    if (!dirs.some((d) => within(real, d))) dirs.push(real);
  }
  return dirs;
}

const depth = (p: string): number => (p === '/' ? 0 : p.split('/').length - 1);

/**
 * bwrap arguments: no privileges (own user namespace, none nested, no capabilities), own PID, IPC,
 * UTS and (unless granted) network namespaces, a read-only view of system dirs plus what the plugin
 * may read, a private /tmp, writable binds only where granted, socket dirs masked. The environment
 * is not here: bwrap inherits it from its spawner, so `ps` never shows a value.
 */
export function bwrapArgs(plan: SandboxPlan): string[] {
  const args = ['--die-with-parent', '--new-session', ...(plan.privilegeFlags ?? PRIVILEGE_FLAGS), '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try'];
  if (!plan.permissions.network) args.push('--unshare-net');
  const masks = plan.maskDirs ?? socketDirs();
  const masked = (p: string): boolean => masks.some((m) => within(p, m));
  const mounts: { dest: string; args: string[] }[] = [];
  for (const dir of SYSTEM_DIRS) mounts.push({ dest: dir, args: ['--ro-bind-try', dir, dir] });
  mounts.push({ dest: '/proc', args: ['--proc', '/proc'] }, { dest: '/dev', args: ['--dev', '/dev'] });
  mounts.push({ dest: '/tmp', args: [...(plan.tmpSizeMb ? ['--size', String(plan.tmpSizeMb * 1024 * 1024)] : []), '--tmpfs', '/tmp'] });
  // Checked again at every host start: a plugin may have planted a link since it was loaded; bwrap would follow it.
  const unlinked = (p: string): boolean => symlinkedComponent(p) === undefined;
  const readOnly = new Set([path.dirname(plan.hostBinary), plan.pluginDir, path.dirname(plan.libraryPath), ...plan.permissions.read.filter(unlinked)]);
  if (plan.inner) readOnly.add(path.dirname(plan.inner.launcher));
  const workspaceReadable = plan.workspace !== null && plan.permissions.read.some((p) => within(plan.workspace as string, p));
  // A readable workspace stays visible even where a broader grant's part of it is replaced (the private /tmp).
  if (workspaceReadable) readOnly.add(plan.workspace as string);
  for (const p of readOnly) if (!masked(p)) mounts.push({ dest: p, args: ['--ro-bind-try', p, p] });
  for (const p of plan.permissions.write.filter(unlinked)) if (!masked(p)) mounts.push({ dest: p, args: ['--bind-try', p, p] });
  const granted = [...readOnly, ...plan.permissions.write];
  for (const m of masks) if (granted.some((g) => within(m, g))) mounts.push({ dest: m, args: ['--tmpfs', m] });
  // Deeper than their writable bind, so the sort puts them on top: protected paths stay read-only.
  for (const p of plan.permissions.readOnlyInside) mounts.push({ dest: p, args: ['--ro-bind', p, p] });
  for (const p of plan.permissions.emptyInside) mounts.push({ dest: p, args: ['--tmpfs', p, '--remount-ro', p] });
  // Shallow first (a stable sort): a deeper mount lands on top, so a grant of / cannot uncover the host's /tmp, /proc or /dev, and masks cover what grants bring in.
  mounts.sort((x, y) => depth(x.dest) - depth(y.dest));
  for (const m of mounts) args.push(...m.args);
  const cwd = workspaceReadable ? (plan.workspace as string) : '/';
  args.push('--chdir', cwd);
  return args;
}

/** The whole bwrap command line after the binary: {@link bwrapArgs}, then the launcher (if any), then the host. */
export function sandboxedCommand(plan: SandboxPlan, hostArgs: string[]): string[] {
  const inner = plan.inner ? [plan.inner.launcher, ...plan.inner.args, '--'] : [];
  return [...bwrapArgs(plan), '--', ...inner, plan.hostBinary, ...hostArgs];
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
