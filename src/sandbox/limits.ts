import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Whole-plugin limits: they bound the host and everything it starts, together. */
export interface PluginLimits {
  /** Memory of all the plugin's processes plus its tmpfs, in MiB. */
  memoryMb: number;
  /** Tasks (processes and threads) the plugin may have at once. */
  processes: number;
}

/** How the whole plugin is bounded here: a cgroup (v2 or v1 controllers), or nothing that spans processes. */
export type LimitMechanism = 'cgroup-v2' | 'cgroup-v1' | 'none';

/** The cgroup layout found once per process: where new plugin cgroups go, or why none can. */
export interface CgroupSupport {
  mechanism: LimitMechanism;
  /** Parent dirs: one for v2; the memory and pids hierarchies' for v1. */
  parents: string[];
  /** Why no cgroup can be used, when mechanism is 'none'. */
  reason?: string;
}

interface Mount {
  root: string;
  point: string;
  fstype: string;
  superOptions: string[];
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of (readText('/proc/self/mountinfo') ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const fields = left.split(' ');
    const [fstype, , superOptions] = right.split(' ');
    out.push({ root: fields[3] ?? '/', point: (fields[4] ?? '').replace(/\\040/g, ' '), fstype: fstype ?? '', superOptions: (superOptions ?? '').split(',') });
  }
  return out;
}

// This process's cgroup path in one hierarchy, as a dir on the mount.
function ownDir(mount: Mount, cgroupPath: string): string {
  const rel = mount.root !== '/' && (cgroupPath === mount.root || cgroupPath.startsWith(`${mount.root}/`)) ? cgroupPath.slice(mount.root.length) : cgroupPath;
  return path.join(mount.point, rel);
}

function hasControllers(file: string, wanted: string[]): boolean {
  const have = (readText(file) ?? '').trim().split(/\s+/);
  return wanted.every((c) => have.includes(c));
}

function writable(dir: string): boolean {
  const probe = path.join(dir, `skillplug-probe-${process.pid}`);
  try {
    mkdirSync(probe);
  } catch {
    return false;
  }
  try {
    rmdirSync(probe);
  } catch {
    // Left for the cgroup's owner; harmless and empty.
  }
  return true;
}

// v2: a dir whose children get memory and pids: our own cgroup if it delegates them, else its parent (a sibling of ours).
function findV2(mount: Mount, cgroupPath: string): string | undefined {
  const own = ownDir(mount, cgroupPath);
  for (const dir of [own, path.dirname(own)]) {
    if (!dir.startsWith(mount.point) || !hasControllers(path.join(dir, 'cgroup.controllers'), ['memory', 'pids'])) continue;
    if (!hasControllers(path.join(dir, 'cgroup.subtree_control'), ['memory', 'pids'])) {
      try {
        writeFileSync(path.join(dir, 'cgroup.subtree_control'), '+memory +pids');
      } catch {
        continue;
      }
    }
    if (writable(dir)) return dir;
  }
  return undefined;
}

let support: CgroupSupport | undefined;

// A process that exited without closing its plugins leaves their (by then empty) cgroups: the next one removes them.
/** Removes empty plugin cgroups whose owning process is gone (it exited without closing its plugins). */
export async function sweepOrphans(parents: string[]): Promise<void> {
  for (const parent of parents) {
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      const owner = /^skillplug-(\d+)-\d+$/.exec(name)?.[1];
      if (!owner || Number(owner) === process.pid) continue;
      try {
        process.kill(Number(owner), 0);
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
      }
      // Fails, harmlessly, while tasks remain.
      await rmdir(path.join(parent, name)).catch(() => undefined);
    }
  }
}

