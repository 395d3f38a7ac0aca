// Calls in flight over every plugin of this process.
let processCalls = 0;

/** Calls in flight over every plugin of this process (what a call alone may block the event loop for). */
export function processCallsInFlight(): number {
  return processCalls;
}

/** Counts calls in flight and lets `close()` wait until there are none. */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  /** Calls in flight. */
  get size(): number {
    return this.count;
  }

  /** A call started. */
  begin(): void {
    this.count++;
    processCalls++;
  }

  /** A call finished. */
  end(): void {
    this.count--;
    processCalls--;
    if (this.count === 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Resolves once no call is in flight. */
  drained(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}
