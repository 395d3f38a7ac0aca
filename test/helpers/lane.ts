// The isolated host's shared lane, for tests that send lone calls through it.
import type { NativePluginTrait, PluginContext } from '../../src/index.js';

/** Whether the plugin's current isolated host takes calls made alone through the shared lane. */
export function laneUp(plugin: NativePluginTrait): boolean {
  return (plugin as unknown as { host?: { lane: { up: boolean } } }).host?.lane.up === true;
}

/**
 * Sends lone calls until the plugin's host has its lane up. With hostTuning.sharedAfterLoneCalls = 0 the first
 * lane of a process maps in the background (on a fresh machine after compiling the pump library);
 * every host spawned after it maps its own at spawn.
 */
export async function warmSharedLane(plugin: NativePluginTrait, ctx: PluginContext): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!laneUp(plugin)) {
    if (Date.now() > deadline) throw new Error('the shared lane never came up');
    await plugin.execute(ctx);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
