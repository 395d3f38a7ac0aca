import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Readable, Duplex, Writable } from 'node:stream';
import { BusyPoll } from '../abi/busy-poll.js';
import { SpinHistory, monotonicMicros, spinBudget } from '../abi/spin-budget.js';
import type { ReturnedString } from '../abi/codec.js';
import { sandboxedCommand, type SandboxPlan } from '../sandbox/index.js';
import type { PluginCgroup } from '../sandbox/limits.js';
import { ensureLaneAddon } from '../toolchain.js';
import {
  FrameReader,
  type Frame,
  HEADER_BYTES,
  HostMessage,
  ProtocolViolation,
  READY_PAYLOAD_BYTES,
  SHARED_AREA_BYTES,
  SHARED_BYTES,
  SHARED_REQ,
  SHARED_RESP,
  SHARED_WAKE_FRAME,
  SharedWord,
  cancelFrame,
  configureFrame,
  decodeReturned,
  executeFrame,
  markAlone,
} from './protocol.js';
import { FrameChannel, type TickEnd } from './frame-channel.js';
import { processTree } from './process-tree.js';
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

/** Why a call did not get a result: the host's exit, and whether the call had started running. */
export interface CallFailure {
  exit: HostExit;
  started: boolean;
}

interface PendingCall {
  resolve: (r: ReturnedString) => void;
  reject: (failure: CallFailure) => void;
  onStart: () => void;
  started: boolean;
}

/** The host's first message. */
export type HostReady =
  | { kind: 'ready'; abiVersion: number; hasFree: boolean; metadata: ReturnedString | null }
  | { kind: 'load-error'; reason: number; text: string };

/** The host's lane as this process maps it. */
export interface SharedMapping {
  /** The whole region, aliasing the mapping. */
  bytes: Buffer;
  /** The region's leading 32-bit words, for Atomics. */
  words: Int32Array;
  /** Lets go of the lane (a stale view then reads zeros, never a freed mapping). */
  unmap(): void;
}

interface LaneAddon {
  map(fd: number, bytes: number): ArrayBuffer | undefined;
  unmap(buffer: ArrayBuffer): void;
}

// Loaded once per process, by the first host whose lane starts; later hosts map theirs at once.
let laneTools: LaneAddon | undefined;

function loadLaneAddon(file: string): LaneAddon {
  const module = { exports: {} as LaneAddon };
  process.dlopen(module, file);
  return module.exports;
}

/** The lane addon, built and loaded the first time it is asked for. */
export async function laneAddon(): Promise<LaneAddon> {
  laneTools ??= loadLaneAddon(await ensureLaneAddon());
  return laneTools;
}

/** Maps a lane fd: only a memfd sealed against shrinking, whoever put it at that fd (the plugin could). */
export function mapLane(tools: LaneAddon, fd: number): SharedMapping | undefined {
  const region = tools.map(fd, SHARED_BYTES);
  return region ? { bytes: Buffer.from(region), words: new Int32Array(region, 0, 16), unmap: () => tools.unmap(region) } : undefined;
}
const STDERR_KEEP_BYTES = 64 * 1024;
const TAIL_LINES = 20;
const WAKE_BYTE = Buffer.of(1);
const SIGNAL_NAMES = new Map<number, string>();
// First name wins, so 6 is SIGABRT rather than its alias SIGIOT.
for (const [name, num] of Object.entries(osConstants.signals)) if (!SIGNAL_NAMES.has(num)) SIGNAL_NAMES.set(num, name);

