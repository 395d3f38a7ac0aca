// The one door to native code: no other module imports the FFI library.
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';
import { ErrorCode, PluginError } from '../errors.js';
import { ABI_SYMBOLS } from './types.js';
import { joinContext, type ContextParts, type Origin, type ReturnedString } from './codec.js';
import { BusyPoll } from './busy-poll.js';
import { ChurnMap } from '../churn-table.js';
import { SpinHistory, monotonicMicros, spinBudget, spinSettings } from './spin-budget.js';

// Without adaptive spinning (the benchmark's ablation), pump workers poll this long as they always did.
const FIXED_SPIN_MICROS = 150;

const requireFromHere = createRequire(import.meta.url);
let koffiModule: typeof Koffi | undefined;
// koffi's native addon loads on first use, so importing skillplug (or running plugins isolated) never pays for it.
function koffi(): typeof Koffi {
  return (koffiModule ??= requireFromHere('koffi') as typeof Koffi);
}

/** koffi struct types for ABI v1's C structs. */
export interface AbiStructTypes {
  /** `PluginMetadataFFI { const char* json_ptr; }` */
  PluginMetadataFFI: Koffi.TypeObject;
  /** `PluginResultFFI { const char* json_ptr; }` */
  PluginResultFFI: Koffi.TypeObject;
}

let structTypes: AbiStructTypes | undefined;
/** ABI v1's struct types for koffi, built (and koffi loaded) on the first call; the same objects after that. */
export function abiStructTypes(): AbiStructTypes {
  structTypes ??= {
    PluginMetadataFFI: koffi().struct('PluginMetadataFFI', { json_ptr: 'const char *' }),
    PluginResultFFI: koffi().struct('PluginResultFFI', { json_ptr: 'const char *' }),
  };
  return structTypes;
}

/** Stack for each native call: plugins written for a normal thread expect megabytes, not koffi's 128 KiB. */
const NATIVE_STACK_BYTES = 8 * 1024 * 1024;

let configured = false;
function configureKoffi(): void {
  if (configured) return;
  configured = true;
  try {
    koffi().config({
      ...koffi().config(),
      sync_stack_size: NATIVE_STACK_BYTES,
      async_stack_size: NATIVE_STACK_BYTES,
      resident_async_pools: 16,
      max_async_calls: 4096,
    });
  } catch (err) {
    // koffi refuses new settings once anything in this process loaded a library through it.
    process.emitWarning(`skillplug could not configure koffi (${(err as Error).message}); in-process plugins get koffi's current stack sizes.`, { code: 'SKILLPLUG_KOFFI_CONFIG' });
  }
}

let strlenFn: ((ptr: unknown) => number | bigint) | undefined;
function strlen(ptr: unknown): number {
  if (!strlenFn) {
    const libc = process.platform === 'win32' ? koffi().load('msvcrt.dll') : koffi().load(null);
    strlenFn = libc.func('size_t strlen(void *s)') as (ptr: unknown) => number | bigint;
  }
  return Number(strlenFn(ptr));
}


/**
 * What a decoded string is: too large, or valid text; undefined when decoding replaced something with
 * U+FFFD, so the caller must hand over the raw bytes to tell invalid UTF-8 from a real U+FFFD.
 */
function classify(text: string, maxBytes: number): ReturnedString | undefined {
  // A UTF-16 unit is at least one UTF-8 byte and at most three.
  if (text.length > maxBytes || (text.length * 3 > maxBytes && Buffer.byteLength(text) > maxBytes)) {
    return { kind: 'too-large', length: Buffer.byteLength(text) };
  }
  return text.includes('\uFFFD') ? undefined : { kind: 'text', text };
}

/** Reads a NUL-terminated string (the caller frees it) and classifies it. */
function decodeCString(ptr: bigint, maxBytes: number): ReturnedString {
  let text: string;
  try {
    text = koffi().decode(ptr, 'char', -1) as string;
  } catch {
    // Longer than a JS string can hold: only its length matters now.
    return { kind: 'too-large', length: strlen(ptr) };
  }
  return classify(text, maxBytes) ?? { kind: 'bytes', bytes: new Uint8Array(koffi().view(ptr, strlen(ptr))).slice() };
}

