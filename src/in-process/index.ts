import { encodeContextParts, encodeContextText, parseResultText, validateResult, type Origin, type ReturnedString } from '../abi/codec.js';
import { createPump, openNativeLibrary, type NativeLibrary, type NativePump } from '../abi/native.js';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ensurePumpLibrary } from '../toolchain.js';
import { type PrivateCopy, writePrivateCopy } from '../plugin/private-copy.js';
import type { PluginLogEvent } from '../abi/plugin-log.js';
import { spinSettings } from '../abi/spin-budget.js';
import type { PluginContext, PluginMetadata, PluginResult } from '../abi/types.js';
import type { ExecuteOptions, SyncNativePlugin } from '../plugin/interfaces.js';
import { ErrorCode, PluginError } from '../errors.js';
import type { PluginManifest } from '../manifest/index.js';
import { cancelledError, checkExecuteOptions, checkInputSchema, closedError, timeoutError } from '../plugin/call-errors.js';
import { CallGate, PIPELINE_DEPTH } from '../plugin/gate.js';
import { InFlight, processCallsInFlight } from '../plugin/in-flight.js';
import { MAX_METADATA_BYTES, checkAbiVersion, checkMetadata, resultFromReturned } from '../plugin/handshake.js';

/** What an in-process plugin needs to open. */
export interface InProcessOpenOptions {
  /** Canonical plugin dir. */
  dir: string;
  /** Canonical library path. */
  libraryPath: string;
  /** plugin.json's name. */
  manifestName: string;
  /** plugin.json as verified. */
  manifest: PluginManifest;
  /** Largest result accepted, in bytes. */
  maxOutputBytes: number;
  /** Concurrent calls allowed for a thread-safe plugin. */
  maxConcurrency: number;
  /** How long the JS thread polls for results (µs); 0: it waits to be notified. */
  pollMicros: number;
  /** Runs once the library is unloaded. */
  onClosed?: (() => void) | undefined;
  /** Deadline of a call that sets none, in ms. Default: none. */
  timeoutMs?: number | undefined;
}

// Library files a live plugin of this process has loaded itself, by file identity (dev:ino). dlopen
// hands a second load of the same file the same image (its globals, its thread-local buffers), so two
// plugins of one file would share state and a non-thread-safe one would get calls from both at once;
// the second therefore loads a private copy, its own image (never counted here).
const loadedImages = new Set<string>();

/** Claims the library's image for one plugin: the file itself if no live plugin has it, else a private copy. */
async function claimImage(libraryPath: string): Promise<{ loadPath: string; release: () => void }> {
  const { dev, ino } = await stat(libraryPath);
  const identity = `${dev}:${ino}`;
  if (!loadedImages.has(identity)) {
    loadedImages.add(identity);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      loadedImages.delete(identity);
    };
    return { loadPath: libraryPath, release };
  }
  const copy: PrivateCopy = await writePrivateCopy(await readFile(libraryPath), path.basename(libraryPath));
  return { loadPath: copy.path, release: () => copy.dispose() };
}

/**
 * A plugin loaded into this process. Fastest, but a crash or hang in the plugin is a crash or hang
 * of this process: use `isolation: 'process'` for plugins you do not fully trust.
 */
export class InProcessPlugin implements SyncNativePlugin {
  readonly metadata: PluginMetadata;
  readonly manifest: PluginManifest;
  readonly path: string;
  readonly libraryPath: string;
  private readonly lib: NativeLibrary;
  private readonly gate: CallGate;
  private readonly origin: Origin;
  private readonly maxOutputBytes: number;
  private readonly inFlight = new InFlight();
  private closed = false;
  private readonly onClosed: (() => void) | undefined;
  /**
   * Threads that run calls and batch their results. When JS polls, every call goes here (maxConcurrency
   * threads, or one for a plugin that is not thread-safe); otherwise a call alone takes koffi's async
   * path and the pump's maxConcurrency - 1 threads serve the others.
   */
  private readonly pump: NativePump | undefined;
  private readonly pumpServesAll: boolean;
  private asyncRunning = 0;
  private readonly timeoutMs: number | undefined;
  // Calls answered E_TIMEOUT whose native call has not returned: a thread is still inside the library.
  private stuck = 0;
  private pumpRunning = 0;
  private readonly adaptive: boolean;
  // A plugin that runs one call at a time (not thread-safe, or maxConcurrency 1), whose lone calls take koffi's async path unless the event loop polls or parks for them.
  private readonly serialAdaptive: boolean;

