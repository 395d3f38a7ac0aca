/** Calls queued per worker thread of a thread-safe plugin, so the next is ready the moment one frees up. */
export const PIPELINE_DEPTH = 32;

/**
 * A FIFO gate that lets at most `limit` holders in at once. With limit 1 it serializes calls in order.
 */
export class CallGate {
  private active = 0;
  private readonly waiting: { grant: () => void; refuse: (err: Error) => void }[] = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`gate limit must be a positive integer, got ${limit}`);
  }

  /** Calls in flight. */
  get inFlight(): number {
    return this.active;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** A slot right now if one is free and nobody waits (no promise, no tick); undefined otherwise. */
  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.limit || this.waiting.length > 0) return undefined;
    this.active++;
    return this.releaser();
  }

  /**
   * Every slot right now, if none is held and nobody waits: the holder runs alone, and the waiters that
   * come meanwhile are let in (FIFO) once it releases. `narrow()` instead keeps one slot (its release is
   * returned) and lets the others go at once. Undefined when a slot is held or a caller waits.
   */
  tryAcquireAll(): { release: () => void; narrow: () => () => void } | undefined {
    if (this.active > 0 || this.waiting.length > 0) return undefined;
    this.active = this.limit;
    let held = true;
    const releaseAll = this.releaser(this.limit);
    return {
      release: () => {
        if (!held) return;
        held = false;
        releaseAll();
      },
      narrow: () => {
        if (!held) throw new Error('CallGate: narrow() after the slots were given back');
        held = false;
        this.active -= this.limit - 1;
        this.grantFree();
        return this.releaser();
      },
    };
  }

  /**
   * Waits for a slot. Resolves to a release function that must be called exactly once.
   * If `onAbort` is given and the signal fires while waiting, the waiter leaves the queue and the promise rejects with its error.
   */
  acquire(signal?: AbortSignal, abortError?: () => Error): Promise<() => void> {
    if (this.active < this.limit && this.waiting.length === 0) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.active++;
          resolve(this.releaser());
        },
        refuse: (err: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(abortError ? abortError() : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Rejects every waiter with `error()`; holders keep their slots. */
  refuseWaiting(error: () => Error): void {
    for (const waiter of this.waiting.splice(0)) waiter.refuse(error());
  }

  private releaser(slots = 1): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active -= slots;
      this.grantFree();
    };
  }

  // Lets waiters in, first come first, while slots are free.
  private grantFree(): void {
    while (this.active < this.limit) {
      const next = this.waiting.shift();
      if (!next) break;
      next.grant();
    }
  }
}
