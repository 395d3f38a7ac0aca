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
}

// A poll that declined for lack of hits tries again after this many touches (adaptive mutexes probe
// too), twice as many after each probe that missed, so calls that never end within the window cost
// one wasted window per thousand calls rather than one per sixteen.
const PROBE_FIRST = 16;
const PROBE_MOST = 1024;

/**
 * Keeps the event loop turning, without sleeping, while results are due: a result that lands (from
 * a pump thread, or on a host's socket) is then seen on the next turn instead of after a cross-thread
 * or cross-process wake-up. Gives up `micros` after the last activity, so a long call costs little CPU.
 */
export class BusyPoll {
  private running = false;
  private lastActivity = 0;
  private readonly windowMs: number;
  private readonly hooks: BusyPollHooks;
  private readonly now: () => number;
  private readonly history: SpinHistory;
  private declined = 0;
  private probeEvery = PROBE_FIRST;
  // Set when pays() chose this touch to probe, so the touch that follows polls.
  private probeNext = false;
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
    if (this.running || this.windowMs <= 0 || !this.hooks.waiting() || !this.pays()) return;
    this.probing = this.probeNext;
    this.probeHit = false;
    this.probeNext = false;
    this.running = true;
    this.hooks.onStart?.();
    setImmediate(this.turn);
  }

  /**
   * Whether a submit now would be polled for: a core is free for the work awaited, and recent polls
   * ended in a hit (or this one probes). A caller with another path (koffi's async) takes it when not.
   */
  wouldPoll(): boolean {
    return this.windowMs > 0 && this.pays();
  }

  private pays(): boolean {
    const budget = this.hooks.budget;
    if (!budget || this.probeNext) return true;
    // The history first: the machine's load is looked up (a read of /proc) only when a poll is otherwise due.
    if (this.history.window() > 0) return this.coreFree(budget);
    // Polls stopped paying: probe now and then, so a caller that speeds up gets polling back.
    if (++this.declined < this.probeEvery) return false;
    // A due probe the load refuses stays due: the next touch asks again (the load is sampled at most every 10 ms).
    if (!this.coreFree(budget)) {
      this.declined = this.probeEvery - 1;
      return false;
    }
    this.declined = 0;
    this.probeNext = true;
    return true;
  }

  // Whether a core is free for the work awaited (always, beside load, for work in another process).
  private coreFree(budget: SpinBudget): boolean {
    return this.hooks.besideLoad === true || budget.mayPollEventLoop();
  }

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
    // The window ran out with a result still due: this poll did not pay.
    const missed = this.hooks.waiting();
    if (missed) this.history.record(Number.POSITIVE_INFINITY);
    if (this.probing) this.probeEvery = this.probeHit || !missed ? PROBE_FIRST : Math.min(this.probeEvery * 2, PROBE_MOST);
    this.probing = false;
    this.running = false;
    this.hooks.onStop?.();
  };
}
