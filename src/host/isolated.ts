import { existsSync } from 'node:fs';
import { encodeContextText, type Origin, type ReturnedString } from '../abi/codec.js';
import { PluginLogHub, type PluginLogEvent } from '../abi/plugin-log.js';
import type { PluginContext, PluginMetadata, PluginResult } from '../abi/types.js';
import type { ExecuteOptions, NativePluginTrait } from '../plugin/interfaces.js';
import { ErrorCode, PluginError } from '../errors.js';
import type { PluginManifest } from '../manifest/index.js';
import { cancelledError, checkExecuteOptions, checkInputSchema, closedError, failureFacts, timeoutError } from '../plugin/call-errors.js';
import { CallGate, PIPELINE_DEPTH } from '../plugin/gate.js';
import { InFlight } from '../plugin/in-flight.js';
import { checkAbiVersion, checkMetadata, resultFromReturned } from '../plugin/handshake.js';
import { detectSandbox, hostEnvironment, type EffectivePermissions, type SandboxMode, type SandboxPlan } from '../sandbox/index.js';
import { ensureHostBinary, ensureLauncherBinary } from '../toolchain.js';
import { hostAddon } from './host-addon.js';
import { detectCgroups, PluginCgroup } from '../sandbox/limits.js';
import { Deadlines, type Deadline } from './deadlines.js';
import { heapKeepMb } from './host-child.js';
import { HostProcess, type CallFailure, type HostExit, type HostReady } from './host-process.js';
import { TreeRss } from './process-tree.js';
import { LoadErrorReason } from './protocol.js';

/** How long a refused load waits for the rest of the plugin's log (its host is stopping). */
const LOG_DRAIN_MS = 2000;

/** Stops the host and waits until its log is read to the end, or LOG_DRAIN_MS. */
async function logDrained(host: HostProcess): Promise<void> {
  let bound: NodeJS.Timeout | undefined;
  // A bound, not an ordering: a process the plugin left holding stderr must not hold up the caller.
  const drained = new Promise<void>((resolve) => {
    bound = setTimeout(resolve, LOG_DRAIN_MS);
  });
  await Promise.race([host.stop().then(() => host.logClosed), drained]);
  clearTimeout(bound);
}

/**
 * Bad metadata often comes with the reason on stderr (the Rust SDK writes a panic in metadata()
 * there, since NULL is all the ABI lets it return): stop the host, read its log to the end, and
 * attach it, so the user sees why.
 */
async function withPluginLog(err: PluginError, host: HostProcess): Promise<PluginError> {
  await logDrained(host);
  const tail = host.stderrTail();
  if (!tail) return err;
  return new PluginError(err.code, `${err.message} The plugin wrote to stderr:\n${tail}`, {
    ...(err.plugin ? { plugin: err.plugin } : {}),
    ...(err.path ? { path: err.path } : {}),
    ...(err.data ? { data: err.data } : {}),
    failure: failureFacts({ stderrTail: tail }),
  });
}

/** Crashes within {@link CRASH_WINDOW_MS} that quarantine a plugin. */
export const CRASHES_TO_QUARANTINE = 3;
/** The window in which crashes count toward quarantine. */
export const CRASH_WINDOW_MS = 60_000;
/** Longest automatic quarantine: 1 h. */
export const MAX_QUARANTINE_MS = 3_600_000;
/**
 * A host's resident memory is read after its first call, then after as many calls as half its
 * headroom lasts at the growth seen since the last reading, within these bounds: a leaking plugin
 * is read every 16 calls as before, a steady one every 1024 (each reading is ~10 preads of /proc).
 */
export const RSS_CHECK_MIN_CALLS = 16;
export const RSS_CHECK_MAX_CALLS = 1024;

/** Calls until the next reading: half the headroom at the growth per call since the last one. */
export function callsUntilRssCheck(limitKb: number, kb: number, previousKb: number | undefined, callsSince: number): number {
  const growthPerCall = previousKb === undefined || callsSince <= 0 ? Number.POSITIVE_INFINITY : (kb - previousKb) / callsSince;
  const calls = growthPerCall > 0 ? Math.floor((limitKb - kb) / growthPerCall / 2) : RSS_CHECK_MAX_CALLS;
  return Math.min(RSS_CHECK_MAX_CALLS, Math.max(RSS_CHECK_MIN_CALLS, calls));
}
// A plugin's process tree is summed up to this many processes.
const RSS_MAX_PROCESSES = 64;
/** A crash whose peak address space reached this share of the limit is reported as a memory limit. */
const MEMORY_LIMIT_SHARE = 0.9;

