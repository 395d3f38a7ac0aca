// CPU accounting for benchmark rows: this process (all its threads) plus every process it started, alive or
// reaped (isolated hosts, bwrap and what runs inside it, CLIs, grep), minus the busy neighbour it runs beside.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Kernel clock ticks per second, the unit of /proc/<pid>/stat times. */
const TICKS_PER_SECOND = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const US_PER_TICK = 1e6 / TICKS_PER_SECOND;

interface ProcStat {
  ppid: number;
  /** utime + stime of the process itself (all threads). */
  ownTicks: number;
  /** cutime + cstime: children it has reaped, and theirs. */
  reapedTicks: number;
}

function readStat(pid: number | 'self'): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const at = (field: number): number => Number(fields[field - 3]);
  return { ppid: at(4), ownTicks: at(14) + at(15), reapedTicks: at(16) + at(17) };
}

function allStats(): Map<number, ProcStat> {
  const stats = new Map<number, ProcStat>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return stats;
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    const stat = readStat(Number(entry));
    if (stat) stats.set(Number(entry), stat);
  }
  return stats;
}

/**
 * A live process's CPU time in µs: its threads' ns-precise run time (/proc/<pid>/task/<tid>/schedstat), or
 * utime + stime when that is larger (threads that already exited count only there, in 10 ms ticks).
 */
function liveCpuUs(pid: number, stat: ProcStat): number {
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]);
      } catch {
        // The thread exited.
      }
    }
  } catch {
    // The process exited; its stat fields still count.
  }
  return Math.max(ns / 1000, stat.ownTicks * US_PER_TICK);
}

/**
 * CPU time, in µs, used so far by this process and all its descendants (alive, zombie or reaped), leaving out
 * the subtrees rooted at `exclude` while they are alive. The neighbour must be reaped only between two readings
 * that are not compared (its time then lands in this process's cutime). `edge` says which end of a measured
 * window this reading is, so this process's own scanning of /proc falls outside the window.
 */
export function treeCpuUs(edge: 'start' | 'end', exclude: ReadonlySet<number> = new Set()): number {
  const before = edge === 'end' ? process.cpuUsage() : undefined;
  let us = (readStat('self')?.reapedTicks ?? 0) * US_PER_TICK;
  const stats = allStats();
  const children = new Map<number, number[]>();
  for (const [pid, stat] of stats) {
    const list = children.get(stat.ppid);
    if (list) list.push(pid);
    else children.set(stat.ppid, [pid]);
  }
  const queue = [...(children.get(process.pid) ?? [])];
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    if (exclude.has(pid)) continue;
    const stat = stats.get(pid);
    if (!stat) continue;
    us += liveCpuUs(pid, stat) + stat.reapedTicks * US_PER_TICK;
    queue.push(...(children.get(pid) ?? []));
  }
  const usage = before ?? process.cpuUsage();
  return usage.user + usage.system + us;
}

/** CPU time of one process (all threads), in µs; 0 once it is gone. */
export function processCpuUs(pid: number): number {
  const stat = readStat(pid);
  return stat ? liveCpuUs(pid, stat) : 0;
}

/** Busy CPU time of the whole machine (all cores, everything but idle and iowait), in µs. */
export function machineBusyUs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string;
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq (steal is time the hypervisor gave away; guest is inside user).
    const busy = values.slice(0, 7).reduce((sum, v, i) => (i === 3 || i === 4 ? sum : sum + v), 0);
    return busy * US_PER_TICK;
  } catch {
    return 0;
  }
}

/** Sum of VmRSS over a process and its descendants (bwrap's namespace included), in MiB. */
export function groupRssMiB(root: number): number {
  const stats = allStats();
  const members = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, stat] of stats) {
      if (!members.has(pid) && members.has(stat.ppid)) {
        members.add(pid);
        grew = true;
      }
    }
  }
  let kib = 0;
  for (const pid of members) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // The process went away.
    }
  }
  return kib / 1024;
}

/** What a measurement window saw: its wall time, our CPU (this process and all it started), and the cores others used. */
export interface CpuWindow {
  wallUs: number;
  /** This process and every process it started, the neighbour excluded, in µs. */
  cpuUs: number;
  /** Cores the busy neighbour got over the window (0 without one). */
  neighbourCores: number;
  /** Cores other processes (not ours, not the neighbour) used over the window. */
  otherCores: number;
}

/** Opens a measurement window; the function it returns closes it. `neighbour` is left out of our CPU. */
export function cpuWindow(neighbour?: number): () => CpuWindow {
  const exclude = new Set(neighbour === undefined ? [] : [neighbour]);
  const neighbourBefore = neighbour === undefined ? 0 : processCpuUs(neighbour);
  const machineBefore = machineBusyUs();
  const cpuBefore = treeCpuUs('start', exclude);
  const started = Number(process.hrtime.bigint()) / 1000;
  return () => {
    const wallUs = Number(process.hrtime.bigint()) / 1000 - started;
    const cpuUs = treeCpuUs('end', exclude) - cpuBefore;
    const machine = machineBusyUs() - machineBefore;
    const neighbourCpu = neighbour === undefined ? 0 : processCpuUs(neighbour) - neighbourBefore;
    return { wallUs, cpuUs, neighbourCores: neighbourCpu / wallUs, otherCores: Math.max(0, machine - cpuUs - neighbourCpu) / wallUs };
  };
}
