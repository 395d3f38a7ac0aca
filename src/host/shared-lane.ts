import { closeSync, openSync, readlinkSync } from 'node:fs';
import { SpinHistory, monotonicMicros, spinBudget } from '../abi/spin-budget.js';
import type { FrameChannel } from './frame-channel.js';
import { type HostAddon, hostAddon } from './host-addon.js';
import type { HostChild } from './host-child.js';
import { processTree } from './process-tree.js';
import { SHARED_AREA_BYTES, SHARED_BYTES, SHARED_REQ, SHARED_RESP, SHARED_WAKE_FRAME, SharedWord } from './protocol.js';
import { hostTuning } from './tuning.js';

/** The host's lane as this process maps it. */
export interface SharedMapping {
  /** The whole region, aliasing the mapping. */
  bytes: Buffer;
  /** The region's leading 32-bit words, for Atomics. */
  words: Int32Array;
  /** Lets go of the lane (a stale view then reads zeros, never a freed mapping). */
  unmap(): void;
}

/** Maps a lane fd: only a memfd sealed against shrinking, whoever put it at that fd (the plugin could). */
export function mapLane(tools: Pick<HostAddon, 'map' | 'unmap'>, fd: number): SharedMapping | undefined {
  const region = tools.map(fd, SHARED_BYTES);
  return region ? { bytes: Buffer.from(region), words: new Int32Array(region, 0, 16), unmap: () => tools.unmap(region) } : undefined;
}

// Set by the first lane this process maps (after the calls hostTuning.sharedAfterLoneCalls asks for); later hosts map theirs at once.
let lanesStarted = false;

/** Who gets what the lane takes from the host. */
export interface LaneResults {
  /** The posted call's result, copied out of the region (undecoded: the plugin could have written it). */
  sharedResult(id: number, payload: Buffer): void;
  /** The region holds something malformed. */
  violation(message: string): void;
}

/**
 * The shared lane (fd 6, see skillplug-host.c and docs/host-protocol.md): a call alone goes through
 * memory both processes map. Also holds the host's spin lease, as its word lives there.
 */
export class SharedLane {
  private shared: SharedMapping | undefined;
  private starting = false;
  // The call posted and not yet answered, 0 for none: at most one is outstanding (rule 1).
  private postedId = 0;
  private loneCalls = 0;
  // Calls before the lane is mapped: a mapping costs a /proc lookup and an mmap, which only a caller
  // making call after call gets back (hostTuning.sharedAfterLoneCalls).
  private readonly sharedAfter = hostTuning.sharedAfterLoneCalls;
  private readonly postLone = hostTuning.sharedLane;
  // Spinning (see docs/host-protocol.md, "Spinning"): the host spins only within a lease of the
  // process-wide budget, written to SPIN_MICROS; the history says whether its spins would pay.
  private readonly adaptiveSpin = hostTuning.adaptiveSpin;
  private readonly spinHistory: SpinHistory;
  private spinMicros = 0;
  private idleSince: number | undefined;
  private batch = false;

  /** Whether a host polled for `pollMicros` should make a lane (its options word says so). */
  static wanted(pollMicros: number): boolean {
    // Only where polling runs: without it, every shared result would need a wake-up on fd 3 anyway.
    return process.platform === 'linux' && pollMicros > 0 && (hostTuning.sharedLane || hostTuning.adaptiveSpin);
  }

  constructor(
    private readonly wanted: boolean,
    pollMicros: number,
    private readonly child: HostChild,
    private readonly frames: FrameChannel,
    private readonly results: LaneResults,
    private readonly ready: Promise<{ kind: string }>,
  ) {
    this.spinHistory = new SpinHistory(pollMicros);
  }

  /** The call posted and not yet answered; 0 for none. */
  get callId(): number {
    return this.postedId;
  }

  /**
   * Whether this process wakes the host's standby by the lane's READER_AWAY (rule 7): set once, when
   * mapped, and from then on the host's reader may run any call it read last, not just lone ones.
   */
  get watched(): boolean {
    return this.shared !== undefined;
  }

  /** The host's READER_AWAY word (trips away << 2 | {@link ReaderAway} state); 0 without a lane. */
  readerAway(): number {
    return this.shared === undefined ? 0 : Atomics.load(this.shared.words, SharedWord.READER_AWAY);
  }

  /**
   * Whether the host's threads should run as SCHED_BATCH (lane word BATCH, read by each thread as it
   * next wakes): written only when it changes. See docs/host-protocol.md, "Many hosts".
   */
  setBatch(on: boolean): void {
    if (on === this.batch || !this.shared) return;
    this.batch = on;
    Atomics.store(this.shared.words, SharedWord.BATCH, on ? 1 : 0);
  }