interface Mapping {
  start: bigint;
  end: bigint;
  writable: boolean;
}

/** The library's own mappings (Linux /proc/self/maps, matched by inode); empty where unreadable. */
function libraryMappings(libraryPath: string): Mapping[] {
  if (process.platform !== 'linux') return [];
  try {
    const inode = statSync(libraryPath, { bigint: true }).ino;
    const mappings: Mapping[] = [];
    for (const line of readFileSync('/proc/self/maps', 'latin1').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)/.exec(line);
      if (m && BigInt(m[4] as string) === inode) mappings.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), writable: (m[3] as string)[1] === 'w' });
    }
    return mappings;
  } catch {
    return [];
  }
}

/** A dlopen'ed ABI v1 library. */
export interface NativeLibrary {
  /** The path given to the dynamic loader. */
  readonly path: string;
  /** Whether `vtcode_plugin_free_string` is exported. */
  readonly hasFreeString: boolean;
  /** Calls `vtcode_plugin_version()`. */
  abiVersion(): number;
  /** Calls `vtcode_plugin_metadata()` and copies the string out. */
  metadata(maxBytes: number): ReturnedString;
  /**
   * Calls `vtcode_plugin_execute()` on this thread with the context. The result's text when it is
   * valid UTF-8 within maxBytes (a hot loop's common case, so no wrapper is allocated); else what it is.
   */
  executeSync(ctx: ContextParts, maxBytes: number): string | ReturnedString;
  /** Calls `vtcode_plugin_execute()` on a worker thread with the context JSON. */
  executeAsync(ctx: string, maxBytes: number, done: (err: Error | null, result?: ReturnedString) => void): void;
  /** Unloads the library. Only call with no call in flight. */
  unload(): void;
}

type KoffiFn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

/**
 * Opens a library and binds the ABI v1 symbols. Runs the library's constructors. With `helperPath`
 * (the pump library built from pump.c), executeSync takes the one-native-call direct path.
 * Throws `E_LOAD_FAILED` or `E_MISSING_SYMBOL`.
 */
