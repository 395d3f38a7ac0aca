// Which workspace plugin may stand beside the user's own: no silent shadowing, no rollback.
import type { DiscoveredPlugin } from '../discovery/index.js';
import { ErrorCode, PluginError } from '../errors.js';
import type { LockEntry } from './lock.js';

const VERSION = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/**
 * Compares two versions the semver way (major.minor.patch, a pre-release sorts before its release);
 * undefined when either is not such a version.
 */
export function compareVersions(a: string, b: string): number | undefined {
  const x = VERSION.exec(a.trim());
  const y = VERSION.exec(b.trim());
  if (!x || !y) return undefined;
  for (let i = 1; i <= 3; i++) {
    const d = Number(x[i] ?? 0) - Number(y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  const [pa, pb] = [x[4], y[4]];
  if (pa === pb) return 0;
  if (pa === undefined) return 1;
  if (pb === undefined) return -1;
  const partsA = pa.split('.');
  const partsB = pb.split('.');
  for (let i = 0; i < Math.max(partsA.length, partsB.length); i++) {
    const [ia, ib] = [partsA[i], partsB[i]];
    if (ia === undefined) return -1;
    if (ib === undefined) return 1;
    const [na, nb] = [/^\d+$/.test(ia), /^\d+$/.test(ib)];
    const d = na && nb ? Number(ia) - Number(ib) : na ? -1 : nb ? 1 : ia < ib ? -1 : ia > ib ? 1 : 0;
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** What the user installed or pinned, against which a workspace plugin is judged. */
export interface UserPluginFacts {
  /** Plugins found in the user's own plugin dirs. */
  installed: readonly DiscoveredPlugin[];
  /** Entries of the workspace lock, when the lock is the user's (recorded by `skillplug lock`). */
  pinned: readonly LockEntry[];
  /** Names the user lets a workspace plugin shadow (`allow_shadowing`). */
  allowShadowing: readonly string[];
}

/**
 * Refuses a workspace plugin that has the name of a plugin the user installed (`E_SHADOWING`,
 * unless the user allowed it) or a lower version than one the user installed or pinned
 * (`E_ROLLBACK`). Plugins from explicit and user dirs are the user's choice and pass.
 */
export function checkWorkspacePlugin(plugin: { name: string; version: string; dir: string; kind: string }, facts: UserPluginFacts): void {
  if (plugin.kind !== 'workspace') return;
  const installed = facts.installed.filter((p) => p.trustedDir.kind === 'user' && p.name === plugin.name && p.path !== plugin.dir);
  if (installed.length > 0 && !facts.allowShadowing.includes(plugin.name)) {
    const theirs = installed[0] as DiscoveredPlugin;
    throw new PluginError(
      ErrorCode.SHADOWING,
      `Workspace plugin "${plugin.name}" (${plugin.dir}) has the name of your installed plugin ${theirs.path}, so it is refused: a repository cannot replace a plugin you installed. Your plugin is used instead. To let the workspace's copy win, add "${plugin.name}" to "allow_shadowing" in ~/.vtcode/skillplug.json, or pass its dir with --plugins-dir.`,
      { plugin: plugin.name, path: plugin.dir, data: { reason: 'shadowing', installed: installed.map((p) => p.path) } },
    );
  }
  const floors = [
    ...installed.filter((p) => p.version !== undefined).map((p) => ({ version: p.version as string, from: p.path })),
    ...facts.pinned.filter((e) => e.name === plugin.name).map((e) => ({ version: e.version, from: `the lock entry ${e.path}` })),
  ];
  for (const floor of floors) {
    // A version that cannot be compared with the floor counts as older: the safe side.
    const order = compareVersions(plugin.version, floor.version) ?? (plugin.version === floor.version ? 0 : -1);
    if (order < 0) {
      throw new PluginError(
        ErrorCode.ROLLBACK,
        `Workspace plugin "${plugin.name}" is version ${plugin.version} (${plugin.dir}), older than version ${floor.version} you installed or pinned (${floor.from}), so it is refused: an old release may carry fixed bugs or broader permissions. Update the workspace's copy to ${floor.version} or later.`,
        { plugin: plugin.name, path: plugin.dir, data: { reason: 'rollback', version: plugin.version, minimum: floor.version } },
      );
    }
  }
}
