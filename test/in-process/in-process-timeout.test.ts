// An in-process call past the loader's timeoutMs is answered E_TIMEOUT on time; the plugin refuses calls (E_BUSY) until it returns.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode, PluginLoader, isPluginError } from '../../src/index.js';
import type { NativePluginTrait } from '../../src/index.js';
import type { InProcessPlugin } from '../../src/in-process/index.js';
import { buildFixture, tempDir, tempHome } from '../helpers/fixtures.js';
import { gate, release } from '../helpers/gate.js';

const call = (plugin: NativePluginTrait, input: Record<string, string> = {}) => plugin.execute({ input, workspace_root: null, config: {} });

// Calls until the stuck call has returned: ordered by the event loop, not by a clock.
async function untilFree(plugin: NativePluginTrait): Promise<unknown> {
  for (;;) {
    try {
      return (await call(plugin)).output;
    } catch (err) {
      if (!isPluginError(err, ErrorCode.BUSY)) throw err;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

describe('in-process plugins and the timeout', () => {
  // pollMicros 0: a call waits for the one call slot (then is refused E_BUSY); > 0: it waits in the pump's queue (and times out there, never run).
  for (const [pollMicros, queuedCode] of [
    [0, ErrorCode.BUSY],
    [200, ErrorCode.TIMEOUT],
  ] as const) {
    // The bound turns a missing deadline (the call would block forever) into a failure rather than a hung run.
    it(`answers E_TIMEOUT at the loader's timeoutMs, refuses calls with E_BUSY while the call is stuck, and serves again once it returns (pollMicros ${pollMicros})`, { timeout: 60_000 }, async () => {
      const root = tempDir();
      await buildFixture(root, { source: 'release_gate', name: 'gated' });
      const loader = new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false, home: tempHome(), isolation: 'none', timeoutMs: 300, pollMicros });
      const plugin = await loader.loadPlugin(path.join(root, 'gated'));
      const fifo = gate();
      let released = false;
      try {
        const stuck = call(plugin, { gate: fifo });
        // Queued behind the stuck call (the plugin is not thread-safe): answered, never left waiting.
        const queued = call(plugin);
        await assert.rejects(stuck, (err) => isPluginError(err, ErrorCode.TIMEOUT));
        await assert.rejects(queued, (err) => isPluginError(err, queuedCode));
        await assert.rejects(call(plugin), (err) => isPluginError(err, ErrorCode.BUSY));
        assert.throws(() => (plugin as unknown as InProcessPlugin).executeSync({ input: {}, workspace_root: null, config: {} }), (err) => isPluginError(err, ErrorCode.BUSY));
        await release(fifo);
        released = true;
        assert.deepEqual(await untilFree(plugin), { released: false });
      } finally {
        if (!released) await release(fifo);
        await plugin.close();
      }
    });
  }
});
