// A plugin that leaks on every call (VT Code's guide's Rust example) keeps working: its host is replaced between calls.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { type IsolatedPlugin, RSS_CHECK_MAX_CALLS, RSS_CHECK_MIN_CALLS, callsUntilRssCheck } from '../../src/host/isolated.js';
import { buildFixtures, runCli, tempDir, tempHome } from '../helpers/fixtures.js';
import { alive } from '../helpers/processes.js';

const ctx = (input: Record<string, unknown>) => ({ input: input as never, workspace_root: null, config: {} });

describe('when a host\'s resident memory is read next', () => {
  it('soon after the first reading, rarely for a steady host, often for one that leaks toward the limit', () => {
    assert.equal(callsUntilRssCheck(16_384, 4_000, undefined, 0), RSS_CHECK_MIN_CALLS);
    assert.equal(callsUntilRssCheck(16_384, 4_000, 4_000, 16), RSS_CHECK_MAX_CALLS, 'no growth');
    assert.equal(callsUntilRssCheck(16_384, 4_000, 4_100, 16), RSS_CHECK_MAX_CALLS, 'it shrank');
    assert.equal(callsUntilRssCheck(16_384, 5_000, 4_000, 16), 91, '62.5 KiB per call: 11,384 KiB of headroom lasts 182 calls, half of it 91');
    assert.equal(callsUntilRssCheck(16_384, 10_000, 9_000, 1), RSS_CHECK_MIN_CALLS, '1 MiB per call: never fewer calls than the minimum');
  });
});

describe('isolated host recycling', () => {
  let root: string;
  let dirs: Record<string, string>;
  const open = async (options: PluginLoaderOptions, key = 'leak') => {
    const loader = new PluginLoader({ pluginsDirs: [root], home: tempHome(), defaultDirs: false, isolation: 'process', sandbox: 'off', ...options });
    return (await loader.loadPlugin(dirs[key] as string)) as IsolatedPlugin;
  };

  before(async () => {
    root = tempDir();
    dirs = await buildFixtures(root, [
      { key: 'leak', source: 'leak', name: 'leak' },
      { key: 'leakTs', source: 'leak', name: 'leak-ts', defines: { THREAD_SAFE: '1' } },
    ]);
  });

  it('without recycling, a plugin leaking 1 MiB a call starts failing once it reaches maxMemoryMb', async () => {
    const plugin = await open({ maxMemoryMb: 64, recycleAboveMb: 0 });
    try {
      let failed: string | undefined;
      for (let n = 0; n < 200 && failed === undefined; n++) {
        await plugin.execute(ctx({ kb: 1024, n })).catch((err: { code: string }) => (failed = err.code));
      }
      assert.ok(failed === ErrorCode.RESOURCE_LIMIT || failed === ErrorCode.CRASHED, `expected the leak to fail a call, got ${String(failed)}`);
    } finally {
      await plugin.close();
    }
  });

  it('recycles the host above recycleAboveMb: every call succeeds with its own result, the pid changes, old hosts stop', async () => {
    const warnings: string[] = [];
    const logs: string[] = [];
    const plugin = await open({ maxMemoryMb: 96, recycleAboveMb: 16, onWarning: (m) => warnings.push(m), onLog: (_p, text) => logs.push(text) });
    const pids = new Set<number>();
    try {
      for (let n = 0; n < 100; n++) {
        const r = await plugin.execute(ctx({ kb: 1024, n }));
        assert.equal((r.output as { n: number }).n, n);
        pids.add((r.output as { pid: number }).pid);
      }
      const stats = plugin.stats();
      assert.ok(pids.size >= 3, `expected several hosts, saw ${pids.size}`);
      assert.equal(stats.recycled, pids.size - 1);
      assert.equal(stats.crashes, 0);
      assert.equal(warnings.filter((w) => w.includes('replaced')).length, 1);
      assert.equal(logs.filter((l) => l.includes('recycled host')).length, stats.recycled);
    } finally {
      await plugin.close();
    }
    for (const pid of pids) assert.equal(alive(pid), false, `host ${pid} outlived close()`);
  });

  it('recycles after recycleAfterCalls while 64 calls are in flight on a thread-safe plugin, losing none', async () => {
    const plugin = await open({ recycleAfterCalls: 10, maxConcurrency: 4 }, 'leakTs');
    const pids = new Set<number>();
    try {
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(Array.from({ length: 64 }, (_, n) => plugin.execute(ctx({ n }))));
        results.forEach((r, n) => {
          assert.equal((r.output as { n: number }).n, n);
          pids.add((r.output as { pid: number }).pid);
        });
      }
      assert.ok(plugin.stats().recycled >= 3, `recycled ${plugin.stats().recycled} times`);
      assert.ok(pids.size >= 2);
    } finally {
      await plugin.close();
    }
    for (const pid of pids) assert.equal(alive(pid), false, `host ${pid} outlived close()`);
  });

  it('refuses recycling options that are not whole numbers', async () => {
    for (const bad of [-1, 1.5, 'x']) {
      assert.throws(() => new PluginLoader({ recycleAfterCalls: bad as number, home: tempHome(), defaultDirs: false }), (e: { code: string }) => e.code === ErrorCode.USAGE);
      assert.throws(() => new PluginLoader({ recycleAboveMb: bad as number, home: tempHome(), defaultDirs: false }), (e: { code: string }) => e.code === ErrorCode.USAGE);
    }
    const r = await runCli(['run', dirs.leak as string, '--plugins-dir', root, '--recycle-after-calls', 'many']);
    assert.equal(r.code, 2);
  });
});
