import type { Writable } from 'node:stream';
import { sandboxedCommand, type SandboxPlan } from '../sandbox/index.js';
import type { PluginCgroup } from '../sandbox/limits.js';
import { FrameChannel } from './frame-channel.js';
import { type SpawnedHost, signalNames, spawnHost } from './host-spawn.js';
import { signalHost, stopHost } from './terminate.js';
import { hostTuning } from './tuning.js';

/** How to launch one host. */
export interface HostLaunch {
  hostBinary: string;
  libraryPath: string;
  /** Worker threads in the host, when already known (thread-safe plugins); else configure later. */
  concurrency?: number;
  /** How long the event loop polls for results (µs) after each call or result; 0: never. */
  pollMicros: number;
  maxOutputBytes: number;
  /** Address-space limit; 0 for none. */
  maxMemoryMb: number;
  /** MiB of memory freed by big calls the host's heap may keep for the next one (see {@link heapKeepMb}); 0: none. */
  keepHeapMb: number;
  /** Run inside bubblewrap with this plan (and the host's seccomp filter), or unsandboxed when null. */
  sandbox: SandboxPlan | null;
  /** Sandboxed only: whether the plugin may create Unix sockets (the filter refuses them otherwise). */
  unixSockets: boolean;
  env: Record<string, string>;
  cwd: string;
  /** Receives everything the plugin writes to stdout and stderr. */
  onLog?: ((text: string) => void) | undefined;
  /**
   * Whole-plugin limits set before anything starts: `launcher` joins `cgroup` (removed once the host
   * is gone) and applies `launcherArgs`, then execs bwrap or the host.
   */
  limits?: { launcher: string; cgroup: PluginCgroup | null; launcherArgs: string[] } | undefined;
}

/** Why the host stopped, as facts. */
export interface HostExit {
  signal: string | null;
  exitCode: number | null;
  /** Peak address space when a fatal signal hit, in KiB (from the host's crash note). */
  peakKb: number | null;
  stderrTail: string;
  /** Set when skillplug itself stopped the host. */
  killedFor: 'timeout' | 'cancel' | 'close' | 'protocol' | null;
  /** What was wrong with the channel, when killedFor is 'protocol'. */
  protocolError?: string;
  /** The plugin's cgroup memory limit made the kernel kill one of its tasks. */
  memoryLimitHit?: boolean;
}

const STDERR_KEEP_BYTES = 64 * 1024;
const TAIL_LINES = 20;

/** The host as a process: spawned with its channels, referenced or not, stopped, and the facts of its exit. */
export class HostChild {
  /** Resolves once the host has exited. */
  readonly exited: Promise<HostExit>;
  /** Resolves once the host's stderr (the plugin's log) has closed: everything it wrote has been read. */
  readonly logClosed: Promise<void>;
  /** fd 3: the socket stays inside this channel, its only writer. */
  readonly frames: FrameChannel;
  /** fd 5: the host's standby reader sleeps on it; a byte wakes it to read fd 3 while a lone call runs. */
  readonly wake: Writable;
  private readonly child: SpawnedHost;
  // Handles start referenced (spawned child and its pipes).
  private referenced = true;
  private stderr = '';
  private notes = '';
  private killedFor: HostExit['killedFor'] = null;
  private protocolError: string | undefined;
  private exitFacts: HostExit | undefined;
  private readonly sandboxed: boolean;
  private readonly cgroup: PluginCgroup | null;
  private cgroupRemoved: Promise<void> | undefined;

