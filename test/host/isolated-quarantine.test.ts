// Quarantine after repeated crashes lifts after a cool-down (doubling on repeat) or by hand; skillplug's own kills never count.
import assert from 'node:assert/strict';
import { afterEach, before, describe, it, mock } from 'node:test';
import { ErrorCode, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import type { IsolatedPlugin } from '../../src/host/isolated.js';
import { buildFixtures, tempDir, tempHome } from '../helpers/fixtures.js';
import { rejectsWithCode } from '../helpers/assertions.js';
import { RawServe } from '../helpers/raw-serve.js';

const ctx = (input: Record<string, unknown>) => ({ input: input as never, workspace_root: null, config: {} });

describe('quarantine', () => {
  let root: string;
  let dirs: Record<string, string>;
  const open = async (options: PluginLoaderOptions = {}, key = 'crash') => {
    const loader = new PluginLoader({ pluginsDirs: [root], home: tempHome(), defaultDirs: false, isolation: 'process', sandbox: 'off', ...options });
    return (await loader.loadPlugin(dirs[key] as string)) as IsolatedPlugin;
  };
  const crashThrice = async (plugin: IsolatedPlugin) => {
    for (let i = 0; i < 3; i++) await rejectsWithCode(plugin.execute(ctx({ mode: 'abort' })), ErrorCode.CRASHED);
  };

  before(async () => {
    root = tempDir();
    dirs = await buildFixtures(root, [
      { key: 'crash', source: 'crash', name: 'crash' },
      { key: 'hang', source: 'hang', name: 'hang' },
    ]);
  });
  afterEach(() => mock.timers.reset());

  it('lifts after the cool-down, says until when, and doubles the cool-down on a repeat', async () => {
    mock.timers.enable({ apis: ['Date'], now: Date.UTC(2030, 0, 1) });
    const plugin = await open({ quarantineMs: 60_000 });
    try {
      await crashThrice(plugin);
      const first = await rejectsWithCode(plugin.execute(ctx({ mode: 'ok' })), ErrorCode.QUARANTINED);
      assert.equal(first.data?.until, new Date(Date.UTC(2030, 0, 1) + 60_000).toISOString());
      assert.equal(first.data?.retryAfterMs, 60_000);
      mock.timers.tick(59_999);
      await rejectsWithCode(plugin.execute(ctx({ mode: 'ok' })), ErrorCode.QUARANTINED);
      mock.timers.tick(1);
      assert.deepEqual((await plugin.execute(ctx({ mode: 'ok' }))).output, { alive: true });
      await crashThrice(plugin);
      const second = await rejectsWithCode(plugin.execute(ctx({ mode: 'ok' })), ErrorCode.QUARANTINED);
      assert.equal(second.data?.retryAfterMs, 120_000);
      assert.equal(plugin.stats().quarantines, 2);
      assert.equal(plugin.stats().crashes, 6);
    } finally {
      await plugin.close();
    }
  });

  it('lifts by hand with liftQuarantine(), and with quarantineMs 0 only by hand', async () => {
    mock.timers.enable({ apis: ['Date'], now: 0 });
    const plugin = await open({ quarantineMs: 0 });
    try {
      await crashThrice(plugin);
      mock.timers.tick(365 * 24 * 3_600_000);
      const err = await rejectsWithCode(plugin.execute(ctx({ mode: 'ok' })), ErrorCode.QUARANTINED);
      assert.equal(err.data?.until, null);
      assert.equal(plugin.stats().quarantinedUntil, Infinity);
      assert.equal(plugin.liftQuarantine(), true);
      assert.equal(plugin.liftQuarantine(), false);
      assert.deepEqual((await plugin.execute(ctx({ mode: 'ok' }))).output, { alive: true });
    } finally {
      await plugin.close();
    }
  });

  it('never counts the kills skillplug makes itself (timeouts, cancels) as crashes', async () => {
    const plugin = await open({}, 'hang');
    try {
      for (let i = 0; i < 4; i++) await rejectsWithCode(plugin.execute(ctx({ mode: 'sleep' }), { timeoutMs: 50 }), ErrorCode.TIMEOUT);
      for (let i = 0; i < 4; i++) {
        const controller = new AbortController();
        const call = plugin.execute(ctx({ mode: 'sleep' }), { signal: controller.signal });
        // Aborted once a host is up and running the call, so the host itself is killed.
        while (plugin.hostPid === undefined) await new Promise((r) => setImmediate(r));
        controller.abort();
        await rejectsWithCode(call, ErrorCode.CANCELLED);
      }
      assert.equal(plugin.stats().crashes, 0);
      assert.deepEqual((await plugin.execute(ctx({ mode: 'answer' }))).output, { answered: true });
    } finally {
      await plugin.close();
    }
  });

  it('serve: a quarantined tool says so, and SIGHUP lifts the quarantine', async () => {
    const serve = new RawServe(['--plugins-dir', root, '--workspace', tempDir(), '--sandbox', 'off', '--quarantine-cooldown', '0']);
    try {
      const call = (id: number, mode: string) => serve.request(id, 'tools/call', { name: 'crash', arguments: { mode } });
      const errorOf = (answer: Awaited<ReturnType<typeof call>>) => ((answer.result as { _meta?: Record<string, { code: string; data?: Record<string, unknown> }> })._meta?.['skillplug/error']);
      for (let id = 1; id <= 3; id++) assert.equal(errorOf(await call(id, 'abort'))?.code, ErrorCode.CRASHED);
      const quarantined = errorOf(await call(4, 'ok'));
      assert.equal(quarantined?.code, ErrorCode.QUARANTINED);
      assert.equal(quarantined?.data?.until, null);
      const lifted = new Promise<void>((resolve) => serve.child.stderr.on('data', () => serve.stderr.includes('quarantine lifted for crash') && resolve()));
      serve.child.kill('SIGHUP');
      await lifted;
      const ok = await call(5, 'ok');
      assert.deepEqual((ok.result as { structuredContent?: unknown }).structuredContent, { alive: true });
    } finally {
      assert.equal((await serve.close()).code, 0);
    }
  });

  it('refuses a --quarantine-cooldown that is not a whole number', async () => {
    const serve = new RawServe(['--quarantine-cooldown', '1m']);
    assert.equal((await serve.exited).code, 2);
    assert.throws(() => new PluginLoader({ quarantineMs: -5, home: tempHome(), defaultDirs: false }), (e: { code: string }) => e.code === ErrorCode.USAGE);
  });
});
