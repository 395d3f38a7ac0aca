// The isolated host's shared lane, for tests that send lone calls through it.
import type { NativePluginTrait, PluginContext } from '../../src/index.js';
import { ensureHostAddon } from '../../src/toolchain.js';

/** Whether the plugin's current isolated host takes calls made alone through the shared lane. */
export function laneUp(plugin: NativePluginTrait): boolean {
  return (plugin as unknown as { host?: { lane: { up: boolean } } }).host?.lane.up === true;
}

// A few calls at most once the addon is loaded; the bound only turns a lane that never comes up into a failure.
const MAX_WARM_CALLS = 100;

/**
 * Sends lone calls until the plugin's host has its lane up. With hostTuning.sharedAfterLoneCalls = 0 the first
 * lane of a process maps in the background once the addon that maps it is built (on a fresh machine, compiled
 * first): that build is the event waited for; every host spawned after it maps its own at spawn.
 */
export async function warmSharedLane(plugin: NativePluginTrait, ctx: PluginContext): Promise<void> {
  await plugin.execute(ctx);
  await ensureHostAddon();
  for (let calls = 0; !laneUp(plugin); calls++) {
    if (calls === MAX_WARM_CALLS) throw new Error(`the shared lane was not up after ${MAX_WARM_CALLS} calls`);
    await plugin.execute(ctx);
  }
}
