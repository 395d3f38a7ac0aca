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
