import { openSync, readSync } from 'node:fs';
import os from 'node:os';

/**
 * One spin budget for the whole process: every thread that would poll instead of sleep (a host's
 * reader or worker, a pump worker, the event loop itself) asks here first. Polling only pays when a
 * core is free to do it; otherwise the poller steals the core the work it waits for needs. The
 * rules follow Go's scheduler (spin only while a processor is idle, and never more spinners than
 * that) and adaptive mutexes (stop spinning where spins do not end in a hit).
 *
 * Native spinners never decide for themselves: this process is the only writer of every spin word
 * (see docs/host-protocol.md, "Spinning"), so the cap holds whatever a host does.
 */
export interface SpinBudgetOptions {
  /** Cores of the machine (default `os.availableParallelism()`). */
  cores?: number;
  /** Monotonic clock in µs (default `process.hrtime`; tests inject one). */
  now?: () => number;
  /** Tasks runnable on the machine right now, the reader included; undefined when unknown (default: /proc/loadavg). */
  runnable?: () => number | undefined;
  /** How often the machine's load is sampled, in µs (default 10 ms). */
  sampleMicros?: number;
}

/** A thread (or process) that may hold one lease of the budget. */
export type SpinHolder = object;

interface Lease {
  /** Held while its call runs (a running call keeps a core busy too), else until this time. */
  until: number;
}

const HELD = Number.POSITIVE_INFINITY;
// A sample taken this many sample periods after the last one replaces the smoothed count instead of joining it.
const STALE_SAMPLES = 4;

/** Monotonic µs, the same clock as CLOCK_MONOTONIC in C (what a native spinner compares with). */
export function monotonicMicros(): number {
  const [seconds, nanos] = process.hrtime();
  return seconds * 1e6 + Math.floor(nanos / 1000);
}

// Kept open and re-read with one pread: readFileSync costs ~10x more here (open, fstat, growing reads, close).
let loadavgFd: number | undefined;
const loadavgBuffer = Buffer.alloc(128);
const [SPACE, SLASH, DIGIT_0, DIGIT_9] = [0x20, 0x2f, 0x30, 0x39];

/**
 * The running count from /proc/loadavg's text ("0.52 0.61 0.70 3/412 1234": the fourth field is
 * running/total, and the running count is instantaneous, not an average); undefined when malformed.
 * Parsed in place: this runs every 10 ms beside slow calls, cold, where a string and two splits cost
 * more than the read.
 */
export function runnableFromLoadavg(bytes: Uint8Array, length: number): number | undefined {
  const digit = (i: number): boolean => i < length && (bytes[i] as number) >= DIGIT_0 && (bytes[i] as number) <= DIGIT_9;
  let at = 0;
  for (let spaces = 0; at < length && spaces < 3; at++) if (bytes[at] === SPACE) spaces++;
  const start = at;
  let running = 0;
  for (; digit(at) && at - start < 9; at++) running = running * 10 + (bytes[at] as number) - DIGIT_0;
  // "running/total": a count, a slash, and a total after it.
  return at > start && at < length && bytes[at] === SLASH && digit(at + 1) ? running : undefined;
}

function procRunnable(): number | undefined {
  try {
    loadavgFd ??= openSync('/proc/loadavg', 'r');
    return runnableFromLoadavg(loadavgBuffer, readSync(loadavgFd, loadavgBuffer, 0, loadavgBuffer.length, 0));
  } catch {
    return undefined;
  }
}

export class SpinBudget {
  /** Most leases at once: one core is always left to the event loop's thread. */
  readonly cap: number;
  private readonly cores: number;
  private readonly now: () => number;
  private readonly runnable: () => number | undefined;
  private readonly sampleMicros: number;
  private readonly leases = new Map<SpinHolder, Lease>();
  private sampledAt = Number.NEGATIVE_INFINITY;
  // Smoothed count of runnable tasks that are not ours (one sample is a single instant).
  private othersRunnable = 0;

  constructor(options: SpinBudgetOptions = {}) {
    this.cores = Math.max(1, options.cores ?? os.availableParallelism());
    this.cap = this.cores - 1;
    this.now = options.now ?? monotonicMicros;
    this.runnable = options.runnable ?? procRunnable;
    this.sampleMicros = options.sampleMicros ?? 10_000;
  }

