import assert from 'node:assert/strict';
import { PluginError } from '../../src/index.js';

/** Awaits a promise that must reject with a PluginError of the given code; returns the error. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<PluginError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof PluginError, `expected a PluginError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.fail(`expected rejection with ${code}`);
}

/**
 * What loading came to: 'loaded' (the plugin is closed again), or the PluginError's code, followed by
 * `:reason` when `withReason` and the error's data names one.
 */
export async function loadOutcome(promise: Promise<unknown>, withReason = false): Promise<string> {
  try {
    const plugin = (await promise) as { close?: () => Promise<void> };
    await plugin.close?.();
    return 'loaded';
  } catch (err) {
    assert.ok(err instanceof PluginError, String(err));
    return withReason && err.data?.reason ? `${err.code}:${String(err.data.reason)}` : err.code;
  }
}
