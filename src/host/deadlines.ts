import { ChurnSet } from '../churn-table.js';

/** One call's deadline in a {@link Deadlines}. */
export interface Deadline {
  readonly at: number;
  readonly onExpire: () => void;
}

/**
 * Deadlines of many calls on one timer: adding or removing one creates and clears no timer, which a
 * call per few microseconds would otherwise pay for. The timer is unreferenced: whatever awaits a call
 * keeps the process alive, not its deadline.
 */
export class Deadlines {
  // One per call in flight, so kept young (src/churn-table.ts).
  private readonly entries = new ChurnSet<Deadline>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private readonly now: () => number;

  /** `now` is the clock in ms (default `performance.now`); tests inject one together with mocked timers. */
  constructor(now: () => number = () => performance.now()) {
    this.now = now;
  }

  /** Runs `onExpire` once `ms` have passed, unless the deadline is removed first. */
  add(ms: number, onExpire: () => void): Deadline {
    const deadline: Deadline = { at: this.now() + ms, onExpire };
    this.entries.add(deadline);
    // A timer already due earlier wakes up in time to re-arm for this one.
    if (deadline.at < this.timerAt) this.arm(deadline.at);
    return deadline;
  }

  /** Forgets a deadline; it never expires. */
  remove(deadline: Deadline): void {
    this.entries.delete(deadline);
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.fire, Math.max(0, at - this.now()));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.now();
    let next = Infinity;
    for (const deadline of [...this.entries.values()]) {
      if (deadline.at <= now) {
        this.entries.delete(deadline);
        deadline.onExpire();
      } else if (deadline.at < next) next = deadline.at;
    }
    if (next < Infinity && next < this.timerAt) this.arm(next);
  };
}