  /** Leases in force now (held or not yet expired). */
  active(): number {
    const now = this.now();
    let count = 0;
    for (const [holder, lease] of this.leases) {
      if (lease.until > now) count++;
      else this.leases.delete(holder);
    }
    return count;
  }

  /**
   * Cores beyond this thread (the event loop's) that other processes' work leaves free, by the
   * machine's runnable count minus this thread and this process's own spinners (runnable by design).
   * Sampled at most every `sampleMicros` and smoothed, as one sample is a single instant.
   */
  spareCores(): number {
    const now = this.now();
    const since = now - this.sampledAt;
    if (since >= this.sampleMicros) {
      this.sampledAt = now;
      const running = this.runnable();
      if (running !== undefined) {
        const others = Math.max(0, running - 1 - this.active());
        // Smoothed over consecutive samples only: after a long gap (nobody asked) the old average says nothing.
        this.othersRunnable = since > STALE_SAMPLES * this.sampleMicros ? others : (this.othersRunnable * 3 + others) / 4;
      }
    }
    return this.cores - 1 - Math.round(this.othersRunnable);
  }

  /**
   * Asks for a lease for `holder` to spin after its current call. Granted (true) only while fewer
   * than `cap` leases are in force and a core is free for it; the lease is held until {@link settle}.
   * A holder that already has a lease keeps it while a core is still free for it: a caller in a loop
   * renews its lease before the old one lapses, so without this look a lease taken on an idle machine
   * would go on spinning beside whatever started since.
   */
  acquire(holder: SpinHolder): boolean {
    const lease = this.leases.get(holder);
    if (lease && lease.until > this.now()) {
      // This holder's own lease is among the active ones: the question is whether a core is free besides the others'.
      if (this.spareCores() - (this.active() - 1) < 1) {
        this.leases.delete(holder);
        return false;
      }
      lease.until = HELD;
      return true;
    }
    const active = this.active();
    if (active >= this.cap || this.spareCores() - active < 1) return false;
    this.leases.set(holder, { until: HELD });
    return true;
  }

  /** The holder's call ended: it may spin `micros` more, then its lease lapses. */
  settle(holder: SpinHolder, micros: number): void {
    const lease = this.leases.get(holder);
    if (!lease) return;
    if (micros <= 0) this.leases.delete(holder);
    else lease.until = this.now() + micros;
  }

  /** Drops the holder's lease at once (it stopped, or will not spin). */
  release(holder: SpinHolder): void {
    this.leases.delete(holder);
  }

  /**
   * Whether the event loop may poll for a result now: only with a core besides its own that others
   * leave free, for whoever produces that result (a host, a pump worker); else polling takes it.
   */
  mayPollEventLoop(): boolean {
    return this.spareCores() >= 1;
  }
}

/**
 * Whether spinning pays for one spinner, from how its last waits ended: like an adaptive mutex, it
 * keeps spinning while most waits would have ended within the window and stops while they do not.
 * Waits are known to the parent even when nobody spun (the gap between an answer and the next
 * call), so a spinner that stopped learns when spinning would pay again without trying.
 */
export class SpinHistory {
  // Fraction of recent waits that ended within the window, in 1/256 steps (an EWMA of 1/8).
  private score = 256;
  private readonly windowMicros: number;

  constructor(windowMicros: number) {
    this.windowMicros = Math.max(0, windowMicros);
  }

  /** A wait ended after `micros` (the next call came, or the result landed). */
  record(micros: number): void {
    const hit = micros <= this.windowMicros ? 256 : 0;
    this.score += (hit - this.score) >> 3;
  }

  /** The window to spin now: the full window while at least half the recent waits ended within it, else 0. */
  window(): number {
    return this.windowMicros > 0 && this.score >= 128 ? this.windowMicros : 0;
  }
}

/**
 * Process-wide switches read when a host or pump starts (hostTuning forwards here, so the in-process
 * side needs nothing from host/), for the benchmark's ablation rows: `adaptive` false restores fixed
 * 150 µs spins; `park` false sends an in-process lone call on a loaded machine through koffi's async
 * path instead of parking the event loop for it (pump_park).
 */
export const spinSettings = { adaptive: true, park: true };

/** The budget every host and pump of this process shares. */
export const spinBudget = new SpinBudget();
