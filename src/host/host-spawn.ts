import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Duplex, Readable, Writable } from 'node:stream';
import { isMainThread } from 'node:worker_threads';
import { type HostAddon, loadedHostAddon } from './host-addon.js';
import { hostTuning } from './tuning.js';

/** How a spawned host ended: an exit code, a signal, or an error that kept it from starting. */
export type SpawnedExit = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => void;

/**
 * A host process as {@link HostChild} sees it, whichever way it was started: in a session of its own,
 * stdin and stdout on /dev/null, and this side's ends of its fds 2 to 5 (docs/host-protocol.md, "Channels").
 */
export interface SpawnedHost {
  readonly pid: number | undefined;
  /** fd 2: the plugin's log. */
  readonly log: Readable;
  /** fd 3: frames both ways. */
  readonly channel: Duplex;
  /** fd 4: the crash note. */
  readonly notes: Readable;
  /** fd 5: wake-up bytes for the standby reader. */
  readonly wake: Writable;
  /** True once it has ended (its pid may then belong to someone else: never signal it). */
  readonly ended: boolean;
  /** Runs `listener` once it has ended (at once if it has). */
  onExit(listener: SpawnedExit): void;
  /** Sends a signal to the process itself (not its group). */
  signal(signal: NodeJS.Signals): void;
  /** Whether it (and its pipes) keep this process's event loop alive. */
  setRef(on: boolean): void;
}

/**
 * Starts a host. With the host addon loaded, on the main thread (and `hostTuning.directSpawn`), through posix_spawn, which
 * borrows this process's memory until the child execs; otherwise through Node, which forks: that
 * write-protects every page of this process, and each page Node writes afterwards takes a fault.
 */
export function spawnHost(command: string, args: string[], options: { cwd: string; env: Record<string, string> }): SpawnedHost {
  // A worker thread never hears SIGCHLD, which reaping these hosts needs.
  const addon = hostTuning.directSpawn && isMainThread ? loadedHostAddon() : undefined;
  // A bare command name would be looked up in this process's PATH, not the child's as Node does.
  if (addon && path.isAbsolute(command)) {
    const started = addon.spawn(command, [command, ...args], Object.entries(options.env).map(([key, value]) => `${key}=${value}`), options.cwd);
    // A host that cannot start this way gets Node's spawn, and with it Node's error for the cause.
    if (typeof started !== 'number') return new DirectHost(addon, started);
  }
  return new NodeSpawnedHost(
    spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      // fd 6 is the host's own: it creates the lane as a sealed memfd (see skillplug-host.c).
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'ignore'],
      detached: true,
    }),
  );
}

// The end of a spawned host, heard once and told to every listener, early or late.
abstract class EndingHost {
  protected exit: Parameters<SpawnedExit> | undefined;
  private readonly listeners: SpawnedExit[] = [];

  get ended(): boolean {
    return this.exit !== undefined;
  }

  onExit(listener: SpawnedExit): void {
    if (this.exit) listener(...this.exit);
    else this.listeners.push(listener);
  }

  protected settle(exit: Parameters<SpawnedExit>): void {
    if (this.exit) return;
    this.exit = exit;
    for (const listener of this.listeners.splice(0)) listener(...exit);
  }
}

class NodeSpawnedHost extends EndingHost implements SpawnedHost {
  readonly log: Readable;
  readonly channel: Duplex;
  readonly notes: Readable;
  readonly wake: Writable;

  constructor(private readonly child: ChildProcess) {
    super();
    const stdio = child.stdio as unknown as (Readable & Writable & Duplex)[];
    [this.log, this.channel, this.notes, this.wake] = [stdio[2], stdio[3], stdio[4], stdio[5]] as [Readable, Duplex, Readable, Writable];
    child.once('exit', (code, signal) => this.settle([code, signal]));
    child.once('error', (err) => this.settle([null, null, err]));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.ended) return;
    try {
      this.child.kill(signal);
    } catch {
      // Already gone.
    }
  }

  setRef(on: boolean): void {
    for (const handle of [this.child, this.channel, this.log, this.notes, this.wake] as unknown as { ref?: () => void; unref?: () => void }[]) {
      (on ? handle.ref : handle.unref)?.call(handle);
    }
  }
}

