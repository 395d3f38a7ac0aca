// Faults the isolated host must contain, each with its own fixture plugin.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, type PluginError, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import type { IsolatedPlugin } from '../../src/host/isolated.js';
import { REPO_ROOT, buildFixture, buildFixtures, runCli, runScript, tempDir, tempHome, type FixtureSpec } from '../helpers/fixtures.js';
import { rejectsWithCode } from '../helpers/assertions.js';
import { laneUp, warmSharedLane } from '../helpers/lane.js';
import { NEEDS_ADDRESS_LIMIT, SANITIZER } from '../helpers/sanitizer.js';
import { alive, exited } from '../helpers/processes.js';
import { CallMarkers, until } from '../helpers/markers.js';
import { hostTuning } from '../../src/host/tuning.js';
import { spinBudget } from '../../src/abi/spin-budget.js';

const DEFAULT_SHARED_AFTER = hostTuning.sharedAfterLoneCalls;

const ctx = (input: Record<string, unknown>) => ({ input: input as never, workspace_root: null, config: {} });


// Every fault twice: calls on fd 3, then calls made alone through the shared memory lane from a host's first call on.
for (const lane of [false, true]) describe(lane ? 'isolated host, lone calls through the shared lane' : 'isolated host', () => {
  let root: string;
  let dirs: Record<string, string> = {};
  const loader = (options: PluginLoaderOptions = {}) => new PluginLoader({ pluginsDirs: [root], home: tempHome(), defaultDirs: false, isolation: 'process', sandbox: 'off', ...options });

  after(() => {
    hostTuning.sharedAfterLoneCalls = DEFAULT_SHARED_AFTER;
  });

  before(async () => {
    if (lane) hostTuning.sharedAfterLoneCalls = 0;
    root = tempDir();
    dirs = {};
    const specs: (FixtureSpec & { key: string })[] = [
      { key: 'crash', source: 'crash', name: 'crash' },
      { key: 'crashMeta', source: 'crash', name: 'crash-meta', defines: { CRASH_IN_METADATA: '1' } },
      { key: 'crashLoad', source: 'crash', name: 'crash-load', defines: { CRASH_IN_LOAD: '1' } },
      { key: 'hang', source: 'hang', name: 'hang' },
      { key: 'memhog', source: 'memhog', name: 'memhog' },
      { key: 'flood', source: 'flood', name: 'flood' },
      { key: 'heap', source: 'heap', name: 'heap' },
      { key: 'hangTs', source: 'hang', name: 'hang-ts', defines: { THREAD_SAFE: '1' } },
      { key: 'parallel', source: 'concurrency', name: 'parallel', defines: { THREAD_SAFE: '1' } },
      { key: 'arenas', source: 'arenas', name: 'arenas' },
    ];
    dirs = await buildFixtures(root, specs);
    if (lane) {
      // The first lane of a process maps in the background; every later host maps its own at spawn.
      const warm = await loader().loadPlugin(dirs.parallel as string);
      await warmSharedLane(warm, ctx({ ms: 1 }));
      await warm.close();
    }
  });

  async function withPlugin<T>(key: string, options: PluginLoaderOptions, use: (p: IsolatedPlugin) => Promise<T>): Promise<T> {
    const plugin = (await loader(options).loadPlugin(dirs[key] as string)) as IsolatedPlugin;
    try {
      return await use(plugin);
    } finally {
      await plugin.close();
    }
  }

  for (const [mode, check] of [
    ['segv', (e: PluginError) => assert.equal(e.failure?.signal, 'SIGSEGV')],
    ['abort', (e: PluginError) => assert.equal(e.failure?.signal, 'SIGABRT')],
    ['exit3', (e: PluginError) => assert.equal(e.failure?.exitCode, 3)],
  ] as const) {
    it(`contains a crash (${mode}) with its facts, then serves the next call from a fresh host`, async () => {
      await withPlugin('crash', {}, async (plugin) => {
        const firstPid = plugin.hostPid;
        const err = await rejectsWithCode(plugin.execute(ctx({ mode })), ErrorCode.CRASHED);
        check(err);
        assert.equal(err.failure?.crashed, true);
        assert.match(err.failure?.stderrTail ?? '', new RegExp(`crash fixture: got .*${mode}`));
        const next = await plugin.execute(ctx({ mode: 'ok' }));
        assert.deepEqual(next.output, { alive: true });
        assert.notEqual(plugin.hostPid, firstPid);
      });
    });
  }

  it('reports a crash inside metadata or the library constructor at load', async () => {
    const meta = await rejectsWithCode(loader().loadPlugin(dirs.crashMeta as string), ErrorCode.CRASHED);
    assert.equal(meta.failure?.signal, 'SIGSEGV');
    assert.match(meta.failure?.stderrTail ?? '', /dying in metadata/);
    const load = await rejectsWithCode(loader().loadPlugin(dirs.crashLoad as string), ErrorCode.CRASHED);
    assert.equal(load.failure?.signal, 'SIGABRT');
  });

  it('quarantines a plugin that crashes 3 times within a minute, until reloaded', async () => {
    await withPlugin('crash', {}, async (plugin) => {
      for (let i = 0; i < 3; i++) await rejectsWithCode(plugin.execute(ctx({ mode: 'abort' })), ErrorCode.CRASHED);
      await rejectsWithCode(plugin.execute(ctx({ mode: 'ok' })), ErrorCode.QUARANTINED);
    });
    await withPlugin('crash', {}, async (reloaded) => {
      assert.deepEqual((await reloaded.execute(ctx({ mode: 'ok' }))).output, { alive: true });
    });
  });

  for (const mode of ['spin', 'sleep']) {
    it(`times out a hung call (${mode}); queued calls run on a fresh host`, async () => {
      await withPlugin('hang', {}, async (plugin) => {
        const hung = plugin.execute(ctx({ mode }), { timeoutMs: 300 });
        const queued = plugin.execute(ctx({ mode: 'answer' }), { timeoutMs: 30_000 });
        const err = await rejectsWithCode(hung, ErrorCode.TIMEOUT);
        assert.equal(err.failure?.timedOut, true);
        assert.deepEqual((await queued).output, { answered: true });
      });
    });
  }

  it('re-sends calls a thread-safe host had queued but not started when a sibling times out', async () => {
    await withPlugin('hangTs', { maxConcurrency: 1 }, async (plugin) => {
      const hung = plugin.execute(ctx({ mode: 'spin' }), { timeoutMs: 300 });
      const queued = [1, 2, 3].map(() => plugin.execute(ctx({ mode: 'answer' }), { timeoutMs: 5000 }));
      await rejectsWithCode(hung, ErrorCode.TIMEOUT);
      for (const r of await Promise.all(queued)) assert.deepEqual(r.output, { answered: true });
    });
  });

  it('withdraws a call queued in a thread-safe host when it is cancelled: it never runs', async () => {
    await withPlugin('parallel', { maxConcurrency: 2 }, async (plugin) => {
      const marks = new CallMarkers();
      const busy = [0, 1].map((seq) => plugin.execute(ctx({ seq, started: marks.started(seq), until: marks.until })));
      await marks.waitStarted(0, 1);
      // Both workers are held, so the host can only queue this call: its frame goes out now, the withdrawal after it.
      const controller = new AbortController();
      const queued = plugin.execute(ctx({ seq: 2, ms: 1 }), { signal: controller.signal });
      controller.abort();
      const err = await rejectsWithCode(queued, ErrorCode.CANCELLED);
      assert.equal(err.data?.started, false);
      // Released only once the host's CANCEL_ACK settled the withdrawn call: a worker freed earlier could take it first.
      const onHost = () => (plugin as unknown as { host?: { inFlight: number } }).host?.inFlight;
      await until(() => onHost() === 2, 'the CANCEL_ACK');
      marks.release();
      await Promise.all(busy);
      const next = await plugin.execute(ctx({ seq: 3, ms: 1 }));
      assert.equal((next.output as { order: number }).order, 2, 'the withdrawn call never entered the plugin');
    });
  });

  it('runs a lone call on the host reader without holding up calls sent while it runs', async () => {
    await withPlugin('parallel', { maxConcurrency: 2 }, async (plugin) => {
      const marks = new CallMarkers();
      // Held until released: the short call can only finish first if it ran beside the lone call.
      const long = plugin.execute(ctx({ seq: 0, started: marks.started(0), until: marks.until }));
      await marks.waitStarted(0);
      const short = await plugin.execute(ctx({ seq: 1, ms: 1 }));
      assert.equal((short.output as { max_inflight: number }).max_inflight, 2);
      marks.release();
      assert.equal(((await long).output as { seq: number }).seq, 0);
    });
  });

  it('runs hosts as SCHED_BATCH while two or more have calls in flight, and as usual while one has', { skip: lane ? false : 'the BATCH word lives in the lane' }, async () => {
    const [a, b] = await Promise.all([loader().loadPlugin(dirs.parallel as string), loader().loadPlugin(dirs.parallel as string)]);
    const batch = (result: { output: unknown }) => (result.output as { batch?: boolean }).batch;
    try {
      assert.equal(batch(await a.execute(ctx({ seq: 0, ms: 0, report_thread: 1 }))), false, 'one host busy');
      assert.equal(batch(await b.execute(ctx({ seq: 0, ms: 0, report_thread: 1 }))), false, 'one host busy');
      const marks = new CallMarkers();
      const held = a.execute(ctx({ seq: 1, started: marks.started(1), until: marks.until }));
      await marks.waitStarted(1);
      assert.equal(batch(await b.execute(ctx({ seq: 2, ms: 0, report_thread: 1 }))), true, 'two hosts busy');
      marks.release();
      await held;
      assert.equal(batch(await b.execute(ctx({ seq: 3, ms: 0, report_thread: 1 }))), false, 'one host busy again');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('counts a lone call on the host reader against maxConcurrency', async () => {
    await withPlugin('parallel', { maxConcurrency: 2 }, async (plugin) => {
      const marks = new CallMarkers();
      const first = plugin.execute(ctx({ seq: 0, started: marks.started(0), until: marks.until }));
      await marks.waitStarted(0);
      // With the lone call held, the other four share the one slot left; uncounted, two of them would overlap.
      const rest = await Promise.all([1, 2, 3, 4].map((seq) => plugin.execute(ctx({ seq, ms: 20 }))));
      marks.release();
      const results = [await first, ...rest];
      assert.equal(Math.max(...results.map((r) => (r.output as { max_inflight: number }).max_inflight)), 2);
    });
  });

  it('uses the loader default timeout and lets a call override it', async () => {
    await withPlugin('hang', { timeoutMs: 200 }, async (plugin) => {
      await rejectsWithCode(plugin.execute(ctx({ mode: 'sleep' })), ErrorCode.TIMEOUT);
      assert.deepEqual((await plugin.execute(ctx({}), { timeoutMs: 10_000 })).output, { answered: true });
    });
  });

  it('cancels a running call through its AbortSignal by killing the host', async () => {
    await withPlugin('hang', {}, async (plugin) => {
      const marks = new CallMarkers();
      const controller = new AbortController();
      const hung = plugin.execute(ctx({ mode: 'spin', started: marks.started('hung') }), { signal: controller.signal });
      await marks.waitStarted('hung');
      const pid = plugin.hostPid as number;
      controller.abort();
      const err = await rejectsWithCode(hung, ErrorCode.CANCELLED);
      assert.equal(err.failure?.cancelled, true);
      await exited([pid], 'the host of the cancelled call');
      assert.deepEqual((await plugin.execute(ctx({}))).output, { answered: true });
    });
  });

  it('stops a runaway allocation at the memory limit with E_RESOURCE_LIMIT', { skip: NEEDS_ADDRESS_LIMIT }, async () => {
    await withPlugin('memhog', { maxMemoryMb: 256 }, async (plugin) => {
      const err = await rejectsWithCode(plugin.execute(ctx({ mode: 'hog' })), ErrorCode.RESOURCE_LIMIT);
      assert.equal(err.data?.limitMb, 256);
      assert.deepEqual((await plugin.execute(ctx({}))).output, { small: true });
    });
  });

  // 32 workers' first mallocs would reserve 64 MiB arenas each under RLIMIT_AS: workers then fail to start and the calls never meet.
  it('runs 32 workers that all allocate under a modest memory limit', async () => {
    const calls = 32;
    await withPlugin('arenas', { maxConcurrency: calls, maxMemoryMb: 512, timeoutMs: 60_000 }, async (plugin) => {
      const results = await Promise.all(Array.from({ length: calls }, () => plugin.execute(ctx({ calls }))));
      for (const result of results) assert.deepEqual(result.output, { met: true, allocated: true });
    });
  });

  it('keeps the channel clean while the plugin floods stdout and stderr', async () => {
    const logs: string[] = [];
    await withPlugin('flood', { onLog: (_name, text) => logs.push(text) }, async (plugin) => {
      const result = await plugin.execute(ctx({ mib: 8 }));
      assert.deepEqual(result.output, { flooded: true });
      assert.match(plugin.logs(), /flood fixture: last line/);
      assert.ok(logs.join('').length > 8 * 1024 * 1024, 'logs were streamed');
    });
  });

  it('returns a 32 MiB result', async () => {
    await withPlugin('heap', {}, async (plugin) => {
      const size = 32 * 1024 * 1024;
      const result = await plugin.execute(ctx({ mode: 'big', size }));
      assert.equal((result.output as string).length, size);
    });
  });

  it('returns long results one after another, each intact, and finds invalid UTF-8 in a long one', async () => {
    await withPlugin('heap', {}, async (plugin) => {
      // Each arrives in many chunks, joined into memory the next one reuses.
      for (const [fill, size] of [['a', 300_000], ['b', 200_000], ['c', 300_001]] as const) {
        assert.equal((await plugin.execute(ctx({ mode: 'big', size, fill: fill.charCodeAt(0) }))).output, fill.repeat(size));
      }
      await rejectsWithCode(plugin.execute(ctx({ mode: 'big', size: 300_000, end: 'badutf8' })), ErrorCode.INVALID_UTF8);
      assert.equal((await plugin.execute(ctx({ mode: 'big', size: 250_000, fill: 'd'.charCodeAt(0) }))).output, 'd'.repeat(250_000));
    });
  });

  it('kills a host whose plugin writes into the private channel', async () => {
    await withPlugin('crash', {}, async (plugin) => {
      if (lane) {
        // The call's own result may come through the lane before the junk on fd 3 is read; the host dies either way.
        await plugin.execute(ctx({ mode: 'ok' }));
        const pid = plugin.hostPid as number;
        const outcome = await plugin.execute(ctx({ mode: 'scribble' })).then(() => 'answered', (e: PluginError) => e.code);
        assert.ok(['answered', ErrorCode.CRASHED].includes(outcome), outcome);
        await exited([pid], 'the host that wrote into its channel');
      } else {
        const err = await rejectsWithCode(plugin.execute(ctx({ mode: 'scribble' })), ErrorCode.CRASHED);
        assert.ok(err.data?.protocolError);
      }
      assert.deepEqual((await plugin.execute(ctx({ mode: 'ok' }))).output, { alive: true });
    });
  });

  it('starts a build it already knows lazily, on the first call, and close() stops the host', async () => {
    const first = await loader().loadPlugin(dirs.crash as string);
    await first.close();
    const plugin = (await loader().loadPlugin(dirs.crash as string)) as IsolatedPlugin;
    assert.equal(plugin.hostPid, undefined, 'no host before the first call');
    assert.equal(plugin.metadata.name, 'crash');
    await plugin.execute(ctx({ mode: 'ok' }));
    const started: IsolatedPlugin = plugin;
    const pid = started.hostPid as number;
    assert.ok(alive(pid));
    await plugin.close();
    assert.equal(alive(pid), false);
    await rejectsWithCode(plugin.execute(ctx({ mode: 'ok' })), ErrorCode.CLOSED);
  });

  it('leaves no host behind when its parent is killed with SIGKILL', async () => {
    const marks = new CallMarkers();
    // TSan holds a signal until the thread it landed on calls into its runtime, which a spinning plugin never does.
    const mode = SANITIZER === 'thread' ? 'sleep' : 'spin';
    // The script prints its host's pid when asked on stdin (which also keeps it alive), once the call runs in that host.
    const script = `
      const { PluginLoader } = await import(${JSON.stringify(path.join(REPO_ROOT, 'build', 'src', 'index.js'))});
      const loader = new PluginLoader({ pluginsDirs: [${JSON.stringify(root)}], defaultDirs: false, sandbox: 'off' });
      const plugin = await loader.loadPlugin(${JSON.stringify(dirs.hang)});
      plugin.execute({ input: { mode: '${mode}', started: ${JSON.stringify(marks.started('call'))} }, workspace_root: null, config: {} }).catch(() => {});
      process.stdin.once('data', () => console.log(plugin.hostPid));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    // If the script dies first, the test fails instead of waiting forever.
    const died = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => reject(new Error(`the parent script exited (${code ?? signal}) before it printed its host's pid`)));
    });
    await Promise.race([marks.waitStarted('call'), died]);
    child.stdin.write('pid?\n');
    const pid = await Promise.race([new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))), died]);
    assert.ok(alive(pid), 'the host runs');
    child.kill('SIGKILL');
    await exited([pid], `host ${pid} after its parent was killed`);
  });

  if (lane) {
    it('takes a fresh host\'s first call through the lane, with every kind of result', async () => {
      await withPlugin('heap', {}, async (plugin) => {
        assert.deepEqual((await plugin.execute(ctx({}))).success, true);
        assert.equal(laneUp(plugin), true);
        await rejectsWithCode(plugin.execute(ctx({ mode: 'null' })), ErrorCode.NULL_RESULT);
        await rejectsWithCode(plugin.execute(ctx({ mode: 'badutf8' })), ErrorCode.INVALID_UTF8);
        assert.equal((await plugin.execute(ctx({ mode: 'replacement' }))).output, '\uFFFD ok');
        await rejectsWithCode(plugin.execute(ctx({ mode: 'notjson' })), ErrorCode.INVALID_JSON);
        // Beyond the lane's 64 KiB: the result comes on fd 3, and the next call takes the lane again.
        assert.equal(((await plugin.execute(ctx({ mode: 'big', size: 200_000 }))).output as string).length, 200_000);
        assert.equal(((await plugin.execute(ctx({ mode: 'big', size: 100 }))).output as string).length, 100);
        // A context too large for the lane goes on fd 3.
        assert.equal((await plugin.execute(ctx({ pad: 'p'.repeat(100_000) }))).success, true);
        assert.equal(laneUp(plugin), true);
      });
      await withPlugin('heap', { maxOutputBytes: 1000 }, async (plugin) => {
        await plugin.execute(ctx({}));
        assert.equal(laneUp(plugin), true);
        await rejectsWithCode(plugin.execute(ctx({ mode: 'big', size: 5000 })), ErrorCode.OUTPUT_TOO_LARGE);
      });
    });

    it('gets a result the host finished while the caller was not polling, and wakes a host that went to sleep', async (t) => {
      // No spin leases and no polling: the caller waits on fd 3 for every result, and the host sleeps on fd 3 as soon as
      // a call ends, so each result has to wake the caller and each lane call has to wake the host (no clock decides it).
      t.mock.method(spinBudget, 'acquire', () => false);
      t.mock.method(spinBudget, 'mayPollEventLoop', () => false);
      await withPlugin('parallel', { maxConcurrency: 2 }, async (plugin) => {
        await plugin.execute(ctx({ ms: 1 }));
        assert.equal(laneUp(plugin), true);
        for (let i = 0; i < 20; i++) assert.equal(((await plugin.execute(ctx({ seq: i, ms: 1 }))).output as { seq: number }).seq, i);
        assert.equal(laneUp(plugin), true);
      });
    });

    it('answers a thousand calls in a row through the lane, each with its own result', async () => {
      await withPlugin('parallel', { maxConcurrency: 2 }, async (plugin) => {
        for (let seq = 0; seq < 1000; seq++) assert.equal(((await plugin.execute(ctx({ seq, ms: 0 }))).output as { seq: number }).seq, seq);
        assert.equal(laneUp(plugin), true);
      });
    });
  }

  it('does not keep the caller alive when idle', async () => {
    const script = `
      const { PluginLoader } = await import(${JSON.stringify(path.join(REPO_ROOT, 'build', 'src', 'index.js'))});
      const loader = new PluginLoader({ pluginsDirs: [${JSON.stringify(root)}], defaultDirs: false, sandbox: 'off' });
      const plugin = await loader.loadPlugin(${JSON.stringify(dirs.hang)});
      const r = await plugin.execute({ input: {}, workspace_root: null, config: {} });
      console.log(JSON.stringify(r.output));`;
    const { code, stdout: out } = await runScript(script, 60_000);
    assert.equal(code, 0, 'the script exited by itself');
    assert.equal(out.trim(), '{"answered":true}');
  });
});