  private constructor(lib: NativeLibrary, metadata: PluginMetadata, options: InProcessOpenOptions, pump: NativePump | undefined, adaptive: boolean) {
    this.lib = lib;
    this.metadata = metadata;
    this.manifest = options.manifest;
    this.path = options.dir;
    this.libraryPath = options.libraryPath;
    this.origin = { plugin: metadata.name, path: options.dir };
    this.maxOutputBytes = options.maxOutputBytes;
    this.pump = pump;
    // Adaptive: a thread-safe plugin's pump keeps maxConcurrency - 1 threads, and a lone call goes
    // through it only while polling pays; otherwise (a loaded machine, slow calls) through koffi's
    // async path, one wake-up each way like a caller using koffi directly.
    this.adaptive = adaptive && pump !== undefined;
    this.pumpServesAll = options.pollMicros > 0 && !this.adaptive;
    // Through the pump such a call would cost its worker's wake-up, the notifier's and the event loop's:
    // measured with 1 ms calls, 2-3x the CPU of koffi's async path (docs/host-protocol.md, "Spinning").
    this.serialAdaptive = pump !== undefined && options.pollMicros > 0 && spinSettings.adaptive && (!metadata.thread_safe || options.maxConcurrency === 1);
    // Calls beyond the running ones wait in the pump's queue (FIFO, so a one-thread pump keeps order), ready
    // the moment a thread frees up. Without the pump, one call at a time: koffi hands results over after its
    // thread may have run the next call, which overwrites a result kept in a thread-local buffer.
    const threads = metadata.thread_safe ? options.maxConcurrency : 1;
    this.gate = new CallGate(pump ? threads * PIPELINE_DEPTH : 1);
    this.onClosed = options.onClosed;
    this.timeoutMs = options.timeoutMs;
  }

  /** The error for a call made while a timed-out call is still running in the library. */
  private stuckError(): PluginError {
    return new PluginError(
      ErrorCode.BUSY,
      `Plugin "${this.origin.plugin}" (${this.path}) still runs a call that timed out; an in-process call cannot be stopped, so the plugin takes no calls until that one returns. Use isolation "process" (the default) to have hung calls killed.`,
      { plugin: this.origin.plugin, path: this.path, data: { stuckCalls: this.stuck } },
    );
  }

  /** Loads the library (running its constructors), checks its ABI version and metadata. */
  static async open(options: InProcessOpenOptions): Promise<InProcessPlugin> {
    const origin: Origin = { plugin: options.manifestName, path: options.dir };
    // Without a C compiler there is no helper library: koffi's async path and three-call sync path serve.
    const helperPath = await ensurePumpLibrary().catch(() => undefined);
    const image = await claimImage(options.libraryPath);
    let lib: NativeLibrary;
    let metadata: PluginMetadata;
    try {
      lib = openNativeLibrary(image.loadPath, origin, helperPath);
    } catch (err) {
      image.release();
      throw err;
    }
    try {
      checkAbiVersion(lib.abiVersion(), origin);
      metadata = checkMetadata(lib.metadata(MAX_METADATA_BYTES), origin, options.manifestName);
    } catch (err) {
      lib.unload();
      image.release();
      throw err;
    }
    const servesAll = options.pollMicros > 0;
    // With adaptive spinning a thread-safe plugin's lone calls may take koffi's async path (see the constructor).
    // Only for a plugin that frees its results: koffi reads a result on the main thread after its worker may
    // have run another call, which would overwrite (or realloc) a result kept in a reused buffer.
    const adaptive = servesAll && spinSettings.adaptive && metadata.thread_safe && options.maxConcurrency >= 2 && lib.hasFreeString;
    const threads = metadata.thread_safe ? options.maxConcurrency - (servesAll && !adaptive ? 0 : 1) : servesAll ? 1 : 0;
    let pump: NativePump | undefined;
    if (threads > 0 && helperPath) {
      try {
        // A lone call may park the event loop only while it is the one call of the whole process in flight.
        pump = createPump(helperPath, image.loadPath, threads, options.pollMicros, spinSettings.adaptive, () => processCallsInFlight() === 1);
      } catch {
        pump = undefined;
      }
    }
    const onClosed = options.onClosed;
    const released = (): void => {
      image.release();
      onClosed?.();
    };
    return new InProcessPlugin(lib, metadata, { ...options, onClosed: released }, pump, adaptive);
  }