/** Finds, once per process, where plugin cgroups can be made: cgroup v2 with memory+pids, else v1's memory and pids hierarchies. */
export function detectCgroups(): CgroupSupport {
  if (support) return support;
  if (process.platform !== 'linux') return (support = { mechanism: 'none', parents: [], reason: `cgroups do not exist on ${process.platform}` });
  const lines = (readText('/proc/self/cgroup') ?? '').split('\n').filter(Boolean).map((l) => {
    const [, controllers = '', ...rest] = l.split(':');
    return { controllers: controllers.split(','), path: rest.join(':') };
  });
  const all = mounts();
  const unified = lines.find((l) => l.controllers.length === 1 && l.controllers[0] === '');
  const v2Mount = all.find((m) => m.fstype === 'cgroup2');
  if (unified && v2Mount) {
    const dir = findV2(v2Mount, unified.path);
    if (dir) support = { mechanism: 'cgroup-v2', parents: [dir] };
  }
  const parents: string[] = [];
  for (const controller of support ? [] : ['memory', 'pids']) {
    const line = lines.find((l) => l.controllers.includes(controller));
    const mount = all.find((m) => m.fstype === 'cgroup' && m.superOptions.includes(controller));
    const dir = line && mount ? ownDir(mount, line.path) : undefined;
    if (dir && writable(dir)) parents.push(dir);
  }
  if (parents.length === 2) support = { mechanism: 'cgroup-v1', parents };
  if (support) {
    void sweepOrphans(support.parents);
    return support;
  }
  return (support = {
    mechanism: 'none',
    parents: [],
    reason: 'no cgroup with memory and pids controllers is writable by this user (cgroup v2 needs a delegated cgroup, e.g. a systemd user scope; v1 needs write access to the memory and pids hierarchies)',
  });
}

let created = 0;

/** One plugin host's cgroup(s): join them through {@link procsFiles}, {@link remove} when the host is gone. */
export class PluginCgroup {
  /** Files a launcher writes its pid to. */
  readonly procsFiles: string[];
  private constructor(
    readonly mechanism: Exclude<LimitMechanism, 'none'>,
    private readonly dirs: string[],
  ) {
    this.procsFiles = dirs.map((d) => path.join(d, 'cgroup.procs'));
  }

  /** Makes a cgroup with these limits; rejects with an Error saying what failed (and leaves nothing behind). Off the event loop: cgroupfs is slow. */
  static async create(found: CgroupSupport, limits: PluginLimits): Promise<PluginCgroup> {
    if (found.mechanism === 'none') throw new Error(found.reason);
    const name = `skillplug-${process.pid}-${++created}`;
    const dirs = found.parents.map((p) => path.join(p, name));
    const group = new PluginCgroup(found.mechanism, dirs);
    const bytes = String(limits.memoryMb * 1024 * 1024);
    try {
      for (const dir of dirs) await mkdir(dir);
      const set = async (file: string, value: string, optional = false): Promise<void> => {
        const target = dirs.map((d) => path.join(d, file)).find((f) => existsSync(f));
        if (target) await writeFile(target, value);
        else if (!optional) throw new Error(`${file} is missing in ${dirs.join(', ')}`);
      };
      if (found.mechanism === 'cgroup-v2') {
        await set('memory.max', bytes);
        // Swap would let the plugin hold more than memory.max.
        await set('memory.swap.max', '0', true);
      } else {
        await set('memory.limit_in_bytes', bytes);
        await set('memory.memsw.limit_in_bytes', bytes, true);
      }
      await set('pids.max', String(limits.processes));
    } catch (err) {
      await group.remove();
      throw err;
    }
    return group;
  }

  private file(name: string): string | undefined {
    return this.dirs.map((d) => readText(path.join(d, name))).find((t) => t !== undefined);
  }

  private counter(file: string, key: string): number {
    const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(this.file(file) ?? '');
    return match ? Number(match[1]) : 0;
  }

  /** Whether the kernel killed a task of this plugin for exceeding the memory limit. */
  memoryLimitHit(): boolean {
    return this.mechanism === 'cgroup-v2' ? this.counter('memory.events', 'oom_kill') > 0 : this.counter('memory.oom_control', 'oom_kill') > 0;
  }

  /** Whether a fork of this plugin was refused for exceeding the process limit. */
  processLimitHit(): boolean {
    return this.counter('pids.events', 'max') > 0;
  }

  // Kills whatever is left (a daemon the plugin started), then removes the dirs; false while tasks remain.
  private async removeNow(): Promise<boolean> {
    let done = true;
    for (const dir of this.dirs) {
      if (!existsSync(dir)) continue;
      try {
        if (this.mechanism === 'cgroup-v2' && existsSync(path.join(dir, 'cgroup.kill'))) await writeFile(path.join(dir, 'cgroup.kill'), '1');
        else for (const pid of (await readFile(path.join(dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
      try {
        await rmdir(dir);
      } catch {
        done = false;
      }
    }
    return done;
  }

  /** Kills what is left in the cgroup and removes it, retrying while killed tasks finish exiting (bounded). */
  async remove(): Promise<void> {
    for (let attempt = 0; attempt < 200 && !(await this.removeNow()); attempt++) {
      // Referenced: close() awaits this, and the loop is bounded (about 1 s).
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
