// The one door to native code: no other module imports the FFI library.
import koffi from 'koffi';
import { ErrorCode, PluginError } from '../errors.js';
import { ABI_SYMBOLS } from './types.js';
import type { Origin, ReturnedString } from './codec.js';

/** koffi struct type for ABI v1's `PluginMetadataFFI { const char* json_ptr; }`. */
export const PluginMetadataFFI = koffi.struct('PluginMetadataFFI', { json_ptr: 'const char *' });

/** koffi struct type for ABI v1's `PluginResultFFI { const char* json_ptr; }`. */
export const PluginResultFFI = koffi.struct('PluginResultFFI', { json_ptr: 'const char *' });

/** Stack for each native call: plugins written for a normal thread expect megabytes, not koffi's 128 KiB. */
const NATIVE_STACK_BYTES = 8 * 1024 * 1024;

let configured = false;
function configureKoffi(): void {
  if (configured) return;
  configured = true;
  try {
    koffi.config({
      ...koffi.config(),
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
    const libc = process.platform === 'win32' ? koffi.load('msvcrt.dll') : koffi.load(null);
    strlenFn = libc.func('size_t strlen(void *s)') as (ptr: unknown) => number | bigint;
  }
  return Number(strlenFn(ptr));
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
  /** Calls `vtcode_plugin_execute()` on this thread with the context JSON. */
  executeSync(ctx: string, maxBytes: number): ReturnedString;
  /** Calls `vtcode_plugin_execute()` on a worker thread with the context JSON. */
  executeAsync(ctx: string, maxBytes: number, done: (err: Error | null, result?: ReturnedString) => void): void;
  /** Unloads the library. Only call with no call in flight. */
  unload(): void;
}

type KoffiFn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

/**
 * Opens a library and binds the ABI v1 symbols. Runs the library's constructors.
 * Throws `E_LOAD_FAILED` or `E_MISSING_SYMBOL`.
 */
export function openNativeLibrary(libraryPath: string, origin: Origin): NativeLibrary {
  configureKoffi();
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(libraryPath);
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

  // Copies the string out, then frees it exactly once whatever its content.
  const take = (ptr: unknown, maxBytes: number): ReturnedString => {
    if (ptr === null || ptr === undefined || ptr === 0n || ptr === 0) return { kind: 'null' };
    try {
      let text: string | undefined;
      try {
        text = koffi.decode(ptr, 'char', -1) as string;
      } catch {
        // Longer than a JS string can hold: only its length matters now.
        return { kind: 'too-large', length: strlen(ptr) };
      }
      // A UTF-16 unit is at least one UTF-8 byte and at most three.
      if (text.length > maxBytes || (text.length * 3 > maxBytes && Buffer.byteLength(text) > maxBytes)) {
        return { kind: 'too-large', length: Buffer.byteLength(text) };
      }
      // Decoding replaces invalid UTF-8 with U+FFFD; only then are the raw bytes needed to tell.
      if (!text.includes('\uFFFD')) return { kind: 'text', text };
      const length = strlen(ptr);
      return { kind: 'bytes', bytes: new Uint8Array(koffi.view(ptr as bigint, length)).slice() };
    } finally {
      if (freeString) freeString(ptr);
    }
  };

  return {
    path: libraryPath,
    hasFreeString: freeString !== undefined,
    abiVersion: () => Number(version()),
    metadata: (maxBytes) => take(metadata(), maxBytes),
    executeSync: (ctx, maxBytes) => take(execute(ctx), maxBytes),
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
    unload: () => lib.unload(),
  };
}
