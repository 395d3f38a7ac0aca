// The plugin contract both implementations (in-process/, host/) fulfil and every caller programs against.
import type { PluginContext, PluginMetadata, PluginResult } from '../abi/types.js';
import type { PluginManifest } from '../manifest/index.js';
import type { PluginLogEvent } from '../abi/plugin-log.js';

/** Options for one call to {@link NativePluginTrait.execute}. */
export interface ExecuteOptions {
  /** Abort the call; rejects with `E_CANCELLED`. */
  signal?: AbortSignal;
  /** Deadline in milliseconds; rejects with `E_TIMEOUT`. */
  timeoutMs?: number;
}

/** A loaded plugin. In-process and isolated plugins both implement it. */
export interface NativePluginTrait {
  /** The library's metadata, read once at load time. */
  readonly metadata: PluginMetadata;
  /** plugin.json as verified at load time. */
  readonly manifest: PluginManifest;
  /** The canonical plugin directory. */
  readonly path: string;
  /** The canonical path of the library that was loaded. */
  readonly libraryPath: string;
  /** Runs the plugin once. Never blocks the event loop. */
  execute(ctx: PluginContext, options?: ExecuteOptions): Promise<PluginResult>;
  /** Releases the plugin; waits for calls in flight. Further calls fail with `E_CLOSED`. */
  close(): Promise<void>;
  /**
   * The plugin's last log lines (up to 200), parsed (docs/abi.md "Logging"). Isolated plugins only:
   * in-process, the plugin writes to this process's own stderr, which skillplug does not read, so this is empty.
   */
  logEvents(): PluginLogEvent[];
  /**
   * Calls `listener` with each line the plugin writes to stderr or stdout, as it arrives; returns the
   * function that stops it. Isolated plugins only: in-process it never fires (see {@link logEvents}).
   */
  onLog(listener: (event: PluginLogEvent) => void): () => void;
}

/** A loaded plugin that can also run a call on the caller's thread (in-process plugins can; isolated ones cannot). */
export interface SyncNativePlugin extends NativePluginTrait {
  /**
   * Runs the plugin on this thread, blocking the event loop until it returns. For hot loops only.
   * Throws `E_BUSY` if a call of a plugin that is not thread-safe is in flight.
   */
  executeSync(ctx: PluginContext): PluginResult;
}

/** True when `plugin` offers {@link SyncNativePlugin.executeSync}. */
export function canExecuteSync(plugin: NativePluginTrait): plugin is SyncNativePlugin {
  return typeof (plugin as Partial<SyncNativePlugin>).executeSync === 'function';
}
