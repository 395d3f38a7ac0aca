// Extism, side by side: the WAT twin of bench/plugins/bench.c compiled with wabt, run by the Extism JS SDK.
import { readFileSync } from 'node:fs';
import createPlugin, { type Plugin } from '@extism/extism';
import wabtInit from 'wabt';

/** Compiles a .wat file to a WebAssembly binary. */
export async function compileWat(file: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const parsed = wabt.parseWat(file, readFileSync(file, 'utf8'));
  try {
    parsed.validate();
    return parsed.toBinary({}).buffer;
  } finally {
    parsed.destroy();
  }
}

/** Loads the module as an Extism plugin, on the main thread or in Extism's worker. */
export function extismPlugin(wasm: Uint8Array, runInWorker: boolean): Promise<Plugin> {
  return createPlugin({ wasm: [{ data: wasm }] }, { useWasi: false, runInWorker });
}

/** One call as a caller would make it: context in as JSON text, result parsed. */
export async function extismCall(plugin: Plugin, contextText: string): Promise<unknown> {
  const output = await plugin.call('execute', contextText);
  if (!output) throw new Error('the Extism plugin returned no output');
  const result = JSON.parse(output.text());
  // The JS SDK keeps every call's blocks until reset (block indices overflow after ~32k calls), so a
  // long-lived caller resets between calls; its cost is part of Extism's per call.
  await plugin.reset();
  return result;
}

/**
 * Calls for a plugin that takes one call at a time (Extism's plugins are not reentrant): each call waits for
 * the one before, as a caller with many requests has to arrange.
 */
export function queued(plugin: Plugin): (contextText: string) => Promise<unknown> {
  let tail: Promise<unknown> = Promise.resolve();
  return (contextText) => {
    const call = tail.then(() => extismCall(plugin, contextText));
    tail = call.catch(() => undefined);
    return call;
  };
}