/** One running host process serving one plugin. */
export class HostProcess implements TickEnd {
  /** Resolves with the host's first message; rejects with a {@link HostExit} if it dies first. */
  readonly ready: Promise<HostReady>;
  /** Resolves once the host has exited. */
  readonly exited: Promise<HostExit>;
  /** Resolves once the host's stderr (the plugin's log) has closed: everything it wrote has been read. */
  readonly logClosed: Promise<void>;
  private readonly child: ChildProcess;
  private readonly frames: FrameChannel;
  private readonly reader: FrameReader;
  // In dispatch order: the host takes calls first in, first out, so the first `workers` are the running ones.
  private readonly pending = new Map<number, PendingCall>();
  private readonly poller: BusyPoll;
  // The host's standby reader sleeps on fd 5; a byte wakes it to read fd 3 while a lone call runs.
  private readonly wakeChannel: Writable;
  private wakeClosed = false;
  private aloneId: number | undefined;
  // Handles start referenced (spawned child and its pipes).
  private referenced = true;
  // A call made with nothing in flight waits for the end of its tick: still alone then, it takes the
  // shared lane or goes as EXECUTE_ALONE; joined by another call, it goes first as a plain EXECUTE.
  private loneCandidate: { id: number; context: string } | undefined;
  private workers = 1;
  private nextId = 1;
  private stderr = '';
  private notes = '';
  private killedFor: HostExit['killedFor'] = null;
  private protocolError: string | undefined;
  private exit: HostExit | undefined;
  // The shared lane (fd 6, see skillplug-host.c): a call alone goes through memory both processes map.
  private readonly laneWanted: boolean;
  private shared: SharedMapping | undefined;
  private sharedStarting = false;
  private sharedCallId = 0;
  private loneCalls = 0;
  // Calls before the lane is mapped: mapping it loads koffi and the pump library, which only a caller
  // making call after call gets back (hostTuning.sharedAfterLoneCalls).
  private readonly sharedAfter = hostTuning.sharedAfterLoneCalls;
  private readonly postLone = hostTuning.sharedLane;
  private readonly markLone = hostTuning.loneCalls;
  // Spinning (see docs/host-protocol.md, "Spinning"): the host spins only within a lease of the
  // process-wide budget, written to SPIN_MICROS; the history says whether its spins would pay.
  private readonly adaptiveSpin = hostTuning.adaptiveSpin;
  private readonly spinHistory: SpinHistory;
  private spinMicros = 0;
  private idleSince: number | undefined;
  private settleReady: { resolve: (r: HostReady) => void; reject: (e: HostExit) => void } | undefined;
  private readonly sandboxed: boolean;
  private readonly cgroup: PluginCgroup | null;
  private cgroupRemoved: Promise<void> | undefined;