  /** Whether calls made alone go through the shared region now (for tests). */
  get up(): boolean {
    return this.postLone && this.shared !== undefined && Atomics.load(this.shared.words, SharedWord.HOST_MAPPED) === 1;
  }

  // Once this process has the mapping code, a new host's lane costs nothing: map it at once.
  startAtSpawn(): void {
    if (this.wanted && (this.sharedAfter === 0 || this.adaptiveSpin) && lanesStarted) this.start();
  }

  /** Counts a call toward the lane, and starts it once enough came. */
  countCall(lone: boolean): void {
    // Lone calls count toward the lane; with adaptive spinning every call does, as its spin word lives there.
    if ((lone || this.adaptiveSpin) && !this.starting && this.wanted && ++this.loneCalls > this.sharedAfter) this.start();
  }

  // Before each call goes out. To an idle host, the wait since its last answer tells whether its spin
  // would have caught this call. The host spins after a frame only within a lease of the budget,
  // whose length it reads from SPIN_MICROS, written here before the frame that lets it spin.
  leaseSpin(): void {
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
  idle(): void {
    if (!this.adaptiveSpin) return;
    this.idleSince = monotonicMicros();
    spinBudget.settle(this, this.spinMicros);
  }

  // Maps the host's lane once it is ready (loading the mapping code the first time); calls use fd 3
  // until it is up, or for good if it fails.
  private start(): void {
    this.starting = true;
    void Promise.all([hostAddon(), this.ready])
      .then(([loaded, ready]) => {
        lanesStarted = true;
        if (ready.kind === 'ready') this.map(loaded);
      })
      .catch(() => undefined);
  }

  // The host made the lane (a memfd whose size is sealed, so no one can truncate it under this
  // mapping) and keeps it at fd 6; this process opens it through /proc.
  private map(tools: HostAddon): void {
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
    if (this.shared) Atomics.store(this.shared.words, SharedWord.PARENT_WATCHES, 1);
  }

  /** Posts a call made alone in the shared region; false unless both sides mapped it and the context fits. */
  post(id: number, context: string): boolean {
    const shared = this.shared;
    if (!shared || !this.postLone || Atomics.load(shared.words, SharedWord.HOST_MAPPED) !== 1) return false;
    if (context.length * 3 > SHARED_AREA_BYTES && Buffer.byteLength(context) > SHARED_AREA_BYTES) return false;
    const length = shared.bytes.write(context, SHARED_REQ, SHARED_AREA_BYTES, 'utf8');
    Atomics.store(shared.words, SharedWord.REQ_LEN, length);
    // The host takes the post only after every frame written before it (a CONFIGURE, say), and before any written after.
    Atomics.store(shared.words, SharedWord.REQ_AFTER, this.frames.bytesSent | 0);
    Atomics.store(shared.words, SharedWord.REQ_SEQ, id | 0);
    this.postedId = id;
    // The host is going to sleep on fd 3: wake it there. It clears its word before its last look, so one of us sees the other.
    if (Atomics.load(shared.words, SharedWord.HOST_POLLING) === 0) this.frames.send(SHARED_WAKE_FRAME);
    return true;
  }

  /** Takes the posted call's result once the host has put it in, handing it on; true when it did. */
  take(): boolean {
    const shared = this.shared;
    const id = this.postedId;
    if (!shared || id === 0 || Atomics.load(shared.words, SharedWord.RESP_SEQ) !== (id | 0)) return false;
    this.postedId = 0;
    const length = Atomics.load(shared.words, SharedWord.RESP_LEN);
    if (length < 4 || length > SHARED_AREA_BYTES) {
      this.results.violation(`a shared result of ${length} bytes`);
      return true;
    }
    // A copy first: the plugin can write to the region too, even while this decodes it.
    this.results.sharedResult(id, Buffer.from(shared.bytes.subarray(SHARED_RESP, SHARED_RESP + length)));
    return true;
  }

  /** A call's result came on fd 3 (too large for the region, or the host queued the post): nothing is posted now. */
  answeredOnChannel(id: number): void {
    if (id === this.postedId) this.postedId = 0;
  }

  setParentPolling(on: 0 | 1): void {
    if (this.shared) Atomics.store(this.shared.words, SharedWord.PARENT_POLLING, on);
  }

  /** The host is gone: drop the post, the spin lease and the mapping. */
  close(): void {
    this.postedId = 0;
    spinBudget.release(this);
    this.shared?.unmap();
    this.shared = undefined;
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