  /** Spawns the host; `lane` and `fixedSpin` go into its options word, and what it writes on fd 3 goes to `onData`. */
  constructor(launch: HostLaunch, lane: boolean, fixedSpin: boolean, onData: (chunk: Buffer) => void) {
    const hostArgs = [
      launch.libraryPath,
      String(launch.maxOutputBytes),
      String(launch.maxMemoryMb),
      String(launch.sandbox ? 0 : process.pid),
      hostOptions(launch.sandbox !== null, launch.unixSockets, lane, fixedSpin, launch.keepHeapMb),
    ];
    let [command, args] = launch.sandbox ? [launch.sandbox.bwrap, sandboxedCommand(launch.sandbox, hostArgs)] : [launch.hostBinary, hostArgs];
    this.cgroup = launch.limits?.cgroup ?? null;
    if (launch.limits && (this.cgroup || launch.limits.launcherArgs.length > 0)) {
      const joins = (this.cgroup?.procsFiles ?? []).flatMap((file) => ['--join', file]);
      [command, args] = [launch.limits.launcher, [...joins, ...launch.limits.launcherArgs, '--', command, ...args]];
    }
    this.sandboxed = launch.sandbox !== null;
    // Own session and process group, so a kill reaches anything the plugin forked.
    // Sandboxed, bwrap passes its own environment on (no --setenv), so no value is on a command line.
    this.child = spawnHost(command, args, { cwd: launch.cwd, env: launch.sandbox ? launch.sandbox.env : launch.env });
    this.frames = new FrameChannel(this.child.channel, onData);
    this.wake = this.child.wake;
    const errStream = this.child.log;
    const notesStream = this.child.notes;
    errStream.setEncoding('utf8');
    errStream.on('data', (text: string) => {
      this.stderr = (this.stderr + text).slice(-STDERR_KEEP_BYTES);
      launch.onLog?.(text);
    });
    notesStream.setEncoding('utf8');
    notesStream.on('data', (text: string) => (this.notes = (this.notes + text).slice(-4096)));
    errStream.on('error', () => undefined);
    this.logClosed = new Promise<void>((resolve) => errStream.once('close', resolve));
    notesStream.on('error', () => undefined);
    const notesEnded = new Promise<void>((resolve) => {
      notesStream.once('end', resolve);
      notesStream.once('close', resolve);
    });
    this.exited = new Promise((resolve) => {
      let settled = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        const done = (): void => {
          if (settled) return;
          settled = true;
          clearTimeout(wait);
          resolve(this.buildExit(code, signal));
        };
        // The crash note is written just before death; give the pipe a moment to deliver it.
        const wait = setTimeout(done, 100);
        wait.unref();
        void notesEnded.then(done);
      };
      this.child.onExit((code, signal, error) => {
        if (error) this.stderr += `\n${error.message}`;
        finish(code, signal);
      });
    });
    // First of the exit's reactions: whoever else awaits it sees the exit recorded.
    void this.exited.then((exit) => {
      this.exitFacts = exit;
      this.cgroupRemoved = this.cgroup?.remove();
    });
  }

  /** The facts of the host's exit, once it has exited. */
  get exit(): HostExit | undefined {
    return this.exitFacts;
  }

  /** True until the host has exited or been told to stop. */
  get alive(): boolean {
    return this.exitFacts === undefined && this.killedFor === null;
  }

  /** The host's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last lines the plugin wrote to stderr/stdout. */
  stderrTail(): string {
    return tailLines(this.stderr, TAIL_LINES);
  }

  /** Kills the host at once (SIGKILL to its group). */
  kill(reason: Exclude<HostExit['killedFor'], null>): void {
    if (this.exitFacts) return;
    this.killedFor ??= reason;
    signalHost(this.child, 'SIGKILL');
  }

  // Something in the host process (the plugin) wrote to the channel: nothing on it can be trusted now.
  violation(message: string): void {
    this.protocolError ??= message;
    this.kill('protocol');
  }

  /** Stops the host in steps: end input, SIGTERM, SIGKILL. */
  async stop(): Promise<void> {
    if (this.exitFacts) return this.cgroupRemoved;
    this.killedFor ??= 'close';
    // A caller awaiting close must not see its process exit first.
    this.setRef(true);
    await stopHost(this.child, () => this.frames.end());
    await this.exited;
    await this.cgroupRemoved;
  }

  // Referenced only while someone awaits the host, so an idle host never keeps the caller alive.
  setRef(on: boolean): void {
    if (on === this.referenced) return;
    this.referenced = on;
    this.child.setRef(on);
  }

  private buildExit(code: number | null, signal: NodeJS.Signals | null): HostExit {
    let signalName: string | null = signal;
    let exitCode = code;
    // bwrap reports a child killed by signal N as exit code 128+N.
    if (this.sandboxed && signal === null && code !== null && code > 128 && signalNames.has(code - 128)) {
      signalName = signalNames.get(code - 128) as string;
      exitCode = null;
    }
    const note = /signal=(\d+) peak_kb=(\d+)/.exec(this.notes);
    if (note) {
      signalName = signalNames.get(Number(note[1])) ?? `signal ${note[1]}`;
      exitCode = null;
    }
    const exit: HostExit = { signal: signalName, exitCode, peakKb: note ? Number(note[2]) : null, stderrTail: this.stderrTail(), killedFor: this.killedFor };
    if (this.protocolError !== undefined) exit.protocolError = this.protocolError;
    if (this.cgroup?.memoryLimitHit()) exit.memoryLimitHit = true;
    return exit;
  }
}

/** The host's options word (see the usage line in skillplug-host.c). */
function hostOptions(sandboxed: boolean, unixSockets: boolean, lane: boolean, fixedSpin: boolean, keepHeapMb: number): string {
  const words = [];
  if (sandboxed) words.push('seccomp');
  if (sandboxed && !unixSockets) words.push('no-unix-sockets');
  if (lane) words.push('lane');
  if (fixedSpin) words.push('fixed-spin');
  if (keepHeapMb >= 1) words.push(`keep-heap-mb=${keepHeapMb}`, `trim-idle-ms=${hostTuning.heapTrimIdleMs}`);
  return words.join(',') || '-';
}

// A 16 MiB round trip frees 32 MiB (request and result): room for that, and some to spare.
const HEAP_KEEP_MOST_MB = 64;

/**
 * MiB of freed memory a host's heap may keep between big calls: up to 64, but kept memory counts
 * towards `maxMemoryMb` (an eighth of it at most) and towards the RSS that `recycleAboveMb` checks
 * after each call (a quarter of it at most), so it never trips either by itself.
 */
export function heapKeepMb(maxMemoryMb: number, recycleAboveMb: number): number {
  let keep = HEAP_KEEP_MOST_MB;
  if (maxMemoryMb > 0) keep = Math.min(keep, Math.floor(maxMemoryMb / 8));
  if (recycleAboveMb > 0) keep = Math.min(keep, Math.floor(recycleAboveMb / 4));
  return keep;
}

function tailLines(text: string, lines: number): string {
  const parts = text.trimEnd().split('\n');
  return parts.slice(-lines).join('\n');
}