/** What an isolated plugin needs to open. */
export interface IsolatedOpenOptions {
  dir: string;
  libraryPath: string;
  manifestName: string;
  manifest: PluginManifest;
  /** What the plugin asked for and the user granted, already checked and resolved by the loader. */
  permissions: EffectivePermissions;
  workspace: string | null;
  maxOutputBytes: number;
  maxConcurrency: number;
  /** How long the event loop polls for a host's results (µs); 0: it sleeps until they arrive. */
  pollMicros: number;
  timeoutMs: number;
  maxMemoryMb: number;
  /** Tasks (processes and threads) the whole plugin may have at once, where a cgroup or a user namespace lets that be bounded. */
  maxProcesses: number;
  sandbox: SandboxMode;
  env: Record<string, string> | undefined;
  onWarning: (message: string) => void;
  onLog: ((plugin: string, text: string) => void) | undefined;
  /** Receives the plugin's output line by line, parsed and bounded (see docs/abi.md "Logging"). */
  onPluginLog?: ((event: PluginLogEvent) => void) | undefined;
  /** Runs once the plugin is closed and its host stopped. */
  onClosed?: (() => void) | undefined;
  /** Replace the host after it served this many calls; 0: never. */
  recycleAfterCalls?: number;
  /** Replace the host, between calls, once its processes' resident memory passes this many MiB; 0: never. */
  recycleAboveMb?: number;
  /** First quarantine after repeated crashes, in ms (doubling on each repeat); 0: until lifted by hand. */
  quarantineMs?: number;
}

/** What an isolated plugin's hosts have been through. */
export interface IsolatedPluginStats {
  /** Hosts started so far (the first included). */
  hostsStarted: number;
  /** Hosts replaced between calls by recycling. */
  recycled: number;
  /** Crashes counted toward quarantine (kills skillplug made are not crashes). */
  crashes: number;
  /** Times the plugin was quarantined. */
  quarantines: number;
  /** When the current quarantine lifts (ms since the epoch), null when not quarantined, Infinity when only by hand. */
  quarantinedUntil: number | null;
}

// One resident-memory probe per host, its /proc files kept open; closed when the host exits.
const rssProbes = new WeakMap<HostProcess, TreeRss>();
function hostRssKb(host: HostProcess, pid: number): number | null {
  let probe = rssProbes.get(host);
  if (!probe) {
    const created = new TreeRss(pid, RSS_MAX_PROCESSES);
    rssProbes.set(host, created);
    void host.exited.then(() => created.close());
    probe = created;
  }
  return probe.kb();
}

let warnedNoSandbox = false;
const warnedLimits = new Set<string>();

/** Whether a sandboxed plugin may create Unix sockets (a read-only bind does not stop connect()): only with network or unix_sockets granted. */
function mayUseUnixSockets(permissions: SandboxPlan['permissions']): boolean {
  return permissions.network || permissions.unix_sockets;
}

function warnLimitsOnce(options: IsolatedOpenOptions, message: string): void {
  if (warnedLimits.has(message)) return;
  warnedLimits.add(message);
  options.onWarning(message);
}

/** Arguments for the launcher inside the sandbox: a file-size limit, and a process limit where the kernel counts only the sandbox's tasks. */
function innerLimits(options: IsolatedOpenOptions, userNamespace: boolean, cgroups: boolean): string[] {
  const args = ['--fsize', String(options.maxMemoryMb * 1024 * 1024)];
  // In a fresh user namespace RLIMIT_NPROC counts only the sandbox's tasks; it never binds uid 0.
  if (!cgroups && userNamespace && process.getuid?.() !== 0) args.push('--nproc', String(options.maxProcesses));
  else if (!cgroups) {
    warnLimitsOnce(options, `plugins' process count and total memory are not bounded here: ${detectCgroups().reason}; ${process.getuid?.() === 0 ? 'RLIMIT_NPROC does not bind root' : 'RLIMIT_NPROC needs the sandbox\'s user namespace'}. Each host's address space, files and /tmp are still limited by maxMemoryMb.`);
  }
  return args;
}