  constructor(launch: HostLaunch) {
    // Turning the event loop without sleeping lets libuv see the host's answer without being woken for it.
    // Only for a call alone: with more in flight, answers keep the loop awake anyway, and a spinning JS
    // thread would take a core from the host's workers.
    this.spinHistory = new SpinHistory(launch.pollMicros);
    this.poller = new BusyPoll(launch.pollMicros, {
      ...(this.adaptiveSpin ? { budget: spinBudget } : {}),
      waiting: () => this.pending.size === 1,
      check: () => this.takeSharedResult(),
      onStart: () => this.setParentPolling(1),
      // Cleared before one last look, as the host sets the result before it looks at this word.
      onStop: () => {
        this.setParentPolling(0);
        this.takeSharedResult();
      },
    });
    // Only where polling runs: without it, every shared result would need a wake-up on fd 3 anyway.
    this.laneWanted = process.platform === 'linux' && launch.pollMicros > 0 && (hostTuning.sharedLane || hostTuning.adaptiveSpin);
    const hostArgs = [
      launch.libraryPath,
      String(launch.maxOutputBytes),
      String(launch.maxMemoryMb),
      String(launch.sandbox ? 0 : process.pid),
      hostOptions(launch.sandbox !== null, launch.unixSockets, this.laneWanted, !this.adaptiveSpin),
    ];
    let [command, args] = launch.sandbox ? [launch.sandbox.bwrap, sandboxedCommand(launch.sandbox, hostArgs)] : [launch.hostBinary, hostArgs];
    this.cgroup = launch.limits?.cgroup ?? null;
    if (launch.limits && (this.cgroup || launch.limits.launcherArgs.length > 0)) {
      const joins = (this.cgroup?.procsFiles ?? []).flatMap((file) => ['--join', file]);
      [command, args] = [launch.limits.launcher, [...joins, ...launch.limits.launcherArgs, '--', command, ...args]];
    }
    this.sandboxed = launch.sandbox !== null;
    // READY carries up to 1 MiB of metadata whatever the result limit (the host caps results itself, as TOO_LARGE).
    this.reader = new FrameReader(Math.max(launch.maxOutputBytes, READY_PAYLOAD_BYTES) + HEADER_BYTES);
    this.ready = new Promise((resolve, reject) => (this.settleReady = { resolve, reject }));
    this.ready.catch(() => undefined);
    // Own process group, so a kill reaches anything the plugin forked.
    this.child = spawn(command, args, {
      cwd: launch.cwd,
      // Sandboxed, bwrap passes its own environment on (no --setenv), so no value is on a command line.
      env: launch.sandbox ? launch.sandbox.env : launch.env,
      // fd 6 is the host's own: it creates the lane as a sealed memfd (see skillplug-host.c).
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'ignore'],
      detached: true,
    });
    this.frames = new FrameChannel(this.child.stdio[3] as Duplex, (chunk: Buffer) => this.onData(chunk));
    this.wakeChannel = (this.child.stdio as unknown as Writable[])[5] as Writable;
    // EPIPE: the host closed fd 5 because it runs no standby reader.
    this.wakeChannel.on('error', () => (this.wakeClosed = true));
    const errStream = this.child.stdio[2] as Readable;
    const notesStream = this.child.stdio[4] as Readable;
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
      this.child.once('exit', finish);
      this.child.once('error', (err) => {
        this.stderr += `\n${err.message}`;
        finish(null, null);
      });
    });
    void this.exited.then((exit) => this.onExit(exit));
    if (launch.concurrency !== undefined) this.configure(launch.concurrency);
    // Once this process has the mapping code, a new host's lane costs nothing: map it at once.
    if (this.laneWanted && (this.sharedAfter === 0 || this.adaptiveSpin) && laneTools) this.startSharedLane();
    // Referenced until the handshake ends; afterwards only while calls are in flight.
    void this.ready.finally(() => {
      if (this.pending.size === 0) this.setRef(false);
    }).catch(() => undefined);
  }

  /** True until the host has exited or been told to stop. */
  get alive(): boolean {
    return this.exit === undefined && this.killedFor === null;
  }

  /** The host's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Calls in flight on this host. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** The last lines the plugin wrote to stderr/stdout. */
  stderrTail(): string {
    return tailLines(this.stderr, TAIL_LINES);
  }

  /**
   * Sends one call. `onStart` runs once the call is among those the host is running (the rest wait in
   * its queue). The promise rejects with a {@link CallFailure} if the host dies first.
   */
  call(context: string, onStart: () => void): { id: number; result: Promise<ReturnedString> } {
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    if (this.exit) return { id, result: Promise.reject({ exit: this.exit, started: false } satisfies CallFailure) };
    const lone = this.pending.size === 0;
    // Lone calls count toward the lane; with adaptive spinning every call does, as its spin word lives there.
    if ((lone || this.adaptiveSpin) && !this.sharedStarting && this.laneWanted && ++this.loneCalls > this.sharedAfter) this.startSharedLane();
    this.leaseSpin();
    const wake = this.standbyWake();
    const result = new Promise<ReturnedString>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onStart, started: false });
      this.setRef(true);
      this.poller.touch();
      this.frames.corkUntilTick(this);
      // Calls that come in a batch (many callers answering one batch of results) are not alone.
      const joined = this.loneCandidate;
      this.loneCandidate = undefined;
      if (joined) this.frames.send(executeFrame(joined.id, joined.context));
      if (lone) this.loneCandidate = { id, context };
      else this.frames.send(executeFrame(id, context), wake);
    });
    this.promote();
    return { id, result };
  }

  // Before each call goes out. To an idle host, the wait since its last answer tells whether its spin
  // would have caught this call. The host spins after a frame only within a lease of the budget,
  // whose length it reads from SPIN_MICROS, written here before the frame that lets it spin.
  private leaseSpin(): void {
    if (!this.adaptiveSpin) return;
    const now = monotonicMicros();
    if (this.idleSince !== undefined) this.spinHistory.record(now - this.idleSince);
    this.idleSince = undefined;
    const window = this.spinHistory.window();
    const micros = window > 0 && this.shared && spinBudget.acquire(this) ? window : 0;
    if (micros === 0) spinBudget.release(this);
    if (micros !== this.spinMicros && this.shared) Atomics.store(this.shared.words, SharedWord.SPIN_MICROS, micros);
    this.spinMicros = micros;
  }

  // The host went idle: its lease (if any) lapses once its spin window has passed.
  private idle(): void {
    if (!this.adaptiveSpin) return;
    this.idleSince = monotonicMicros();
    spinBudget.settle(this, this.spinMicros);
  }

  // Maps the host's lane once it is ready (loading the mapping code the first time); calls use fd 3
  // until it is up, or for good if it fails.
  private startSharedLane(): void {
    this.sharedStarting = true;
    void Promise.all([laneAddon(), this.ready])
      .then(([loaded, ready]) => {
        if (ready.kind === 'ready') this.mapShared(loaded);
      })
      .catch(() => undefined);
  }

  // The host made the lane (a memfd whose size is sealed, so no one can truncate it under this
  // mapping) and keeps it at fd 6; this process opens it through /proc.
  private mapShared(tools: LaneAddon): void {
    if (this.exit || this.child.pid === undefined) return;
    const file = laneFile(this.child.pid);
    if (!file) return;
    let fd: number;
    try {
      fd = openSync(file, 'r+');
    } catch {
      return;
    }
    try {
      this.shared = mapLane(tools, fd);
    } finally {
      closeSync(fd);
    }
  }

  // Posts a call made alone in the shared region; false unless both sides mapped it and the context fits.
  private postShared(id: number, context: string): boolean {
    const shared = this.shared;
    if (!shared || !this.postLone || Atomics.load(shared.words, SharedWord.HOST_MAPPED) !== 1) return false;
    if (context.length * 3 > SHARED_AREA_BYTES && Buffer.byteLength(context) > SHARED_AREA_BYTES) return false;
    const length = shared.bytes.write(context, SHARED_REQ, SHARED_AREA_BYTES, 'utf8');
    Atomics.store(shared.words, SharedWord.REQ_LEN, length);
    // The host takes the post only after every frame written before it (a CONFIGURE, say), and before any written after.
    Atomics.store(shared.words, SharedWord.REQ_AFTER, this.frames.bytesSent | 0);
    Atomics.store(shared.words, SharedWord.REQ_SEQ, id | 0);
    this.sharedCallId = id;
    // Like EXECUTE_ALONE: a pooled host runs it on its reader, so further frames must wake the standby.
    if (this.workers > 1) this.aloneId = id;
    // The host is going to sleep on fd 3: wake it there. It clears its word before its last look, so one of us sees the other.
    if (Atomics.load(shared.words, SharedWord.HOST_POLLING) === 0) this.frames.send(SHARED_WAKE_FRAME);
    return true;
  }

  // Takes the shared call's result once the host has put it in; true when it did.
  private takeSharedResult(): boolean {
    const shared = this.shared;
    const id = this.sharedCallId;
    if (!shared || id === 0 || Atomics.load(shared.words, SharedWord.RESP_SEQ) !== (id | 0)) return false;
    this.sharedCallId = 0;
    const length = Atomics.load(shared.words, SharedWord.RESP_LEN);
    if (length < 4 || length > SHARED_AREA_BYTES) {
      this.violation(`a shared result of ${length} bytes`);
      return true;
    }
    // A copy first: the plugin can write to the region too, even while this decodes it.
    const payload = Buffer.from(shared.bytes.subarray(SHARED_RESP, SHARED_RESP + length));
    const call = this.pending.get(id);
    if (!call) return true;
    let returned: ReturnedString;
    try {
      returned = decodeReturned(payload, 0);
    } catch (err) {
      this.violation((err as Error).message);
      return true;
    }
    this.settled(id);
    call.resolve(returned);
    return true;
  }

  private setParentPolling(on: 0 | 1): void {
    if (this.shared) Atomics.store(this.shared.words, SharedWord.PARENT_POLLING, on);
  }

  /** Whether calls made alone go through the shared region now (for tests). */
  get sharedLaneUp(): boolean {
    return this.postLone && this.shared !== undefined && Atomics.load(this.shared.words, SharedWord.HOST_MAPPED) === 1;
  }

  /** Whether a call is running (not just queued in the host). */
  isRunning(id: number): boolean {
    return this.pending.get(id)?.started === true;
  }

  /**
   * Withdraws a call that has not started: the host drops it from its queue. If a worker took it
   * meanwhile, the host is killed, as for any cancelled running call.
   */
  cancelQueued(id: number): void {
    if (!this.pending.has(id) || this.exit) return;
    this.frames.corkUntilTick(this);
    this.frames.send(cancelFrame(id), this.standbyWake());
  }

  // While a lone call may be running on the host's reader, a frame must wake the standby once it is written.
  private standbyWake(): (() => void) | undefined {
    if (this.aloneId === undefined || !this.pending.has(this.aloneId) || this.wakeClosed) return undefined;
    return () => {
      if (!this.wakeClosed && !this.exit) this.wakeChannel.write(WAKE_BYTE);
    };
  }

  /** At the end of a tick of calls: a call still alone takes the lane, or goes as EXECUTE_ALONE or EXECUTE. */
  atTickEnd(): void {
    const lone = this.loneCandidate;
    this.loneCandidate = undefined;
    if (lone && this.pending.has(lone.id) && !this.postShared(lone.id, lone.context)) {
      const frame = executeFrame(lone.id, lone.context);
      // A pooled host runs it on its reader; further frames then wake the standby.
      if (this.workers > 1 && this.markLone) {
        markAlone(frame);
        this.aloneId = lone.id;
      }
      this.frames.send(frame);
    }
  }

  // Starts the clock of every call that has entered the host's running window.
  private promote(): void {
    let position = 0;
    for (const call of this.pending.values()) {
      if (position++ >= this.workers) break;
      if (!call.started) {
        call.started = true;
        call.onStart();
      }
    }
  }

  /** Tells the host how many worker threads to run (only takes effect once, before the first call). */
  configure(workers: number): void {
    if (this.exit || workers <= 1) return;
    this.workers = workers;
    this.frames.send(configureFrame(workers));
    this.promote();
  }

  /** Kills the host at once (SIGKILL to its group). */
  kill(reason: Exclude<HostExit['killedFor'], null>): void {
    if (this.exit) return;
    this.killedFor ??= reason;
    signalHost(this.child, 'SIGKILL');
  }

  /** Stops the host in steps: end input, SIGTERM, SIGKILL. */
  async stop(): Promise<void> {
    if (this.exit) return this.cgroupRemoved;
    this.killedFor ??= 'close';
    // A caller awaiting close must not see its process exit first.
    this.setRef(true);
    await stopHost(this.child, () => this.frames.end());
    await this.exited;
    await this.cgroupRemoved;
  }

  // Referenced only while someone awaits the host, so an idle host never keeps the caller alive.
  private setRef(on: boolean): void {
    if (on === this.referenced) return;
    this.referenced = on;
    const handles = [this.child, this.child.stdio[3], this.child.stdio[2], this.child.stdio[4], this.wakeChannel] as unknown as { ref?: () => void; unref?: () => void }[];
    for (const h of handles) (on ? h?.ref : h?.unref)?.call(h);
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.violation((err as Error).message);
      return;
    }
    for (const frame of frames) {
      try {
        if (frame.kind === HostMessage.READY && this.settleReady) {
          const abiVersion = frame.payload.readUInt32LE(0);
          const hasFree = frame.payload.readUInt32LE(4) === 1;
          const metadata = frame.payload.length > 8 ? decodeReturned(frame.payload, 8) : null;
          this.settleReady.resolve({ kind: 'ready', abiVersion, hasFree, metadata });
          this.settleReady = undefined;
        } else if (frame.kind === HostMessage.LOAD_ERROR && this.settleReady) {
          this.settleReady.resolve({ kind: 'load-error', reason: frame.payload.readUInt32LE(0), text: frame.payload.subarray(4).toString('utf8') });
          this.settleReady = undefined;
        } else if (frame.kind === HostMessage.RESULT && this.pending.has(frame.id)) {
          const call = this.pending.get(frame.id) as PendingCall;
          // A shared call's result too large for the region, or one the host queued, comes here.
          if (frame.id === this.sharedCallId) this.sharedCallId = 0;
          this.settled(frame.id);
          call.resolve(decodeReturned(frame.payload, 0));
        } else if (frame.kind === HostMessage.SHARED_RESULT) {
          // Polling may have taken it already; otherwise it must be there now.
          if (frame.id === this.sharedCallId && !this.takeSharedResult()) throw new ProtocolViolation(`SHARED_RESULT for call ${frame.id} before its result`);
        } else if (frame.kind === HostMessage.CANCEL_ACK) {
          const call = this.pending.get(frame.id);
          // No call: its result came first. Status 0: dropped before it ran. Otherwise it is running.
          if (call && frame.payload.readUInt32LE(0) === 0) this.settled(frame.id);
          else if (call) this.kill('cancel');
        } else {
          throw new ProtocolViolation(`unexpected frame kind ${frame.kind} id ${frame.id}`);
        }
      } catch (err) {
        this.violation(err instanceof RangeError ? `truncated frame: ${err.message}` : (err as Error).message);
        return;
      }
    }
    // A result in: keep polling for the one call that may still be in flight.
    this.poller.touch();
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) {
      this.setRef(false);
      this.idle();
    }
    this.promote();
  }

  // Something in the host process (the plugin) wrote to the channel: nothing on it can be trusted now.
  private violation(message: string): void {
    this.protocolError ??= message;
    this.kill('protocol');
  }

  private buildExit(code: number | null, signal: NodeJS.Signals | null): HostExit {
    let signalName: string | null = signal;
    let exitCode = code;
    // bwrap reports a child killed by signal N as exit code 128+N.
    if (this.sandboxed && signal === null && code !== null && code > 128 && SIGNAL_NAMES.has(code - 128)) {
      signalName = SIGNAL_NAMES.get(code - 128) as string;
      exitCode = null;
    }
    const note = /signal=(\d+) peak_kb=(\d+)/.exec(this.notes);
    if (note) {
      signalName = SIGNAL_NAMES.get(Number(note[1])) ?? `signal ${note[1]}`;
      exitCode = null;
    }
    const exit: HostExit = { signal: signalName, exitCode, peakKb: note ? Number(note[2]) : null, stderrTail: this.stderrTail(), killedFor: this.killedFor };
    if (this.protocolError !== undefined) exit.protocolError = this.protocolError;
    if (this.cgroup?.memoryLimitHit()) exit.memoryLimitHit = true;
    return exit;
  }

  private onExit(exit: HostExit): void {
    this.exit = exit;
    this.cgroupRemoved = this.cgroup?.remove();
    this.sharedCallId = 0;
    spinBudget.release(this);
    this.shared?.unmap();
    this.shared = undefined;
    this.setRef(false);
    this.frames.destroy();
    if (this.settleReady) {
      this.settleReady.reject(exit);
      this.settleReady = undefined;
    }
    for (const call of this.pending.values()) call.reject({ exit, started: call.started });
    this.pending.clear();
  }
}

/** The host's options word (see the usage line in skillplug-host.c). */
function hostOptions(sandboxed: boolean, unixSockets: boolean, lane: boolean, fixedSpin: boolean): string {
  const words = [];
  if (sandboxed) words.push('seccomp');
  if (sandboxed && !unixSockets) words.push('no-unix-sockets');
  if (lane) words.push('lane');
  if (fixedSpin) words.push('fixed-spin');
  return words.join(',') || '-';
}

// The host's fd 6 when it holds the lane: the spawned process itself, or inside bubblewrap a descendant.
function laneFile(spawned: number): string | undefined {
  for (const pid of processTree(spawned).slice(0, 16)) {
    const file = `/proc/${pid}/fd/6`;
    try {
      if (readlinkSync(file).startsWith('/memfd:skillplug-lane')) return file;
    } catch {
      // Not this one (or no longer there).
    }
  }
  return undefined;
}

function tailLines(text: string, lines: number): string {
  const parts = text.trimEnd().split('\n');
  return parts.slice(-lines).join('\n');
}
