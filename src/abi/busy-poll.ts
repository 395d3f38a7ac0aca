import { SpinHistory, type SpinBudget } from './spin-budget.js';

/** What a {@link BusyPoll} asks of its owner. */
export interface BusyPollHooks {
  /** Whether polling still pays (a result is due, and few enough that polling beats waiting); it stops when not. */
  waiting: () => boolean;
  /** Looks for results; true when it found some. Without it, the turn itself (libuv's I/O poll) is the look. */
  check?: () => boolean;
  /** Runs when polling starts. */
  onStart?: () => void;
  /** Runs when polling stops. */
  onStop?: () => void;
  /** The clock, in ms. Default `performance.now`; tests inject one so the window does not depend on the machine's speed. */
  now?: () => number;
  /**
   * Poll only within this process's spin budget and only while polling pays (adaptive). Without it
   * the loop polls for the whole window after every submit, whatever the machine's load.
   */
  budget?: SpinBudget;
  /**
   * With a budget: poll beside other processes' load too, the poll's own history alone deciding. For
   * work in another process (a host), which the scheduler wakes by preempting whatever runs on the
   * other core, so this thread's polling takes no core that work needs.
   */
  besideLoad?: boolean;
  /**
   * With a budget: where polling would pay but no core is free for it, block this thread up to
   * `micros` for the result instead (true when it came; its result already handed on). Sleeping
   * hands the core to the thread doing the work, which wakes this one directly: cheaper, on a loaded
   * machine, than the event loop's wake-up. Runs at the end of the tick of the touch that chose it,
   * between `onStart` and `onStop`; undefined when it did not block (more than one result due).
   */
  park?: (micros: number) => boolean | undefined;
  /** With `park`: whether a park could happen now (say, nothing else is in flight); asked before choosing to park. */
  mayPark?: () => boolean;
}

/** How a due result is waited for: turning the event loop, or blocked in {@link BusyPollHooks.park}. */
type WaitMode = 'poll' | 'park';

// A poll that declined for lack of hits tries again after this many touches (adaptive mutexes probe
// too), twice as many after each probe that missed, so calls that never end within the window cost
// one wasted window per thousand calls rather than one per sixteen.
const PROBE_FIRST = 16;
const PROBE_MOST = 1024;
// Parks back to back (a serial caller's next call comes in the microtask after a parked result) keep the
// event loop from turning: after this long parked since its last turn, the next call waits as without
// parking, and the loop's timers and I/O run.
const PARK_TURN_MS = 1;

/**
 * Keeps the event loop turning, without sleeping, while results are due: a result that lands (from
 * a pump thread, or on a host's socket) is then seen on the next turn instead of after a cross-thread
 * or cross-process wake-up. Gives up `micros` after the last activity, so a long call costs little CPU.
 */
export class BusyPoll {
  private running = false;
  private parkDue = false;
  // When the first park since the event loop's last turn began (undefined: none since).
  private parkTurnStart: number | undefined;
  private lastActivity = 0;
  private readonly windowMs: number;
  private readonly hooks: BusyPollHooks;
  private readonly now: () => number;
  private readonly history: SpinHistory;
  private declined = 0;
  private probeEvery = PROBE_FIRST;
  // Set when pays() chose this touch to probe, so the touch that follows polls (or parks).
  private probeNext: WaitMode | undefined;
  // The poll running now is a probe, and whether it found a result: that sets when the next one is.
  private probing = false;
  private probeHit = false;

  constructor(micros: number, hooks: BusyPollHooks) {
    this.windowMs = micros / 1000;
    this.hooks = hooks;
    this.now = hooks.now ?? (() => performance.now());
    this.history = new SpinHistory(micros);
  }