export function openNativeLibrary(libraryPath: string, origin: Origin, helperPath?: string): NativeLibrary {
  configureKoffi();
  let lib: Koffi.LibraryHandle;
  try {
    lib = koffi().load(libraryPath);
  } catch (err) {
    throw new PluginError(
      ErrorCode.LOAD_FAILED,
      `Cannot load the library of plugin "${origin.plugin}" at ${libraryPath}: ${(err as Error).message}. Check that it was built for this platform and that its dependencies are installed.`,
      { plugin: origin.plugin, path: libraryPath, cause: err },
    );
  }
  const bind = (symbol: string, signature: string): KoffiFn => {
    try {
      return lib.func(signature) as unknown as KoffiFn;
    } catch (err) {
      lib.unload();
      throw new PluginError(
        ErrorCode.MISSING_SYMBOL,
        `The library of plugin "${origin.plugin}" (${libraryPath}) does not export ${symbol}, which ABI v1 requires. Export it with C linkage (extern "C" / #[no_mangle]).`,
        { plugin: origin.plugin, path: libraryPath, data: { symbol }, cause: err },
      );
    }
  };
  const version = bind(ABI_SYMBOLS.version, `uint32_t ${ABI_SYMBOLS.version}(void)`);
  const metadata = bind(ABI_SYMBOLS.metadata, `void *${ABI_SYMBOLS.metadata}(void)`);
  const execute = bind(ABI_SYMBOLS.execute, `void *${ABI_SYMBOLS.execute}(const char *ctx)`);
  let freeString: KoffiFn | undefined;
  try {
    freeString = lib.func(`void ${ABI_SYMBOLS.freeString}(void *s)`) as unknown as KoffiFn;
  } catch {
    freeString = undefined;
  }

  // With a free function, a pointer into the library's own image (a literal, a static buffer) must not be freed: found once here.
  const ownImage = freeString ? libraryMappings(libraryPath) : [];
  // Copies the string out, then frees it exactly once whatever its content.
  const take = (ptr: unknown, maxBytes: number): ReturnedString => {
    if (ptr === null || ptr === undefined || ptr === 0n || ptr === 0) return { kind: 'null' };
    if (ownImage.length > 0) {
      const at = typeof ptr === 'bigint' ? ptr : BigInt(koffi().address(ptr));
      const mapping = ownImage.find((m) => at >= m.start && at < m.end);
      if (mapping) return { kind: 'not-freeable', writable: mapping.writable };
    }
    try {
      return decodeCString(ptr as bigint, maxBytes);
    } finally {
      if (freeString) freeString(ptr);
    }
  };

  // undefined: not opened yet; null: unavailable, so koffi's three calls do the job.
  let direct: DirectCalls | null | undefined = helperPath ? undefined : null;
  const executeSync = (ctx: ContextParts, maxBytes: number): string | ReturnedString => {
    if (direct === undefined) direct = openDirectCalls(helperPath as string, libraryPath) ?? null;
    if (direct === null) return take(execute(joinContext(ctx)), maxBytes);
    const text = direct.call(ctx);
    if (text !== null) {
      // classify()'s common case without its wrapper: surely within maxBytes, and nothing was replaced.
      if (text.length * 3 <= maxBytes && !text.includes('\uFFFD')) return text;
      return classify(text, maxBytes) ?? { kind: 'bytes', bytes: direct.out.subarray(0, direct.length[0]).slice() };
    }
    const length = direct.length[0] as number;
    if (length === DIRECT_NO_MEMORY) return take(execute(joinContext(ctx)), maxBytes);
    return length === DIRECT_NULL ? { kind: 'null' } : take(direct.pending(), maxBytes);
  };

  return {
    path: libraryPath,
    hasFreeString: freeString !== undefined,
    abiVersion: () => Number(version()),
    metadata: (maxBytes) => take(metadata(), maxBytes),
    executeSync,
    executeAsync: (ctx, maxBytes, done) => {
      execute.async(ctx, (err: Error | null, ptr: unknown) => {
        if (err) {
          done(err);
          return;
        }
        let result: ReturnedString;
        try {
          result = take(ptr, maxBytes);
        } catch (takeErr) {
          done(takeErr as Error);
          return;
        }
        done(null, result);
      });
    },
    unload: () => {
      direct?.close();
      direct = null;
      lib.unload();
    },
  };
}

/** Batched calls of a thread-safe plugin on dedicated threads (see pump.c). */
export interface NativePump {
  /**
   * Queues a call; `done` runs on the JS thread with what the plugin returned. Returns the call's id.
   * `timeoutMs`: the call's own deadline, which no wait for it on this thread outlasts.
   */
  submit(ctx: string, maxBytes: number, done: (result: ReturnedString) => void, timeoutMs?: number): number;
  /** Drops a queued call no thread has taken; true if it will never run (its `done` never runs). */
  cancel(id: number): boolean;
  /** Stops the threads and frees the pump. Only call with nothing in flight. */
  destroy(): Promise<void>;
  /** Whether the JS thread would poll (a core free) or park (none free) for a call submitted now, as its waits have paid. */
  wouldPoll(): boolean;
}

/** Results up to this size come back through the direct path's buffer; larger ones are read in place. */
const DIRECT_OUT_BYTES = 64 * 1024;
/** direct_call's length word when the plugin returned NULL. */
const DIRECT_NULL = -1;
/** direct_call's length word when it could not allocate the context (the plugin did not run). */
const DIRECT_NO_MEMORY = -2;