  /** Runs the plugin on a worker thread; the event loop keeps turning. */
  execute(ctx: PluginContext, options: ExecuteOptions = {}): Promise<PluginResult> {
    let text: string;
    try {
      if (this.closed) throw closedError(this.origin);
      if (this.stuck > 0) throw this.stuckError();
      checkExecuteOptions(options, this.origin);
      text = encodeContextText(ctx, this.origin);
      checkInputSchema(ctx.input, this.manifest.input_schema, this.origin);
      if (options.signal?.aborted) throw cancelledError(this.origin, false);
    } catch (err) {
      return Promise.reject(err);
    }
    // A serial plugin's call alone holds every slot of the gate, so that it may take koffi's async path
    // (run() decides) with no call running through the pump beside it; calls that come meanwhile wait.
    if (this.serialAdaptive) {
      const all = this.gate.tryAcquireAll();
      if (all) return this.run(text, all.release, options, all.narrow);
    }
    // A free slot is taken synchronously: the common case costs no extra promise or tick.
    const slot = this.gate.tryAcquire();
    if (slot) return this.run(text, slot, options);
    return this.gate.acquire(options.signal, () => cancelledError(this.origin, false)).then((release) => {
      if (!this.closed && this.stuck === 0) return this.run(text, release, options);
      release();
      throw this.closed ? closedError(this.origin) : this.stuckError();
    });
  }