  /** Starts polling (if it pays now), or extends it: call on each submit and each result. */
  touch(): void {
    this.lastActivity = this.now();
    if (this.running || this.parkDue || this.windowMs <= 0 || !this.hooks.waiting()) return;
    const mode = this.pays();
    if (!mode) return;
    this.probing = this.probeNext !== undefined;
    this.probeHit = false;
    this.probeNext = undefined;
    this.hooks.onStart?.();
    if (mode === 'park') {
      this.parkDue = true;
      // At the end of the tick: calls made together in it are not one call alone.
      process.nextTick(this.parkNow);
      return;
    }
    this.running = true;
    setImmediate(this.turn);
  }

  /**
   * Whether a submit now would be polled for: a core is free for the work awaited, and recent polls
   * ended in a hit (or this one probes). A caller with another path (koffi's async) takes it when not.
   */
  wouldPoll(): boolean {
    return this.windowMs > 0 && this.pays() !== undefined;
  }

  private pays(): WaitMode | undefined {
    const budget = this.hooks.budget;
    if (!budget) return 'poll';
    if (this.probeNext) {
      // A due probe asks afresh how to wait: a core may have come free, or parking may not be possible now.
      const mode = this.modeNow(budget);
      if (mode) this.probeNext = mode;
      return mode;
    }
    // The history first: the machine's load is looked up (a read of /proc) only when a poll is otherwise due.
    if (this.history.window() > 0) return this.modeNow(budget);
    // Polls stopped paying: probe now and then, so a caller that speeds up gets polling back.
    if (++this.declined < this.probeEvery) return undefined;
    const mode = this.modeNow(budget);
    // A due probe the load refuses stays due: the next touch asks again (the load is sampled at most every 10 ms).
    if (!mode) {
      this.declined = this.probeEvery - 1;
      return undefined;
    }
    this.declined = 0;
    this.probeNext = mode;
    return mode;
  }

  // Poll while a core is free for the work awaited (always, beside load, for work in another process); else park, if the owner can.
  private modeNow(budget: SpinBudget): WaitMode | undefined {
    if (this.hooks.besideLoad === true || budget.mayPollEventLoop()) return 'poll';
    return this.mayParkNow() ? 'park' : undefined;
  }

  private mayParkNow(): boolean {
    if (!this.hooks.park || this.hooks.mayPark?.() === false) return false;
    return this.parkTurnStart === undefined || this.now() - this.parkTurnStart < PARK_TURN_MS;
  }

  private readonly parkNow = (): void => {
    this.parkDue = false;
    const park = this.hooks.park as NonNullable<BusyPollHooks['park']>;
    if (this.parkTurnStart === undefined) {
      this.parkTurnStart = this.now();
      setImmediate(this.loopTurned);
    }
    const hit = this.hooks.waiting() ? park(this.windowMs * 1000) : false;
    if (hit === undefined) {
      // It did not wait, so it learnt nothing.
      this.probing = false;
      this.hooks.onStop?.();
      return;
    }
    if (hit) this.history.record((this.now() - this.lastActivity) * 1000);
    this.ended(hit);
  };

  private readonly loopTurned = (): void => {
    this.parkTurnStart = undefined;
  };

  private readonly turn = (): void => {
    const now = this.now();
    if (this.hooks.check?.()) {
      this.probeHit = true;
      this.history.record((now - this.lastActivity) * 1000);
      this.lastActivity = now;
    }
    if (this.hooks.waiting() && now - this.lastActivity < this.windowMs) {
      setImmediate(this.turn);
      return;
    }
    this.running = false;
    this.ended(this.probeHit);
  };

  // The window ran out (or the park ended): a result still due means this wait did not pay.
  private ended(hit: boolean): void {
    const missed = this.hooks.waiting();
    if (missed) this.history.record(Number.POSITIVE_INFINITY);
    if (this.probing) this.probeEvery = hit || !missed ? PROBE_FIRST : Math.min(this.probeEvery * 2, PROBE_MOST);
    this.probing = false;
    this.hooks.onStop?.();
  }
}