describe('isolated host through the CLI', () => {
  let plugins: string;
  before(async () => {
    plugins = tempDir();
    await Promise.all([buildFixture(plugins, { source: 'crash', name: 'crash' }), buildFixture(plugins, { source: 'hang', name: 'hang' })]);
  });

  it('reports a crash with exit 4 and E_CRASHED', async () => {
    const r = await runCli(['run', 'crash', '--plugins-dir', plugins, '--input', '{"mode":"segv"}', '--json']);
    assert.equal(r.code, 4, r.stderr);
    const error = JSON.parse(r.stdout).error;
    assert.equal(error.code, 'E_CRASHED');
    assert.equal(error.data.failure.signal, 'SIGSEGV');
  });

  it('shows the plugin stderr tail with a crash in text mode', async () => {
    const r = await runCli(['run', 'crash', '--plugins-dir', plugins, '--input', '{"mode":"abort"}']);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /error\[E_CRASHED\]/);
    assert.match(r.stderr, /crash fixture: got/);
  });

  it('enforces --timeout with exit 4 and E_TIMEOUT', async () => {
    const r = await runCli(['run', 'hang', '--plugins-dir', plugins, '--input', '{"mode":"spin"}', '--timeout', '300', '--json']);
    assert.equal(r.code, 4);
    assert.equal(JSON.parse(r.stdout).error.code, 'E_TIMEOUT');
  });

  it('enforces --max-memory and rejects bad values', async () => {
    const bad = await runCli(['run', 'hang', '--plugins-dir', plugins, '--max-memory', 'lots', '--json']);
    assert.equal(bad.code, 2);
    const badIsolation = await runCli(['run', 'hang', '--plugins-dir', plugins, '--isolation', 'vm', '--json']);
    assert.equal(badIsolation.code, 2);
  });

  it('runs in-process with --isolation none', async () => {
    const r = await runCli(['run', 'hang', '--plugins-dir', plugins, '--isolation', 'none', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).output, { answered: true });
  });
});