async function planSandbox(options: IsolatedOpenOptions, hostBinary: string, launcher: string): Promise<SandboxPlan | null> {
  if (options.sandbox === 'off') return null;
  const support = await detectSandbox();
  if (!support.available) {
    if (options.sandbox === 'required') {
      throw new PluginError(
        ErrorCode.SANDBOX_UNAVAILABLE,
        `Plugin "${options.manifestName}" (${options.dir}) must run sandboxed (sandbox: "required"), but ${support.reason}. Install bubblewrap, or choose sandbox "auto" or "off".`,
        { plugin: options.manifestName, path: options.dir, data: { reason: support.reason } },
      );
    }
    if (!warnedNoSandbox) {
      warnedNoSandbox = true;
      options.onWarning(`plugins run without a sandbox: ${support.reason}. Crashes and hangs are still contained; file and network access are not. Use sandbox "required" to refuse instead.`);
    }
    return null;
  }
  if (support.weaker) {
    if (options.sandbox === 'required') {
      throw new PluginError(
        ErrorCode.SANDBOX_UNAVAILABLE,
        `Plugin "${options.manifestName}" (${options.dir}) must run sandboxed (sandbox: "required"), but ${support.weaker}, so the plugin could make namespaces of its own. Upgrade bubblewrap and enable user namespaces, or choose sandbox "auto" to run with capabilities dropped only.`,
        { plugin: options.manifestName, path: options.dir, data: { reason: support.weaker } },
      );
    }
    warnLimitsOnce(options, `plugins run in a weaker sandbox: ${support.weaker}. Capabilities are dropped; nested namespaces are not blocked by bubblewrap. Use sandbox "required" to refuse instead.`);
  }
  const workspace = options.workspace !== null && existsSync(options.workspace) ? options.workspace : null;
  const privilegeFlags = support.weaker ? ['--cap-drop', 'ALL'] : undefined;
  return {
    ...(privilegeFlags ? { privilegeFlags } : {}),
    tmpSizeMb: options.maxMemoryMb,
    inner: { launcher, args: innerLimits(options, !support.weaker, detectCgroups().mechanism !== 'none') },
    bwrap: support.bwrap as string,
    hostBinary,
    pluginDir: options.dir,
    libraryPath: options.libraryPath,
    workspace,
    permissions: options.permissions,
    env: hostEnvironment(options.env, true),
  };
}

/**
 * A plugin served by its own host process: a crash, hang or runaway allocation kills the host,
 * not the caller, and the next call gets a fresh host.
 */
export class IsolatedPlugin implements NativePluginTrait {
  readonly metadata: PluginMetadata;
  readonly manifest: PluginManifest;
  readonly path: string;
  readonly libraryPath: string;
  private readonly options: IsolatedOpenOptions;
  private readonly origin: Origin;
  private readonly hostBinary: string;
  private readonly launcher: string;
  private readonly sandbox: SandboxPlan | null;
  private readonly gate: CallGate;
  private host: HostProcess | undefined;
  private starting: Promise<HostProcess> | undefined;
  private crashTimes: number[] = [];
  private quarantinedUntil: number | undefined;
  private quarantines = 0;
  private crashes = 0;
  private hostsStarted = 0;
  private recycled = 0;
  // Calls the current host has answered, toward recycling it.
  private servedByHost = 0;
  // When the current host's resident memory is read next (in calls it served), and the last reading.
  private rssCheckAt = RSS_CHECK_MIN_CALLS;
  private rssLast: { kb: number; calls: number } | undefined;
  // Hosts taken out of service by recycling that still finish calls they had; each stops once idle.
  private readonly retiring = new Set<HostProcess>();
  private readonly stopping = new Set<Promise<void>>();
  private warnedRecycle = false;
  private closed = false;
  private readonly inFlight = new InFlight();
  private readonly deadlines = new Deadlines();
  private lastLogs = '';
  private disposed = false;
  private readonly log: PluginLogHub;