interface DirectCalls {
  /** The copy of the last result that fit (NUL-terminated). */
  out: Buffer;
  /** The last result's length in bytes, or DIRECT_NULL / DIRECT_NO_MEMORY. */
  length: Int32Array;
  /** Runs the plugin: the result decoded, or null (see `length`) for NULL, no memory, or a result left for `pending`. */
  call: (ctx: ContextParts) => string | null;
  pending: () => unknown;
  close: () => void;
}

function openDirectCalls(helperPath: string, libraryPath: string): DirectCalls | undefined {
  const api = helperLibrary(helperPath);
  const out = Buffer.allocUnsafeSlow(DIRECT_OUT_BYTES + 1);
  const length = new Int32Array(1);
  const handle = api.directOpen(libraryPath, out, DIRECT_OUT_BYTES, length);
  if (!handle) return undefined;
  return {
    out,
    length,
    call: (ctx) => api.directCall(handle, ctx.input, ctx.workspaceRoot, ctx.config),
    pending: () => api.directPending(handle),
    close: () => api.directClose(handle),
  };
}

/** The pump library's functions (see pump.c). */
interface PumpLibrary {
  create: (libraryPath: string, notify: unknown, shared: Int32Array, threads: number) => unknown;
  submit: (pump: unknown, id: number, ctx: string) => number;
  take: (pump: unknown, ids: Uint32Array, results: BigUint64Array, max: number) => number;
  freeAll: (results: BigUint64Array, n: number) => void;
  cancel: (pump: unknown, id: number) => number;
  park: (pump: unknown, seen: number, micros: number) => number;
  stopAndWait: (pump: unknown, timeoutMs: number) => void;
  stop: (pump: unknown) => void;
  stopped: (pump: unknown) => number;
  destroy: (pump: unknown) => void;
  notifyType: Koffi.TypeObject;
  directOpen: (libraryPath: string, out: Buffer, outCap: number, length: Int32Array) => unknown;
  directCall: (direct: unknown, input: string, workspaceRoot: string | null, config: string | null) => string | null;
  directPending: (direct: unknown) => unknown;
  directClose: (direct: unknown) => void;
}

let pumpLibrary: PumpLibrary | undefined;

function helperLibrary(pumpPath: string): PumpLibrary {
  configureKoffi();
  if (!pumpLibrary) {
    const lib = koffi().load(pumpPath);
    const notifyProto = koffi().proto('void SkillplugPumpNotify(void)');
    pumpLibrary = {
      create: lib.func('void *pump_create(const char *library_path, void *notify, void *shared, int threads)') as PumpLibrary['create'],
      submit: lib.func('int pump_submit(void *pump, uint32_t id, const char *ctx)') as PumpLibrary['submit'],
      take: lib.func('int pump_take(void *pump, void *ids, void *results, int max)') as PumpLibrary['take'],
      freeAll: lib.func('void pump_free_all(void *results, int n)') as PumpLibrary['freeAll'],
      cancel: lib.func('int pump_cancel(void *pump, uint32_t id)') as PumpLibrary['cancel'],
      park: lib.func('int32_t pump_park(void *pump, int32_t seen, int micros)') as PumpLibrary['park'],
      stopAndWait: lib.func('void pump_stop_and_wait(void *pump, int timeout_ms)') as PumpLibrary['stopAndWait'],
      stop: lib.func('void pump_stop(void *pump)') as PumpLibrary['stop'],
      stopped: lib.func('int pump_stopped(void *pump)') as PumpLibrary['stopped'],
      destroy: lib.func('void pump_destroy(void *pump)') as PumpLibrary['destroy'],
      notifyType: koffi().pointer(notifyProto),
      directOpen: lib.func('void *direct_open(const char *library_path, void *out, int64_t out_cap, void *length)') as PumpLibrary['directOpen'],
      directCall: lib.func('const char *direct_call(void *direct, const char *input, const char *workspace_root, const char *config)') as PumpLibrary['directCall'],
      directPending: lib.func('void *direct_pending(void *direct)') as PumpLibrary['directPending'],
      directClose: lib.func('void direct_close(void *direct)') as PumpLibrary['directClose'],
    };
  }
  return pumpLibrary;
}

