// In-process specifics: executeSync, and the batching pump that serves concurrent calls of thread-safe plugins.
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginLoader, canExecuteSync, type PluginContext, type PluginLoaderOptions, type PluginResult } from '../../src/index.js';
import type { InProcessPlugin } from '../../src/in-process/index.js';
import { rejectsWithCode } from '../helpers/assertions.js';
import { CallMarkers } from '../helpers/markers.js';
import { REPO_ROOT, buildFixtures, runScript, tempDir } from '../helpers/fixtures.js';

const ctx = (input: Record<string, unknown>) => ({ input: input as never, workspace_root: null, config: {} });
// Plain JS callers may leave out workspace_root and config.
const partial = (context: Partial<PluginContext>): PluginContext => context as PluginContext;

describe('in-process plugins', () => {
  let root: string;
  let dirs: Record<string, string>;
  const load = async (key: string, options: PluginLoaderOptions = {}): Promise<InProcessPlugin> =>
    (await new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false, isolation: 'none', maxConcurrency: 2, ...options }).loadPlugin(
      dirs[key] as string,
    )) as InProcessPlugin;

  // A first concurrent burst gets the pump's threads running before the calls a test looks at.
  async function warmPump(plugin: InProcessPlugin, input: Record<string, unknown>): Promise<void> {
    await Promise.all([1, 2, 3, 4].map(() => plugin.execute(ctx(input))));
  }

  before(async () => {
    root = tempDir();
    dirs = await buildFixtures(root, [
      { key: 'echo', source: 'echo', name: 'echo' },
      { key: 'echoTs', source: 'echo', name: 'echo-ts', defines: { THREAD_SAFE: '1' } },
      { key: 'parallel', source: 'concurrency', name: 'parallel', defines: { THREAD_SAFE: '1' } },
      { key: 'serial', source: 'concurrency', name: 'serial' },
      { key: 'heap', source: 'heap', name: 'heap' },
      { key: 'heapSmall', source: 'heap', name: 'heap-small' },
    ]);
  });

  it('returns each concurrent caller its own result, even from a plugin with thread-local result buffers', async () => {
    const plugin = await load('echoTs');
    try {
      await warmPump(plugin, { n: -1 });
      const results = await Promise.all(Array.from({ length: 300 }, (_, n) => plugin.execute(ctx({ n }))));
      results.forEach((r: PluginResult, n) => {
        assert.deepEqual((r.output as { ctx: { input: unknown } }).ctx.input, { n });
      });
    } finally {
      await plugin.close();
    }
  });

  // koffi's async path hands a result to this thread after its worker may have run another call: a call of
  // the other instance of the same library (one dlopen handle) then overwrites a thread-local result.
  for (const key of ['echo', 'echoTs']) {
    it(`returns each call its own result with pollMicros 0 and two instances of one library with thread-local results (${key})`, async () => {
      const [a, b] = await Promise.all([load(key, { pollMicros: 0 }), load(key, { pollMicros: 0 })]);
      try {
        const calls = Array.from({ length: 400 }, (_, n) => ({ n, plugin: n % 2 === 0 ? a : b }));
        const results = await Promise.all(calls.map(({ n, plugin }) => plugin.execute(ctx({ n }))));
        const wrong = results.map((r: PluginResult, n) => ({ n, got: (r.output as { ctx: { input: { n: number } } }).ctx.input.n })).filter((r) => r.got !== r.n);
        assert.deepEqual(wrong, []);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  }

  it('gives a second plugin of the same library file its own image, so a non-thread-safe plugin never runs two calls at once', async () => {
    const [a, b] = await Promise.all([load('serial'), load('serial')]);
    const marks = new CallMarkers();
    try {
      // a's call is inside the library and holds there; b's call then enters its own image, or the same one.
      const held = a.execute(ctx({ started: marks.started('a'), until: marks.until }));
      await marks.waitStarted('a');
      const inside = b.execute(ctx({ started: marks.started('b'), until: marks.until }));
      await marks.waitStarted('b');
      marks.release();
      const [ra, rb] = await Promise.all([held, inside]);
      assert.equal((ra.output as { max_inflight: number }).max_inflight, 1);
      assert.equal((rb.output as { max_inflight: number }).max_inflight, 1, 'both calls ran inside one image at once');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    // Once both closed, the file is loaded as itself again.
    const c = await load('serial');
    try {
      assert.equal((await c.execute(ctx({ ms: 0 }))).success, true);
    } finally {
      await c.close();
    }
  });

  it('serves a dozen thread-safe plugins at once without one exit listener each', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const plugins = await Promise.all(Array.from({ length: 12 }, () => load('echoTs')));
    try {
      await Promise.all(plugins.map((p, n) => p.execute(ctx({ n }))));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
    } finally {
      process.off('warning', onWarning);
      await Promise.all(plugins.map((p) => p.close()));
    }
  });

  it('never runs more than maxConcurrency calls of a thread-safe plugin at once', async () => {
    const plugin = await load('parallel', { maxConcurrency: 2 });
    try {
      await warmPump(plugin, { ms: 1 });
      // The first two are held until both run, so the limit is surely reached (on a busy machine two 15 ms calls
      // need not overlap); a third call running beside them would show in the counts.
      const marks = new CallMarkers();
      const held = [0, 1].map((seq) => plugin.execute(ctx({ seq, started: marks.started(seq), until: marks.until })));
      const rest = Array.from({ length: 22 }, (_, n) => plugin.execute(ctx({ seq: n + 2, ms: 15 })));
      await marks.waitStarted(0, 1);
      marks.release();
      const results = await Promise.all([...held, ...rest]);
      const max = Math.max(...results.map((r) => (r.output as { max_inflight: number }).max_inflight));
      assert.equal(max, 2);
    } finally {
      await plugin.close();
    }
  });

  it('withdraws a queued call when it is cancelled: it never runs', async () => {
    const plugin = await load('parallel', { maxConcurrency: 2 });
    try {
      await warmPump(plugin, { ms: 1 });
      const before = ((await plugin.execute(ctx({ ms: 1 }))).output as { order: number }).order;
      const marks = new CallMarkers();
      const busy = [0, 1, 2].map((seq) => plugin.execute(ctx({ seq, started: marks.started(seq), until: marks.until })));
      await marks.waitStarted(0, 1);
      // Both slots are held, so this call can only wait in the queue when it is cancelled.
      const controller = new AbortController();
      const queued = plugin.execute(ctx({ seq: 3, ms: 1 }), { signal: controller.signal });
      controller.abort();
      const err = await rejectsWithCode(queued, ErrorCode.CANCELLED);
      assert.equal(err.data?.started, false);
      marks.release();
      await Promise.all(busy);
      const after = ((await plugin.execute(ctx({ ms: 1 }))).output as { order: number }).order;
      assert.equal(after, before + 4, 'three busy calls and this one entered; the withdrawn one did not');
    } finally {
      await plugin.close();
    }
  });

  it('executeSync hands the plugin the same context bytes as execute, defaults and large contexts included', async () => {
    const plugin = await load('echoTs');
    try {
      const contexts: PluginContext[] = [
        { input: { text: 'é ✓ "quoted" \u0000 \\' }, workspace_root: '/tmp/ws "q"', config: { k: [1, 2], nested: { on: true } } },
        partial({ input: {} }),
        { input: { n: 1 }, workspace_root: null, config: {} },
        partial({ input: { n: 2 }, config: Object.create(null) as Record<string, never> }),
        { input: { big: 'x'.repeat(3 * 1024 * 1024) }, workspace_root: '/w', config: { c: 1 } },
        partial({ input: { after: 'big' } }),
      ];
      for (const context of contexts) {
        const viaSync = JSON.stringify((plugin.executeSync(context).output as { ctx: unknown }).ctx);
        const viaAsync = JSON.stringify(((await plugin.execute(context)).output as { ctx: unknown }).ctx);
        assert.equal(viaSync, viaAsync);
        const expected = { input: context.input, workspace_root: context.workspace_root ?? null, config: context.config ?? {} };
        assert.equal(viaSync, JSON.stringify(expected));
      }
    } finally {
      await plugin.close();
    }
  });

  it('offers executeSync as the SyncNativePlugin capability, which an isolated plugin does not claim', async () => {
    const inProcess = await load('echoTs');
    const isolated = await new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false, isolation: 'process', sandbox: 'off' }).loadPlugin(dirs.echoTs as string);
    try {
      assert.equal(canExecuteSync(inProcess), true);
      assert.equal(canExecuteSync(isolated), false);
      if (canExecuteSync(inProcess)) assert.equal(inProcess.executeSync(ctx({ seq: 3 })).success, true);
    } finally {
      await Promise.all([inProcess.close(), isolated.close()]);
    }
  });

  it('executeSync returns the result on this thread and refuses to overlap a call in flight on a serial plugin', async () => {
    const plugin = await load('serial');
    try {
      assert.equal((plugin.executeSync(ctx({ seq: 7, ms: 1 })).output as { seq: number }).seq, 7);
      const pending = plugin.execute(ctx({ ms: 100 }));
      assert.throws(() => plugin.executeSync(ctx({ ms: 1 })), (e: unknown) => (e as { code?: string }).code === ErrorCode.BUSY);
      await pending;
    } finally {
      await plugin.close();
    }
  });

  const withHeap = async (key: string, maxOutputBytes: number, use: (call: (input: Record<string, unknown>) => PluginResult | string) => void): Promise<void> => {
    const plugin = await load(key, { maxOutputBytes });
    try {
      // A result, or the code of the error it threw.
      use((input) => {
        try {
          return plugin.executeSync(ctx(input));
        } catch (err) {
          return String((err as { code?: string }).code);
        }
      });
    } finally {
      await plugin.close();
    }
  };
  const output = (r: PluginResult | string): unknown => (typeof r === 'string' ? r : r.output);

  it('executeSync decodes, checks and frees every kind of returned string exactly once', async () => {
    await withHeap('heap', 200_000, (call) => {
      assert.deepEqual(output(call({ mode: 'ok' })), { ok: true });
      assert.equal(call({ mode: 'badutf8' }), ErrorCode.INVALID_UTF8);
      assert.equal(output(call({ mode: 'replacement' })), '\uFFFD ok', 'a real U+FFFD is valid UTF-8');
      assert.equal(call({ mode: 'notjson' }), ErrorCode.INVALID_JSON);
      assert.equal(call({ mode: 'badshape' }), ErrorCode.INVALID_RESULT);
      assert.equal(call({ mode: 'null' }), ErrorCode.NULL_RESULT);
      // Small results come back through a copy buffer; larger ones are read where the plugin put them.
      for (const size of [10_000, 150_000]) assert.equal((output(call({ mode: 'big', size })) as string).length, size);
      assert.equal(call({ mode: 'big', size: 300_000 }), ErrorCode.OUTPUT_TOO_LARGE);
      // metadata + 5 modes (null allocates nothing) + 3 big + stats; all but the stats string freed.
      assert.deepEqual(output(call({ mode: 'stats' })), { allocs: 10, frees: 9, bad_frees: 0 });
    });
  });

  it('executeSync refuses a result over maxOutputBytes that fits its copy buffer, and frees it', async () => {
    await withHeap('heapSmall', 20_000, (call) => {
      assert.equal(call({ mode: 'big', size: 30_000 }), ErrorCode.OUTPUT_TOO_LARGE);
      assert.equal((output(call({ mode: 'big', size: 10_000 })) as string).length, 10_000);
      assert.deepEqual(output(call({ mode: 'stats' })), { allocs: 4, frees: 3, bad_frees: 0 });
    });
  });

  it('runs on koffi alone when the helper library cannot be built', async () => {
    const script = `
      const { PluginLoader } = await import(${JSON.stringify(path.join(REPO_ROOT, 'build', 'src', 'index.js'))});
      const loader = new PluginLoader({ pluginsDirs: [${JSON.stringify(root)}], defaultDirs: false, readConfig: false, isolation: 'none' });
      const heap = await loader.loadPlugin(${JSON.stringify(dirs.heap)});
      const c = (mode) => ({ input: { mode }, workspace_root: null, config: {} });
      const codeOf = (mode) => { try { heap.executeSync(c(mode)); return 'ok'; } catch (e) { return e.code; } };
      const sync = [codeOf('ok'), codeOf('badutf8'), heap.executeSync(c('replacement')).output, codeOf('null')];
      const echo = await loader.loadPlugin(${JSON.stringify(dirs.echoTs)});
      const burst = await Promise.all(Array.from({ length: 16 }, (_, n) => echo.execute({ input: { n }, workspace_root: null, config: {} })));
      console.log(JSON.stringify({ sync, burst: burst.map((r) => r.output.ctx.input.n), stats: heap.executeSync(c('stats')).output }));`;
    // An unreadable override makes the helper unavailable, as a machine without a C compiler would.
    const { code, stdout: out } = await runScript(script, 60_000, { ...process.env, SKILLPLUG_PUMP: path.join(root, 'missing.so') });
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(out), {
      sync: ['ok', ErrorCode.INVALID_UTF8, '\uFFFD ok', ErrorCode.NULL_RESULT],
      burst: Array.from({ length: 16 }, (_, n) => n),
      stats: { allocs: 5, frees: 4, bad_frees: 0 },
    });
  });

  it('closes a plugin right after its last result, again and again, without waiting on itself', { timeout: 60_000 }, async () => {
    // A result taken by polling can race the notifier into a call that needs this thread; close must not join it blindly.
    // Call lengths straddle the 200 µs polling window, so some results are polled for and some come from the notifier,
    // and every second call is sent only once the one before it answered (an event), restarting polling meanwhile.
    for (let round = 0; round < 40; round++) {
      const plugin = await load('parallel');
      const calls = [];
      for (let n = 0; n < 6; n++) {
        calls.push(plugin.execute(ctx({ seq: n, us: 50 + (((round * 6 + n) * 37) % 400) })));
        if (n % 2 === 1) await calls[n - 1];
      }
      const seqs = (await Promise.all(calls)).map((r) => (r.output as { seq: number }).seq);
      assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5]);
      await plugin.close();
    }
  });

  it('lets a script that used the pump exit by itself', async () => {
    // Between bursts the pump must hold nothing that keeps the loop alive (a turn after the last result,
    // its polling has stopped too), and a burst after that must bring it back.
    const script = `
      const { PluginLoader } = await import(${JSON.stringify(path.join(REPO_ROOT, 'build', 'src', 'index.js'))});
      const loader = new PluginLoader({ pluginsDirs: [${JSON.stringify(root)}], defaultDirs: false, readConfig: false, isolation: 'none' });
      const plugin = await loader.loadPlugin(${JSON.stringify(dirs.echoTs)});
      for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: 32 }, (_, n) => plugin.execute({ input: { n }, workspace_root: null, config: {} })));
      await new Promise((r) => setImmediate(r));
      const holding = process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate');
      await Promise.all(Array.from({ length: 32 }, (_, n) => plugin.execute({ input: { n }, workspace_root: null, config: {} })));
      console.log(JSON.stringify({ holding, done: true }));`;
    const { code, stdout: out } = await runScript(script, 60_000);
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(out), { holding: [], done: true });
  });
});
