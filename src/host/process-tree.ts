// Reads process trees from /proc (Linux); elsewhere every answer is empty.
import { readdirSync, readFileSync } from 'node:fs';

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