const TAKE_BATCH = 256;
// The longest a park may hold the event loop, whatever pollMicros says: it saves one wake-up, and a timer due meanwhile waits.
const PARK_MOST_MICROS = 10_000;

// Pump threads must be out of JS and out of the pump's code before the process tears both down:
// one 'exit' listener for every live pump (one each gave MaxListenersExceededWarning past ten).
const stopAtProcessExit = new Set<() => void>();
process.once('exit', () => {
  for (const stop of stopAtProcessExit) stop();
});

/**
 * Starts a pump for the plugin library already loaded at `libraryPath` (built from pump.c at
 * `pumpPath`). Results are copied on the worker threads, so thread-local result buffers are safe.
 * With `pollMicros` > 0, the JS thread polls for results (between event-loop turns) for up to that
 * long after each submit or result, so a serial caller pays no cross-thread wake-up.
 */
export function createPump(
  pumpPath: string,
  libraryPath: string,
  threads: number,
  pollMicros = 0,
  adaptiveSpin = spinSettings.adaptive,
  // Whether a call of this pump is the only one awaited: a park blocks the event loop, which anything else in flight needs.
  alone: () => boolean = () => false,
): NativePump {
  const api = helperLibrary(pumpPath);
  // One entry per call in flight, so kept young (src/churn-table.ts).
  const waiting = new ChurnMap<number, { maxBytes: number; done: (result: ReturnedString) => void; deadline: number }>();
  let destroyed = false;
  const ids = new Uint32Array(TAKE_BATCH);
  const results = new BigUint64Array(TAKE_BATCH);
  // A page of its own: the pump keeps this address, and V8 never moves an ArrayBuffer's backing store.
  const shared = new Int32Array(new ArrayBuffer(4096));
  const FINISHED = 0;
  const JS_POLLING = 1;
  const SPIN_MICROS = 2;
  // Workers spin only within a lease of the process-wide budget, and only while their spins would pay
  // (docs/host-protocol.md, "Spinning"); without adaptive spinning, a fixed 150 µs as before.
  const holder = {};
  const history = new SpinHistory(pollMicros);
  let idleSince: number | undefined;
  let spinMicros = adaptiveSpin ? 0 : FIXED_SPIN_MICROS;
  Atomics.store(shared, SPIN_MICROS, spinMicros);
  const leaseSpin = (): void => {
    if (!adaptiveSpin) return;
    if (idleSince !== undefined) history.record(monotonicMicros() - idleSince);
    idleSince = undefined;
    const window = history.window();
    const micros = window > 0 && spinBudget.acquire(holder) ? window : 0;
    if (micros === 0) spinBudget.release(holder);
    if (micros !== spinMicros) Atomics.store(shared, SPIN_MICROS, micros);
    spinMicros = micros;
  };
  const idle = (): void => {
    if (!adaptiveSpin) return;
    idleSince = monotonicMicros();
    spinBudget.settle(holder, spinMicros);
  };
  let seenFinished = 0;
  let nextId = 1;
  let handle: unknown;
  // koffi delivers the pump's notification only while something keeps the event loop alive: this
  // timer, referenced while calls wait (toggling it costs far less than a new timer per call).
  const keepAlive = setInterval(() => undefined, 1 << 30);
  keepAlive.unref();
  let keptAlive = false;
  const letLoopIdle = (): void => {
    if (waiting.size === 0 && idleSince === undefined) idle();
    if (waiting.size > 0 || !keptAlive) return;
    keptAlive = false;
    keepAlive.unref();
  };
  const drain = (): void => {
    if (destroyed) return;
    seenFinished = Atomics.load(shared, FINISHED);
    for (;;) {
      const n = api.take(handle, ids, results, TAKE_BATCH);
      for (let i = 0; i < n; i++) {
        const call = waiting.get(ids[i] as number);
        waiting.delete(ids[i] as number);
        const ptr = results[i] as bigint;
        call?.done(ptr === 0n ? { kind: 'null' } : decodeCString(ptr, call?.maxBytes ?? Infinity));
      }
      // One call frees the whole batch of copies.
      api.freeAll(results, n);
      if (n < TAKE_BATCH) break;
    }
    letLoopIdle();
  };
  // Asked before a call picks the pump (nothing of ours submitted yet) and again by the park itself (this one call waiting).
  const mayPark = (): boolean => !destroyed && waiting.size <= 1 && alone();
  const poller = new BusyPoll(pollMicros, {
    ...(adaptiveSpin ? { budget: spinBudget } : {}),
    waiting: () => waiting.size > 0,
    check: () => {
      if (Atomics.load(shared, FINISHED) === seenFinished) return false;
      drain();
      return true;
    },
    onStart: () => Atomics.store(shared, JS_POLLING, 1),
    onStop: () => {
      Atomics.store(shared, JS_POLLING, 0);
      // A result that finished before the store above was counted but not notified: take it now.
      if (Atomics.load(shared, FINISHED) !== seenFinished) drain();
    },
    // A lone call on a loaded machine: sleep until its worker wakes this thread (pump_park, Linux only).
    ...(process.platform === 'linux' && spinSettings.park
      ? {
          park: (micros: number) => {
            if (waiting.size !== 1 || !mayPark()) return undefined;
            const call = waiting.values().next().value as { deadline: number };
            // Never past the call's own deadline: its timeout timer must get to fire.
            const now = performance.now();
            const until = Math.min(now + Math.min(micros, PARK_MOST_MICROS) / 1000, call.deadline);
            if (until <= now) return undefined;
            for (;;) {
              const left = Math.ceil((until - performance.now()) * 1000);
              if (left <= 0 || api.park(handle, seenFinished, left) === seenFinished) return false;
              drain();
              // The count had moved for a result taken before (by a poll's last look, say): wait on for this one.
              if (waiting.size < 1) return true;
            }
          },
          mayPark,
        }
      : {}),
  });
  const notify = koffi().register(drain, api.notifyType);
  handle = api.create(libraryPath, notify, shared, threads);
  if (!handle) {
    koffi().unregister(notify);
    clearInterval(keepAlive);
    throw new PluginError(ErrorCode.LOAD_FAILED, `Cannot start the call pump for ${libraryPath}.`, { path: libraryPath });
  }
  const stopAtExit = (): void => api.stopAndWait(handle, 200);
  stopAtProcessExit.add(stopAtExit);
  return {
    submit: (ctx, maxBytes, done, timeoutMs) => {
      const id = nextId++;
      if (nextId > 0xffffffff) nextId = 1;
      waiting.set(id, { maxBytes, done, deadline: timeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeoutMs });
      if (!keptAlive) {
        keptAlive = true;
        keepAlive.ref();
      }
      leaseSpin();
      poller.touch();
      if (api.submit(handle, id, ctx) !== 0) {
        waiting.delete(id);
        throw new PluginError(ErrorCode.INTERNAL, 'The call pump is out of memory.', { path: libraryPath });
      }
      return id;
    },
    wouldPoll: () => poller.wouldPoll(),
    cancel: (id) => {
      const dropped = api.cancel(handle, id) === 1;
      if (dropped) waiting.delete(id);
      letLoopIdle();
      return dropped;
    },
    destroy: async () => {
      destroyed = true;
      stopAtProcessExit.delete(stopAtExit);
      spinBudget.release(holder);
      clearInterval(keepAlive);
      api.stop(handle);
      // The notifier may be waiting for this thread to run a notification: keep the loop turning until it is out.
      while (api.stopped(handle) !== 1) await new Promise((resolve) => setTimeout(resolve, 1));
      api.destroy(handle);
      koffi().unregister(notify);
    },
  };
}
