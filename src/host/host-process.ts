import { closeSync, openSync, readlinkSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { BusyPoll } from '../abi/busy-poll.js';
import { SpinHistory, monotonicMicros, spinBudget } from '../abi/spin-budget.js';
import type { ReturnedString } from '../abi/codec.js';
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
import { HostChild, type HostExit, type HostLaunch } from './host-child.js';
import { processTree } from './process-tree.js';
import { hostTuning } from './tuning.js';

export type { HostExit, HostLaunch } from './host-child.js';

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
const WAKE_BYTE = Buffer.of(1);

/** One running host process serving one plugin. */
export class HostProcess implements TickEnd {
  /** Resolves with the host's first message; rejects with a {@link HostExit} if it dies first. */
  readonly ready: Promise<HostReady>;
  /** Resolves once the host has exited. */
  readonly exited: Promise<HostExit>;
  /** Resolves once the host's stderr (the plugin's log) has closed: everything it wrote has been read. */
  readonly logClosed: Promise<void>;
  private readonly child: HostChild;
  private readonly frames: FrameChannel;
  private readonly reader: FrameReader;
  // In dispatch order: the host takes calls first in, first out, so the first `workers` are the running ones.
  private readonly pending = new Map<number, PendingCall>();
  private readonly poller: BusyPoll;
  // The host's standby reader sleeps on fd 5; a byte wakes it to read fd 3 while a lone call runs.
  private readonly wakeChannel: Writable;
  private wakeClosed = false;
  private aloneId: number | undefined;
  // A call made with nothing in flight waits for the end of its tick: still alone then, it takes the
  // shared lane or goes as EXECUTE_ALONE; joined by another call, it goes first as a plain EXECUTE.
  private loneCandidate: { id: number; context: string } | undefined;
  private workers = 1;
  private nextId = 1;
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
    // READY carries up to 1 MiB of metadata whatever the result limit (the host caps results itself, as TOO_LARGE).
    this.reader = new FrameReader(Math.max(launch.maxOutputBytes, READY_PAYLOAD_BYTES) + HEADER_BYTES);
    this.ready = new Promise((resolve, reject) => (this.settleReady = { resolve, reject }));
    this.ready.catch(() => undefined);
    this.child = new HostChild(launch, this.laneWanted, !this.adaptiveSpin);
    this.exited = this.child.exited;
    this.logClosed = this.child.logClosed;
    this.frames = new FrameChannel(this.child.socket, (chunk: Buffer) => this.onData(chunk));
    this.wakeChannel = this.child.wake;
    // EPIPE: the host closed fd 5 because it runs no standby reader.
    this.wakeChannel.on('error', () => (this.wakeClosed = true));
    void this.exited.then((exit) => this.onExit(exit));
    if (launch.concurrency !== undefined) this.configure(launch.concurrency);
    // Once this process has the mapping code, a new host's lane costs nothing: map it at once.
    if (this.laneWanted && (this.sharedAfter === 0 || this.adaptiveSpin) && laneTools) this.startSharedLane();
    // Referenced until the handshake ends; afterwards only while calls are in flight.
    void this.ready.finally(() => {
      if (this.pending.size === 0) this.child.setRef(false);
    }).catch(() => undefined);
  }

  /** True until the host has exited or been told to stop. */
  get alive(): boolean {
    return this.child.alive;
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
    return this.child.stderrTail();
  }

  /**
   * Sends one call. `onStart` runs once the call is among those the host is running (the rest wait in
   * its queue). The promise rejects with a {@link CallFailure} if the host dies first.
   */
  call(context: string, onStart: () => void): { id: number; result: Promise<ReturnedString> } {
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    if (this.child.exit) return { id, result: Promise.reject({ exit: this.child.exit, started: false } satisfies CallFailure) };
    const lone = this.pending.size === 0;
    // Lone calls count toward the lane; with adaptive spinning every call does, as its spin word lives there.
    if ((lone || this.adaptiveSpin) && !this.sharedStarting && this.laneWanted && ++this.loneCalls > this.sharedAfter) this.startSharedLane();
    this.leaseSpin();
    const wake = this.standbyWake();
    const result = new Promise<ReturnedString>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onStart, started: false });
      this.child.setRef(true);
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
    if (this.child.exit || this.child.pid === undefined) return;
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
    if (!this.pending.has(id) || this.child.exit) return;
    this.frames.corkUntilTick(this);
    this.frames.send(cancelFrame(id), this.standbyWake());
  }

  // While a lone call may be running on the host's reader, a frame must wake the standby once it is written.
  private standbyWake(): (() => void) | undefined {
    if (this.aloneId === undefined || !this.pending.has(this.aloneId) || this.wakeClosed) return undefined;
    return () => {
      if (!this.wakeClosed && !this.child.exit) this.wakeChannel.write(WAKE_BYTE);
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
    if (this.child.exit || workers <= 1) return;
    this.workers = workers;
    this.frames.send(configureFrame(workers));
    this.promote();
  }

  /** Kills the host at once (SIGKILL to its group). */
  kill(reason: Exclude<HostExit['killedFor'], null>): void {
    this.child.kill(reason);
  }

  /** Stops the host in steps: end input, SIGTERM, SIGKILL. */
  stop(): Promise<void> {
    return this.child.stop(() => this.frames.end());
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
      this.child.setRef(false);
      this.idle();
    }
    this.promote();
  }

  private violation(message: string): void {
    this.child.violation(message);
  }

  private onExit(exit: HostExit): void {
    this.sharedCallId = 0;
    spinBudget.release(this);
    this.shared?.unmap();
    this.shared = undefined;
    this.child.setRef(false);
    this.frames.destroy();
    if (this.settleReady) {
      this.settleReady.reject(exit);
      this.settleReady = undefined;
    }
    for (const call of this.pending.values()) call.reject({ exit, started: call.started });
    this.pending.clear();
  }
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
