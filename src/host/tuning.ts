import { spinSettings } from '../abi/spin-budget.js';

/**
 * Internal switches of the isolated host's call path, for the benchmark's ablation rows and for tests
 * that must drive one path on purpose. Not exported from the package: a user never needs them, and a
 * product option that only turns a mechanism off would be a foot-gun (piscina keeps its atomics switch
 * for the same reason: to measure what the mechanism buys).
 */
export interface HostTuning {
  /** Post calls through the shared memory lane when nothing else is pending (default true). */
  sharedLane: boolean;
  /** Run a call alone on the host's reader thread when no other call is in flight (default true). */
  loneCalls: boolean;
  /** Lone calls before the shared lane is set up (default 64; 0 sends nearly every lone call through it). */
  sharedAfterLoneCalls: number;
  /** Spin only within the process-wide, adaptive spin budget instead of a fixed window (default true). */
  adaptiveSpin: boolean;
  /** In-process: park the event loop for a lone call on a loaded machine instead of taking koffi's async path (default true). */
  parkLoneCalls: boolean;
  /** Start hosts with posix_spawn through the host addon instead of Node's fork (default true). */
  directSpawn: boolean;
  /** How often a referenced host started that way is asked whether it ended, in case no SIGCHLD reached us (default 1000 ms). */
  reapCheckMs: number;
  /** How long a host runs no call before it gives back the heap it keeps for big calls (default 1000 ms). */
  heapTrimIdleMs: number;
}

/** The process-wide tuning in force; read when a host (or an in-process pump) starts. */
export const hostTuning: HostTuning = {
  sharedLane: true,
  loneCalls: true,
  sharedAfterLoneCalls: 64,
  directSpawn: true,
  reapCheckMs: 1000,
  heapTrimIdleMs: 1000,
  // Kept with the spin budget, below host/, where in-process pumps read it too.
  get adaptiveSpin(): boolean {
    return spinSettings.adaptive;
  },
  set adaptiveSpin(on: boolean) {
    spinSettings.adaptive = on;
  },
  get parkLoneCalls(): boolean {
    return spinSettings.park;
  },
  set parkLoneCalls(on: boolean) {
    spinSettings.park = on;
  },
};
