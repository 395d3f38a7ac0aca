import { BusyPoll } from '../abi/busy-poll.js';
import { ChurnMap } from '../churn-table.js';
import { spinBudget } from '../abi/spin-budget.js';
import { detachReturned, type ReturnedString } from '../abi/codec.js';
import {
  FrameReader,
  type Frame,
  HEADER_BYTES,
  HostMessage,
  ProtocolViolation,
  READY_PAYLOAD_BYTES,
  cancelFrame,
  configureFrame,
  decodeReturned,
} from './protocol.js';
import type { FrameChannel } from './frame-channel.js';
import { HostChild, type HostExit, type HostLaunch } from './host-child.js';
import { LoneCallPolicy } from './lone-calls.js';
import { SharedLane, type LaneResults } from './shared-lane.js';
import { hostTuning } from './tuning.js';

// Hosts of this process with a call in flight: with two or more, hosts run as SCHED_BATCH (docs/host-protocol.md, "Many hosts").
let busyHosts = 0;

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

/** One running host process serving one plugin. */
export class HostProcess implements LaneResults {
  /** Resolves with the host's first message; rejects with a {@link HostExit} if it dies first. */
  readonly ready: Promise<HostReady>;
  /** Resolves once the host has exited. */
  readonly exited: Promise<HostExit>;
  /** Resolves once the host's stderr (the plugin's log) has closed: everything it wrote has been read. */
  readonly logClosed: Promise<void>;
  private readonly child: HostChild;
  private readonly frames: FrameChannel;
  private readonly lane: SharedLane;
  private readonly lonePolicy: LoneCallPolicy;
  private readonly reader: FrameReader;
  // In dispatch order: the host takes calls first in, first out, so the first `workers` are the running ones.
  // One entry per call in flight, so kept young (src/churn-table.ts).
  private readonly pending = new ChurnMap<number, PendingCall>();
  private readonly poller: BusyPoll;
  private workers = 1;
  private nextId = 1;
  private settleReady: { resolve: (r: HostReady) => void; reject: (e: HostExit) => void } | undefined;

  constructor(launch: HostLaunch) {
    const adaptiveSpin = hostTuning.adaptiveSpin;
    // Turning the event loop without sleeping lets libuv see the host's answer without being woken for it.
    // Only for a call alone: with more in flight, answers keep the loop awake anyway, and a spinning JS
    // thread would take a core from the host's workers.
    this.poller = new BusyPoll(launch.pollMicros, {
      // Beside a busy neighbour too: the woken host preempts it, while a polled-for result saves this thread a wake-up (docs/host-protocol.md, "Spinning").
      ...(adaptiveSpin ? { budget: spinBudget, besideLoad: true } : {}),
      waiting: () => this.pending.size === 1,
      check: () => this.lane.take(),
      onStart: () => this.lane.setParentPolling(1),
      // Cleared before one last look, as the host sets the result before it looks at this word.
      onStop: () => {
        this.lane.setParentPolling(0);
        this.lane.take();
      },
    });
    const laneWanted = SharedLane.wanted(launch.pollMicros);
    // READY carries up to 1 MiB of metadata whatever the result limit (the host caps results itself, as TOO_LARGE).
    this.reader = new FrameReader(Math.max(launch.maxOutputBytes, READY_PAYLOAD_BYTES) + HEADER_BYTES);
    this.ready = new Promise((resolve, reject) => (this.settleReady = { resolve, reject }));
    this.ready.catch(() => undefined);
    this.child = new HostChild(launch, laneWanted, !adaptiveSpin, (chunk: Buffer) => this.onData(chunk));
    this.exited = this.child.exited;
    this.logClosed = this.child.logClosed;
    this.frames = this.child.frames;
    this.lane = new SharedLane(laneWanted, launch.pollMicros, this.child, this.frames, this, this.ready);
    this.lonePolicy = new LoneCallPolicy(this.child, this.frames, this.lane, this.pending);
    void this.exited.then((exit) => this.onExit(exit));
    if (launch.concurrency !== undefined) this.configure(launch.concurrency);
    this.lane.startAtSpawn();
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
    if (lone) busyHosts++;
    this.lane.countCall(lone);
    this.lane.leaseSpin();
    // With other hosts busy too, a woken host must not preempt this thread (or them) mid-batch.
    this.lane.setBatch(busyHosts >= 2);
    const wake = this.lonePolicy.standbyWake();
    const result = new Promise<ReturnedString>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onStart, started: false });
      this.child.setRef(true);
      this.poller.touch();
      this.lonePolicy.send(id, context, lone, wake);
    });
    this.promote();
    return { id, result };
  }

  /** For the lane: the result of the call it posted, copied out of the region. */
  sharedResult(id: number, payload: Buffer): void {
    const call = this.pending.get(id);
    if (!call) return;
    let returned: ReturnedString;
    try {
      returned = decodeReturned(payload, 0);
    } catch (err) {
      this.violation((err as Error).message);
      return;
    }
    this.settled(id);
    call.resolve(returned);
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
    this.frames.corkUntilTick(this.lonePolicy);
    this.frames.send(cancelFrame(id), this.lonePolicy.standbyWake());
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
    this.lonePolicy.pooled = true;
    this.frames.send(configureFrame(workers));
    this.promote();
  }

  /** Kills the host at once (SIGKILL to its group). */
  kill(reason: Exclude<HostExit['killedFor'], null>): void {
    this.child.kill(reason);
  }

  /** Stops the host in steps: end input, SIGTERM, SIGKILL. */
  stop(): Promise<void> {
    return this.child.stop();
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
          this.lane.answeredOnChannel(frame.id);
          this.settled(frame.id);
          let returned = decodeReturned(frame.payload, 0);
          // A long result may lie in the reader's reusable memory: the call gets it decoded, and the memory goes back.
          if (this.reader.isLent(frame.payload)) {
            returned = detachReturned(returned);
            this.reader.release(frame.payload);
          }
          call.resolve(returned);
        } else if (frame.kind === HostMessage.SHARED_RESULT) {
          // Polling may have taken it already; otherwise it must be there now.
          if (frame.id === this.lane.callId && !this.lane.take()) throw new ProtocolViolation(`SHARED_RESULT for call ${frame.id} before its result`);
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
    const removed = this.pending.delete(id);
    if (this.pending.size === 0) {
      if (removed) busyHosts--;
      this.child.setRef(false);
      this.lane.idle();
    }
    this.promote();
  }

  /** Something in the host process (the plugin) broke the protocol: the host is killed. */
  violation(message: string): void {
    this.child.violation(message);
  }

  private onExit(exit: HostExit): void {
    if (this.pending.size > 0) busyHosts--;
    this.lane.close();
    this.lonePolicy.close();
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
