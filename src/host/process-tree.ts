// Reads process trees from /proc (Linux); elsewhere every answer is empty.
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';

/** The direct children of `pid` (from /proc/PID/task/TID/children); empty when unknown. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return children;
  }
  for (const task of tasks) {
    try {
      for (const word of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ')) {
        const child = Number(word);
        if (Number.isInteger(child) && child > 0) children.push(child);
      }
    } catch {
      // The task ended meanwhile.
    }
  }
  return children;
}

/** `root` and its descendants, parents before children. */
export function processTree(root: number): number[] {
  const tree = [root];
  for (let i = 0; i < tree.length && tree.length < 65536; i++) tree.push(...childrenOf(tree[i] as number));
  return tree;
}

/**
 * SIGKILLs `root` and every descendant. Each process is stopped before its children are listed: a
 * stopped process forks no more, so one walk from the top finds the whole tree (setsid daemons too,
 * since a subreaper host inherits them).
 */
export function killTree(root: number): void {
  const tree = [root];
  for (let i = 0; i < tree.length && tree.length < 65536; i++) {
    const pid = tree[i] as number;
    try {
      process.kill(pid, 'SIGSTOP');
    } catch {
      continue; // Gone already.
    }
    tree.push(...childrenOf(pid));
  }
  for (const pid of tree) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

// Bytes per page in /proc/PID/statm: the kernel's page size, read once from this process's smaps.
let pageKb: number | undefined;
function kernelPageKb(): number {
  if (pageKb === undefined) {
    pageKb = 4;
    try {
      const match = /^KernelPageSize:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps', 'latin1').slice(0, 65536));
      if (match) pageKb = Number(match[1]);
    } catch {
      // No smaps: 4 KiB pages, as on x86-64.
    }
  }
  return pageKb;
}

interface ProbedProcess {
  statm: number;
  children: number;
}

/**
 * Resident memory of a process tree, cheaply enough to read between calls: it keeps /proc/PID/statm
 * and the children list of each process open and re-reads them with one pread each (reading the
 * files afresh cost ~40 µs per file and process, which made up most of a call's cost every 16 calls
 * in a sandbox's five-process tree). An fd of /proc/PID is bound to that process, never to a later
 * one that reuses the pid: once the process is gone, its reads fail and it is dropped.
 */
export class TreeRss {
  private readonly root: number;
  private readonly maxProcesses: number;
  private readonly open = new Map<number, ProbedProcess>();
  private readonly buffer = Buffer.alloc(4096);

  constructor(root: number, maxProcesses: number) {
    this.root = root;
    this.maxProcesses = maxProcesses;
  }

  /** Resident KiB of the root and its descendants (up to maxProcesses of them); null once the root is gone. */
  kb(): number | null {
    let totalPages = 0;
    const queue = [this.root];
    const seen = new Set<number>();
    for (let count = 0; queue.length > 0 && count < this.maxProcesses; count++) {
      const pid = queue.shift() as number;
      seen.add(pid);
      const probe = this.probe(pid);
      const statm = probe && this.read(probe.statm);
      if (!probe || statm === undefined) {
        this.forget(pid);
        if (pid === this.root) return null;
        continue;
      }
      totalPages += Number(statm.split(' ')[1] ?? 0);
      for (const child of (this.read(probe.children) ?? '').trim().split(/\s+/)) if (child) queue.push(Number(child));
    }
    // Processes that left the tree.
    for (const pid of this.open.keys()) if (!seen.has(pid)) this.forget(pid);
    return totalPages * kernelPageKb();
  }

  /** Closes every file it keeps open. */
  close(): void {
    for (const pid of [...this.open.keys()]) this.forget(pid);
  }

  private probe(pid: number): ProbedProcess | undefined {
    let probe = this.open.get(pid);
    if (probe) return probe;
    let statm: number;
    try {
      statm = openSync(`/proc/${pid}/statm`, 'r');
    } catch {
      return undefined;
    }
    let children: number;
    try {
      children = openSync(`/proc/${pid}/task/${pid}/children`, 'r');
    } catch {
      // No children list (kernel without CONFIG_PROC_CHILDREN): this process alone is measured.
      children = -1;
    }
    probe = { statm, children };
    this.open.set(pid, probe);
    return probe;
  }

  private read(fd: number): string | undefined {
    if (fd < 0) return undefined;
    try {
      // /proc regenerates the file on a read from offset 0.
      const n = readSync(fd, this.buffer, 0, this.buffer.length, 0);
      return this.buffer.toString('latin1', 0, n);
    } catch {
      return undefined;
    }
  }

  private forget(pid: number): void {
    const probe = this.open.get(pid);
    if (!probe) return;
    this.open.delete(pid);
    closeSync(probe.statm);
    if (probe.children >= 0) closeSync(probe.children);
  }
}