/** Signal numbers to names; the first name wins, so 6 is SIGABRT rather than its alias SIGIOT. */
export const signalNames = new Map<number, NodeJS.Signals>();
for (const [name, num] of Object.entries(osConstants.signals)) if (!signalNames.has(num)) signalNames.set(num, name as NodeJS.Signals);

// Hosts the addon started and has not reaped: on SIGCHLD each is asked for (waitpid, WNOHANG); libuv reaps only its own.
const unreaped = new Map<number, DirectHost>();
const reapEnded = (): void => {
  for (const host of [...unreaped.values()]) host.reap();
};

class DirectHost extends EndingHost implements SpawnedHost {
  readonly pid: number;
  readonly log: Readable;
  readonly channel: Duplex;
  readonly notes: Readable;
  readonly wake: Writable;
  private keepAlive: NodeJS.Timeout | undefined;
  // Referenced until told otherwise (HostChild unrefs it once the handshake is over and nothing waits).
  private referenced = true;

  constructor(
    private readonly addon: HostAddon,
    [pid, log, channel, notes, wake]: [number, number, number, number, number],
  ) {
    super();
    this.pid = pid;
    this.log = new Socket({ fd: log, readable: true, writable: false });
    this.channel = new Socket({ fd: channel, readable: true, writable: true });
    this.notes = new Socket({ fd: notes, readable: true, writable: false });
    this.wake = new Socket({ fd: wake, readable: false, writable: true });
    // Someone else reaped the host that had this pid before (its status is lost), and the pid came back.
    // Ended first: as the last unreaped host it takes the SIGCHLD listener with it, added back just below.
    unreaped.get(pid)?.end([null, null, new Error(`host ${pid}: reaped by someone else`)]);
    unreaped.set(pid, this);
    if (!process.listeners('SIGCHLD').includes(reapEnded)) process.on('SIGCHLD', reapEnded);
    this.holdLoop();
    // It may have ended before the handler was there.
    this.reap();
  }

  signal(signal: NodeJS.Signals): void {
    if (this.exit) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // Already gone.
    }
  }

  setRef(on: boolean): void {
    this.referenced = on;
    // The pipes too: a caller may await the rest of the log after the host has ended (and its timer gone).
    for (const handle of [this.channel, this.log, this.notes, this.wake] as Socket[]) {
      if (on) handle.ref();
      else handle.unref();
    }
    this.holdLoop();
  }

  // A signal handle never keeps the loop alive, and the pipes may close before SIGCHLD comes: while someone
  // awaits the host, a timer holds the loop and asks for its status now and then. A serial caller refs and
  // unrefs per call, so the timer is only unreferenced then (not made anew each call), and goes at its next
  // turn if still unreferenced: an idle host costs no wake-up after that second.
  private holdLoop(): void {
    if (this.exit) return;
    if (!this.referenced) this.keepAlive?.unref();
    else if (this.keepAlive) this.keepAlive.ref();
    else this.keepAlive = setInterval(this.checkEnded, hostTuning.reapCheckMs);
  }

  private readonly checkEnded = (): void => {
    this.reap();
    if (this.referenced) return;
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  };

  /** Collects its exit status if it has ended. */
  reap(): void {
    if (this.exit) return;
    const status = this.addon.reap(this.pid);
    if (status === undefined) return;
    // -errno: not ours to wait for any more (someone else reaped it), and its status is lost. Else the
    // wait status: the low 7 bits are the signal that ended it, or 0 and the exit code in the next byte.
    if (status < 0) this.end([null, null, new Error(`host ${this.pid}: waitpid failed (errno ${-status})`)]);
    else if ((status & 0x7f) === 0) this.end([(status >> 8) & 0xff, null]);
    else this.end([null, signalNames.get(status & 0x7f) ?? null]);
  }

  /** Records its end, once, and tells whoever listens. */
  end(exit: Parameters<SpawnedExit>): void {
    if (this.exit) return;
    if (unreaped.get(this.pid) === this) unreaped.delete(this.pid);
    if (unreaped.size === 0) process.off('SIGCHLD', reapEnded);
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
    // A one-way pipe into the host never hears its end (Node's own stdio pipes are socketpairs, which do).
    this.wake.destroy();
    this.settle(exit);
  }
}
