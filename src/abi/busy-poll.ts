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
}

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

  constructor(micros: number, hooks: BusyPollHooks) {
    this.windowMs = micros / 1000;
    this.hooks = hooks;
    this.now = hooks.now ?? (() => performance.now());
  }

  /** Starts polling (if it pays now), or extends it: call on each submit and each result. */
  touch(): void {
    this.lastActivity = this.now();
    if (this.running || this.windowMs <= 0 || !this.hooks.waiting()) return;
    this.running = true;
    this.hooks.onStart?.();
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    const now = this.now();
    if (this.hooks.check?.()) this.lastActivity = now;
    if (this.hooks.waiting() && now - this.lastActivity < this.windowMs) {
      setImmediate(this.turn);
      return;
    }
    this.running = false;
    this.hooks.onStop?.();
  };
}