  private constructor(options: IsolatedOpenOptions, hostBinary: string, launcher: string, sandbox: SandboxPlan | null, host: HostProcess | undefined, metadata: PluginMetadata, log: PluginLogHub) {
    this.options = options;
    this.log = log;
    this.metadata = metadata;
    this.manifest = options.manifest;
    this.path = options.dir;
    this.libraryPath = options.libraryPath;
    this.origin = { plugin: metadata.name, path: options.dir };
    this.hostBinary = hostBinary;
    this.launcher = launcher;
    this.sandbox = sandbox;
    // A thread-safe plugin's host queues calls beyond its workers, so the next one is ready the moment a worker frees up.
    this.gate = new CallGate(metadata.thread_safe ? options.maxConcurrency * PIPELINE_DEPTH : 1);
    if (host) {
      this.adopt(host);
      if (metadata.thread_safe) host.configure(options.maxConcurrency);
    }
  }

  /**
   * Starts the first host, which loads the library and reports its ABI version and metadata. With
   * `knownMetadata` (this exact build answered before) no host starts until the first call.
   */
  static async open(options: IsolatedOpenOptions, knownMetadata?: PluginMetadata): Promise<IsolatedPlugin> {
    // The addon spawns hosts without forking this process; without it (no compiler) Node spawns them.
    const [hostBinary, launcher] = await Promise.all([ensureHostBinary(), ensureLauncherBinary(), hostAddon().catch(() => undefined)]);
    const sandbox = await planSandbox(options, hostBinary, launcher);
    // One log per plugin, across its hosts: lines written while loading are kept too.
    const log = new PluginLogHub(options.manifestName, options.onPluginLog);
    if (knownMetadata) return new IsolatedPlugin(options, hostBinary, launcher, sandbox, undefined, knownMetadata, log);
    const origin: Origin = { plugin: options.manifestName, path: options.dir };
    const host = IsolatedPlugin.spawn(options, hostBinary, launcher, sandbox, undefined, await IsolatedPlugin.cgroup(options, sandbox !== null), log);
    const metadata = await IsolatedPlugin.handshake(host, origin, options, options.timeoutMs);
    return new IsolatedPlugin(options, hostBinary, launcher, sandbox, host, metadata, log);
  }

  // The host's own cgroup, bounding it and everything it starts; null (with a warning once) where none can be made.
  private static async cgroup(options: IsolatedOpenOptions, sandboxed: boolean): Promise<PluginCgroup | null> {
    const found = detectCgroups();
    if (found.mechanism === 'none') {
      // Sandboxed hosts were warned about (or bounded by RLIMIT_NPROC) when the sandbox was planned.
      if (!sandboxed) warnLimitsOnce(options, `plugins' process count and total memory are not bounded here: ${found.reason}. Each host's address space is still limited by maxMemoryMb.`);
      return null;
    }
    try {
      return await PluginCgroup.create(found, { memoryMb: options.maxMemoryMb, processes: options.maxProcesses });
    } catch (err) {
      warnLimitsOnce(options, `cannot create a cgroup for plugin "${options.manifestName}" (${(err as Error).message}); its process count and total memory are not bounded.`);
      return null;
    }
  }

  private static spawn(options: IsolatedOpenOptions, hostBinary: string, launcher: string, sandbox: SandboxPlan | null, concurrency: number | undefined, cgroup: PluginCgroup | null, log: PluginLogHub): HostProcess {
    const lines = log.stream();
    const host = new HostProcess({
      limits: { launcher, cgroup, launcherArgs: [] },
      hostBinary,
      libraryPath: options.libraryPath,
      concurrency,
      pollMicros: options.pollMicros,
      maxOutputBytes: options.maxOutputBytes,
      maxMemoryMb: options.maxMemoryMb,
      keepHeapMb: heapKeepMb(options.maxMemoryMb, options.recycleAboveMb ?? 0),
      sandbox,
      unixSockets: sandbox !== null && mayUseUnixSockets(sandbox.permissions),
      env: hostEnvironment(options.env, false),
      cwd: options.workspace !== null && existsSync(options.workspace) ? options.workspace : '/',
      onLog: (text) => {
        options.onLog?.(options.manifestName, text);
        lines.push(text);
      },
    });
    void host.logClosed.then(() => lines.end());
    return host;
  }

