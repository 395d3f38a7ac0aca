// The isolated host's shared lane, for tests that send lone calls through it.
import type { NativePluginTrait, PluginContext } from '../../src/index.js';

/** Whether the plugin's current isolated host takes calls made alone through the shared lane. */
export function laneUp(plugin: NativePluginTrait): boolean {
  return (plugin as unknown as { host?: { sharedLaneUp: boolean } }).host?.sharedLaneUp === true;
}

/**
 * Sends lone calls until the plugin's host has its lane up. With SKILLPLUG_SHARED_AFTER=0 the first
 * lane of a process maps in the background; every host spawned after it maps its own at spawn.
 */
export async function warmSharedLane(plugin: NativePluginTrait, ctx: PluginContext): Promise<void> {
  for (let i = 0; i < 1000 && !laneUp(plugin); i++) await plugin.execute(ctx);
  if (!laneUp(plugin)) throw new Error('the shared lane never came up');
}