  /** With `narrow`, the call holds every slot of the gate (a serial plugin's call alone) and keeps them only for koffi's path. */
  private run(text: string, releaseSlots: () => void, options: ExecuteOptions, narrow?: () => () => void): Promise<PluginResult> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let timedOut = false;
    this.inFlight.begin();
    // Without polling, a call alone takes koffi's async path (one wake-up each way); with others in flight,
    // the batching pump, whose maxConcurrency - 1 threads plus that one async call never exceed maxConcurrency.
    // Adaptive: the async slot is taken whenever free, except by a lone call the event loop will poll for
    // (the pump's maxConcurrency - 1 threads and that one slot reach maxConcurrency together).
    // A serial plugin's lone call: koffi's async path unless the event loop will poll or park for it;
    // through the pump it needs one slot, and calls made meanwhile queue behind it there.
    const viaKoffi = narrow !== undefined && this.pump?.wouldPoll() === false;
    const release = narrow && !viaKoffi ? narrow() : releaseSlots;
    const pollsLone = !narrow && this.adaptive && this.asyncRunning === 0 && this.pumpRunning === 0 && this.pump?.wouldPoll() === true;
    const pump = !viaKoffi && (this.pumpServesAll || this.asyncRunning > 0 || pollsLone) ? this.pump : undefined;
    return new Promise<PluginResult>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let withdraw: (() => boolean) | undefined;
      const stopWaiting = (err: PluginError): void => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(err);
      };
      const onAbort = (): void => {
        if (withdraw?.()) {
          // Dropped before any thread took it: it never runs.
          release();
          this.inFlight.end();
          stopWaiting(cancelledError(this.origin, false));
        } else stopWaiting(cancelledError(this.origin, true));
      };
      const cleanup = (): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          if (settled) return;
          if (withdraw?.()) {
            // Still queued in the pump: it never runs, and nothing is stuck.
            release();
            this.inFlight.end();
            stopWaiting(timeoutError(this.origin, timeoutMs, {}, ' (it waited behind other calls and never started)'));
            return;
          }
          // Answered on time; the plugin stays refused (E_BUSY) until the native call returns, and so do calls queued behind it.
          timedOut = true;
          this.stuck++;
          stopWaiting(timeoutError(this.origin, timeoutMs, {}, '; an in-process call cannot be stopped, so it runs on and the plugin takes no calls (E_BUSY) until it returns'));
          this.gate.refuseWaiting(() => this.stuckError());
        }, timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      // The slot stays held until the native call really returns, so serialization survives an early reject.
      const finish = (err: Error | null, returned?: ReturnedString): void => {
        if (timedOut) this.callReturned();
        release();
        this.inFlight.end();
        if (settled) return;
        settled = true;
        cleanup();
        if (err) {
          reject(new PluginError(ErrorCode.INTERNAL, `The FFI call into plugin "${this.origin.plugin}" failed: ${err.message}`, { plugin: this.origin.plugin, path: this.path, cause: err }));
          return;
        }
        try {
          resolve(resultFromReturned(returned as ReturnedString, this.origin, this.maxOutputBytes));
        } catch (decodeErr) {
          reject(decodeErr);
        }
      };
      if (pump) {
        this.pumpRunning++;
        const id = pump.submit(
          text,
          this.maxOutputBytes,
          (returned) => {
            this.pumpRunning--;
            finish(null, returned);
          },
          timeoutMs,
        );
        withdraw = () => {
          const dropped = pump.cancel(id);
          if (dropped) this.pumpRunning--;
          return dropped;
        };
      } else {
        this.asyncRunning++;
        this.lib.executeAsync(text, this.maxOutputBytes, (err, returned) => {
          this.asyncRunning--;
          finish(err, returned);
        });
      }
    });
  }

  /**
   * Runs the plugin on this thread, blocking the event loop until it returns. For hot loops only.
   * Throws `E_BUSY` if an asynchronous call is in flight, since that would break serialization.
   */
  executeSync(ctx: PluginContext): PluginResult {
    if (this.closed) throw closedError(this.origin);
    if (this.stuck > 0) throw this.stuckError();
    const parts = encodeContextParts(ctx, this.origin);
    checkInputSchema(ctx.input, this.manifest.input_schema, this.origin);
    if (this.gate.inFlight > 0 && !this.metadata.thread_safe) {
      throw new PluginError(
        ErrorCode.BUSY,
        `Plugin "${this.origin.plugin}" (${this.path}) is not thread-safe and has a call in flight; executeSync would run concurrently with it. Await the pending calls first.`,
        { plugin: this.origin.plugin, path: this.path },
      );
    }
    const returned = this.lib.executeSync(parts, this.maxOutputBytes);
    if (typeof returned === 'string') return validateResult(parseResultText(returned, this.origin), this.origin);
    return resultFromReturned(returned, this.origin, this.maxOutputBytes);
  }

  private callReturned(): void {
    this.stuck--;
  }

  /**
   * Waits for calls in flight, then unloads the library. Idempotent. Calls that timed out and still
   * run are not waited for (they may never return): the library then stays loaded until they do.
   */
  async close(): Promise<void> {
    if (this.closed) return this.stuck > 0 ? undefined : this.inFlight.drained();
    this.closed = true;
    const drained = this.inFlight.drained();
    if (this.stuck > 0) {
      void drained.then(() => this.unload());
      return;
    }
    await drained;
    await this.unload();
  }

  private async unload(): Promise<void> {
    await this.pump?.destroy();
    this.lib.unload();
    this.onClosed?.();
  }
  /** Always empty: in-process, the plugin writes to this process's own stderr, which skillplug does not read. */
  logEvents(): PluginLogEvent[] {
    return [];
  }

  /** Never fires (see {@link logEvents}); run the plugin isolated to see its log. */
  onLog(_listener: (event: PluginLogEvent) => void): () => void {
    return () => undefined;
  }

}