  /**
   * Waits for the host's first message: the library loaded (its constructors ran) and its metadata.
   * Plugin code runs there, so it has a deadline: past it the host is killed and this is E_TIMEOUT.
   */
  private static async handshake(host: HostProcess, origin: Origin, options: IsolatedOpenOptions, timeoutMs: number): Promise<PluginMetadata> {
    let ready: HostReady;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const tail = host.stderrTail();
        host.kill('timeout');
        reject(timeoutError(origin, timeoutMs, { stderrTail: tail, signal: 'SIGKILL' }, ' while loading (library constructors and vtcode_plugin_metadata()); its host was killed'));
      }, timeoutMs);
    });
    try {
      ready = await Promise.race([host.ready, expired]);
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw exitError(err as HostExit, origin, options.maxMemoryMb, 'while loading');
    } finally {
      clearTimeout(timer);
    }
    try {
      if (ready.kind === 'load-error') {
        if (ready.reason === LoadErrorReason.SYMBOL) {
          throw new PluginError(
            ErrorCode.MISSING_SYMBOL,
            `The library of plugin "${origin.plugin}" (${options.libraryPath}) does not export ${ready.text}, which ABI v1 requires. Export it with C linkage (extern "C" / #[no_mangle]).`,
            { plugin: origin.plugin, path: options.libraryPath, data: { symbol: ready.text } },
          );
        }
        if (ready.reason === LoadErrorReason.SANDBOX) {
          throw new PluginError(
            ErrorCode.SANDBOX_UNAVAILABLE,
            `Plugin "${origin.plugin}" (${options.dir}) must run sandboxed, but its host could not confine it: ${ready.text}. Choose sandbox "off" only for plugins you fully trust.`,
            { plugin: origin.plugin, path: options.dir, data: { reason: ready.text } },
          );
        }
        throw new PluginError(
          ErrorCode.LOAD_FAILED,
          `Cannot load the library of plugin "${origin.plugin}" at ${options.libraryPath}: ${ready.text}. Check that it was built for this platform and that its dependencies are installed.`,
          { plugin: origin.plugin, path: options.libraryPath },
        );
      }
      checkAbiVersion(ready.abiVersion, origin);
      return checkMetadata(ready.metadata ?? { kind: 'null' }, origin, options.manifestName);
    } catch (err) {
      if (!(err instanceof PluginError) || (err.code !== ErrorCode.NULL_RESULT && err.code !== ErrorCode.INVALID_METADATA)) {
        void host.stop();
        throw err;
      }
      throw await withPluginLog(err, host);
    }
  }

  /** The last lines the plugin wrote to stdout/stderr (from the current or last host). */
  logs(): string {
    return this.host?.stderrTail() || this.lastLogs;
  }

  /** The plugin's last log lines (up to 200), parsed: level, whether it used the log API, text. */
  logEvents(): PluginLogEvent[] {
    return this.log.recent();
  }

  /** Calls `listener` with each line the plugin writes from now on, as it arrives; returns the function that stops it. */
  onLog(listener: (event: PluginLogEvent) => void): () => void {
    return this.log.subscribe(listener);
  }

  /** Counts of hosts started and recycled, crashes and quarantines. */
  stats(): IsolatedPluginStats {
    return {
      hostsStarted: this.hostsStarted,
      recycled: this.recycled,
      crashes: this.crashes,
      quarantines: this.quarantines,
      quarantinedUntil: this.quarantinedUntil ?? null,
    };
  }

  /** Lifts a quarantine now (and resets its backoff); returns whether one was in force. */
  liftQuarantine(): boolean {
    const was = this.quarantinedUntil !== undefined;
    this.quarantinedUntil = undefined;
    this.quarantines = 0;
    this.crashTimes = [];
    return was;
  }

  /** The current host's process id, if one is running. */
  get hostPid(): number | undefined {
    return this.host?.alive ? this.host.pid : undefined;
  }

  /** Runs the plugin in its host. Rejects with E_CRASHED, E_TIMEOUT, E_CANCELLED, E_RESOURCE_LIMIT, … on faults. */
  async execute(ctx: PluginContext, options: ExecuteOptions = {}): Promise<PluginResult> {
    this.assertUsable();
    checkExecuteOptions(options, this.origin);
    const text = encodeContextText(ctx, this.origin);
    checkInputSchema(ctx.input, this.manifest.input_schema, this.origin);
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    if (signal?.aborted) throw cancelledError(this.origin, false);
    // A free slot is taken synchronously: the common case costs no extra promise or tick.
    const release = this.gate.tryAcquire() ?? (await this.gate.acquire(signal, () => cancelledError(this.origin, false)));
    this.inFlight.begin();
    try {
      return resultFromReturned(await this.dispatch(text, timeoutMs, signal), this.origin, this.options.maxOutputBytes);
    } finally {
      release();
      this.inFlight.end();
    }
  }

  /**
   * Sends one call to the current host (starting one if needed). The deadline runs from when the
   * host starts the call, not from when it was queued; a call the host never started is sent again
   * to a fresh host when the old one dies.
   */
  private dispatch(payload: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<ReturnedString> {
    return new Promise<ReturnedString>((resolve, reject) => {
      let settled = false;
      let deadline: Deadline | undefined;
      let host: HostProcess | undefined;
      let id = 0;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        if (deadline) this.deadlines.remove(deadline);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = (): void => {
        if (!host) {
          settle(() => reject(cancelledError(this.origin, false)));
          return;
        }
        if (!host.isRunning(id)) {
          host.cancelQueued(id);
          settle(() => reject(cancelledError(this.origin, false)));
          return;
        }
        const tail = host.stderrTail();
        host.kill('cancel');
        settle(() => reject(cancelledError(this.origin, true, { stderrTail: tail, signal: 'SIGKILL' })));
      };
      const onStart = (): void => {
        deadline = this.deadlines.add(timeoutMs, () => {
          const tail = host?.stderrTail() ?? '';
          host?.kill('timeout');
          settle(() => reject(timeoutError(this.origin, timeoutMs, { stderrTail: tail, signal: 'SIGKILL' }, '; its host was killed and the next call gets a fresh one')));
        });
      };
      const send = (to: HostProcess): void => {
        host = to;
        if (settled) return;
        const sent = to.call(payload, onStart);
        id = sent.id;
        sent.result.then(
          (r) => {
            this.afterCall(to);
            settle(() => resolve(r));
          },
          (failure: CallFailure) => {
            this.afterCall(to);
            if (settled) return;
            if (!failure.started && failure.exit.killedFor !== 'close') {
              attempt();
              return;
            }
            settle(() => reject(exitError(failure.exit, this.origin, this.options.maxMemoryMb, 'during the call')));
          },
        );
      };
      const attempt = (): void => {
        try {
          this.assertUsable();
        } catch (err) {
          settle(() => reject(err));
          return;
        }
        // A running host is used at once; otherwise wait for one to start.
        const ready = this.runningHost();
        if (ready) {
          send(ready);
          return;
        }
        this.ensureHost(timeoutMs).then(send, (err: unknown) => settle(() => reject(err)));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      attempt();
    });
  }

  /** Waits for calls in flight, then stops the host (end input, SIGTERM, SIGKILL). Idempotent. */
  async close(): Promise<void> {
    if (this.closed && this.inFlight.size === 0 && !this.host) return;
    this.closed = true;
    await this.inFlight.drained();
    for (const host of this.retiring) void this.stopRetired(host);
    const host = this.host;
    await Promise.all([host?.stop(), ...this.stopping]);
    // Log listeners get every line before close resolves (bounded: a process the plugin left may hold stderr).
    if (host) await logDrained(host);
    if (!this.disposed) {
      this.disposed = true;
      this.options.onClosed?.();
    }
  }

  private assertUsable(): void {
    if (this.closed) throw closedError(this.origin);
    if (this.quarantinedUntil === undefined) return;
    const now = Date.now();
    if (now >= this.quarantinedUntil) {
      // The cool-down is over: the next call gets a fresh host; a further crash quarantines it for longer.
      this.quarantinedUntil = undefined;
      return;
    }
    const byHand = this.quarantinedUntil === Infinity;
    const until = byHand ? null : new Date(this.quarantinedUntil).toISOString();
    throw new PluginError(
      ErrorCode.QUARANTINED,
      `Plugin "${this.origin.plugin}" (${this.path}) crashed ${CRASHES_TO_QUARANTINE} times within ${CRASH_WINDOW_MS / 1000} s and is quarantined ${byHand ? 'until lifted by hand' : `until ${until}`}. Fix the plugin and load it again, or lift the quarantine (liftQuarantine(), or SIGHUP to skillplug serve).`,
      {
        plugin: this.origin.plugin,
        path: this.path,
        data: { crashes: CRASHES_TO_QUARANTINE, quarantines: this.quarantines, until, retryAfterMs: byHand ? null : this.quarantinedUntil - now },
        failure: failureFacts({ crashed: true, stderrTail: this.lastLogs }),
      },
    );
  }

  // Counts a finished call toward recycling its host, and stops a retired host once it is idle.
  private afterCall(host: HostProcess): void {
    if (this.retiring.has(host)) {
      if (host.inFlight === 0) void this.stopRetired(host);
      return;
    }
    if (host !== this.host || !host.alive || this.closed) return;
    this.servedByHost++;
    const afterCalls = this.options.recycleAfterCalls ?? 0;
    const aboveMb = this.options.recycleAboveMb ?? 0;
    let reason: string | undefined;
    if (afterCalls > 0 && this.servedByHost >= afterCalls) reason = `it served ${this.servedByHost} calls (recycleAfterCalls)`;
    else if (aboveMb > 0 && host.pid !== undefined && (this.servedByHost === 1 || this.servedByHost >= this.rssCheckAt)) {
      const rssKb = hostRssKb(host, host.pid);
      if (rssKb !== null && rssKb > aboveMb * 1024) reason = `its resident memory reached ${Math.round(rssKb / 1024)} MiB (recycleAboveMb ${aboveMb})`;
      else if (rssKb !== null) {
        this.rssCheckAt = this.servedByHost + callsUntilRssCheck(aboveMb * 1024, rssKb, this.rssLast?.kb, this.servedByHost - (this.rssLast?.calls ?? 0));
        this.rssLast = { kb: rssKb, calls: this.servedByHost };
      } else this.rssCheckAt = this.servedByHost + RSS_CHECK_MIN_CALLS;
    }
    if (reason === undefined) return;
    // New calls go to a fresh host; the old one finishes what it has, then stops.
    this.host = undefined;
    this.recycled++;
    this.retiring.add(host);
    if (!this.warnedRecycle) {
      this.warnedRecycle = true;
      this.options.onWarning(`plugin "${this.origin.plugin}" (${this.path}): its host was replaced between calls because ${reason}; a plugin that leaks memory is recycled like this whenever it passes the limit.`);
    }
    this.options.onLog?.(this.origin.plugin, `skillplug: recycled host ${host.pid ?? '?'} because ${reason}\n`);
    if (host.inFlight === 0) void this.stopRetired(host);
  }

  private stopRetired(host: HostProcess): Promise<void> {
    this.retiring.delete(host);
    const stopping = host.stop().finally(() => this.stopping.delete(stopping));
    this.stopping.add(stopping);
    return stopping;
  }

  private adopt(host: HostProcess): void {
    this.host = host;
    this.hostsStarted++;
    this.servedByHost = 0;
    this.rssCheckAt = RSS_CHECK_MIN_CALLS;
    this.rssLast = undefined;
    void host.exited.then((exit) => {
      this.lastLogs = exit.stderrTail;
      if (this.host === host) this.host = undefined;
      if (exit.killedFor === null) this.recordCrash();
    });
  }

  private recordCrash(): void {
    const now = Date.now();
    this.crashes++;
    this.crashTimes = [...this.crashTimes.filter((t) => now - t < CRASH_WINDOW_MS), now];
    if (this.crashTimes.length < CRASHES_TO_QUARANTINE) return;
    this.crashTimes = [];
    this.quarantines++;
    const base = this.options.quarantineMs ?? 0;
    this.quarantinedUntil = base === 0 ? Infinity : now + Math.min(MAX_QUARANTINE_MS, base * 2 ** Math.min(this.quarantines - 1, 30));
  }

  // The current host when it is up and no other is starting.
  private runningHost(): HostProcess | undefined {
    return !this.starting && this.host?.alive ? this.host : undefined;
  }

  // A start is bounded by the deadline of the call that began it; calls that join wait for the same start.
  private ensureHost(timeoutMs: number): Promise<HostProcess> {
    // While a host is starting, every caller waits for it, so calls reach it in the order they came.
    if (this.starting) return this.starting;
    if (this.host?.alive) return Promise.resolve(this.host);
    this.starting ??= (async () => {
      const workers = this.metadata.thread_safe ? this.options.maxConcurrency : undefined;
      const cgroup = await IsolatedPlugin.cgroup(this.options, this.sandbox !== null);
      const host = IsolatedPlugin.spawn(this.options, this.hostBinary, this.launcher, this.sandbox, workers, cgroup, this.log);
      this.adopt(host);
      await IsolatedPlugin.handshake(host, this.origin, this.options, timeoutMs);
      return host;
    })().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }
}

/** Maps a host's death to the error a caller sees. */
export function exitError(exit: HostExit, origin: Origin, maxMemoryMb: number, when: string): PluginError {
  const facts = failureFacts({ crashed: true, signal: exit.signal, exitCode: exit.exitCode, stderrTail: exit.stderrTail });
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
  const base = { plugin: origin.plugin, path: origin.path, failure: facts };
  if (exit.killedFor === 'close') return closedError(origin);
  if (exit.killedFor === 'timeout' || exit.killedFor === 'cancel') {
    return new PluginError(
      ErrorCode.CRASHED,
      `The host of plugin "${origin.plugin}" (${origin.path}) was stopped ${when} because a concurrent call ${exit.killedFor === 'timeout' ? 'ran past its deadline' : 'was cancelled'}. Retry the call.`,
      { ...base, data: { reason: exit.killedFor } },
    );
  }
  if (exit.killedFor === 'protocol') {
    return new PluginError(
      ErrorCode.CRASHED,
      `Plugin "${origin.plugin}" (${origin.path}) corrupted its host's private channel (${exit.protocolError}); the host was killed. The plugin must not write to file descriptors it did not open.`,
      { ...base, data: { protocolError: exit.protocolError } },
    );
  }
  if (exit.memoryLimitHit) {
    return new PluginError(
      ErrorCode.RESOURCE_LIMIT,
      `Plugin "${origin.plugin}" (${origin.path}) used more than its ${maxMemoryMb} MiB memory limit (all its processes and /tmp together) ${when} and its host ${how}. Raise maxMemoryMb (--max-memory MIB) if it legitimately needs more.`,
      { ...base, data: { limitMb: maxMemoryMb, cgroup: true } },
    );
  }
  if (maxMemoryMb > 0 && exit.peakKb !== null && exit.peakKb * 1024 >= MEMORY_LIMIT_SHARE * maxMemoryMb * 1024 * 1024) {
    return new PluginError(
      ErrorCode.RESOURCE_LIMIT,
      `Plugin "${origin.plugin}" (${origin.path}) hit its ${maxMemoryMb} MiB memory limit ${when} (peak ${Math.round(exit.peakKb / 1024)} MiB) and its host ${how}. Raise maxMemoryMb (--max-memory MIB) if it legitimately needs more.`,
      { ...base, data: { limitMb: maxMemoryMb, peakMb: Math.round(exit.peakKb / 1024) } },
    );
  }
  return new PluginError(
    ErrorCode.CRASHED,
    `Plugin "${origin.plugin}" (${origin.path}) crashed ${when}: its host ${how}. The caller is unaffected and the next call gets a fresh host.${exit.stderrTail ? ' The plugin\'s last stderr lines are attached.' : ''}`,
    { ...base, data: { signal: exit.signal, exitCode: exit.exitCode } },
  );
}
