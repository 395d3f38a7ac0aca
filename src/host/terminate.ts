// All kill logic for host processes lives here.
import type { SpawnedHost } from './host-spawn.js';
import { killTree } from './process-tree.js';

/**
 * Sends a signal to the host's whole process group (it leads one), falling back to the process. A
 * SIGKILL, which the host cannot act on, also reaches every descendant that left the group (setsid).
 */
export function signalHost(child: SpawnedHost, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.ended) return;
  if (signal === 'SIGKILL' && process.platform === 'linux') killTree(child.pid);
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.signal(signal);
  }
}

/** Timings for a graceful stop. */
export interface StopTimings {
  /** How long after input ends before SIGTERM. */
  graceMs: number;
  /** How long after SIGTERM before SIGKILL. */
  termMs: number;
}

/**
 * Stops a host in steps: end its input, then SIGTERM, then SIGKILL, on unref'd timers so a
 * stopping host never keeps the caller's process alive. Resolves when it has exited.
 */
export function stopHost(child: SpawnedHost, endInput: () => void, timings: StopTimings = { graceMs: 500, termMs: 500 }): Promise<void> {
  if (child.ended) return Promise.resolve();
  return new Promise((resolve) => {
    let kill: NodeJS.Timeout | undefined;
    const term = setTimeout(() => {
      signalHost(child, 'SIGTERM');
      kill = setTimeout(() => signalHost(child, 'SIGKILL'), timings.termMs);
      kill.unref();
    }, timings.graceMs);
    term.unref();
    child.onExit(() => {
      clearTimeout(term);
      if (kill) clearTimeout(kill);
      resolve();
    });
    endInput();
  });
}
