// Shared loader cases, run against every isolation mode this build supports.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, ISOLATION_MODES, PluginError, PluginLoader, type IsolationMode, type NativePluginTrait, type PluginResult } from '../../src/index.js';
import { buildFixture, buildFixtures, tempDir, tempHome, type FixtureSpec } from '../helpers/fixtures.js';
import { rejectsWithCode } from '../helpers/assertions.js';
import { laneUp, warmSharedLane } from '../helpers/lane.js';
import { CallMarkers } from '../helpers/markers.js';
import { hostTuning } from '../../src/host/tuning.js';

const DEFAULT_SHARED_AFTER = hostTuning.sharedAfterLoneCalls;


const ctx = (input: Record<string, unknown>) => ({ input: input as never, workspace_root: '/ws', config: {} });

// Each mode with the default polling for results, and each with polling off (results wake the loop);
// and isolated hosts taking lone calls through the shared lane from the start.
const variants = [
  ...(ISOLATION_MODES as IsolationMode[]).flatMap((isolation) => [
    { isolation, pollMicros: undefined, lane: false },
    { isolation, pollMicros: 0, lane: false },
  ]),
  { isolation: 'process' as IsolationMode, pollMicros: undefined, lane: true },
];

for (const { isolation, pollMicros, lane } of variants) {
  describe(`loader (isolation: ${isolation}, pollMicros: ${pollMicros ?? 'default'}${lane ? ', shared lane' : ''})`, () => {
    let root: string;
    let loader: PluginLoader;
    let dirs: Record<string, string> = {};

    after(() => {
      hostTuning.sharedAfterLoneCalls = DEFAULT_SHARED_AFTER;
    });

    before(async () => {
      if (lane) hostTuning.sharedAfterLoneCalls = 0;
      root = tempDir();
      const specs: (FixtureSpec & { key: string })[] = [
        { key: 'echo', source: 'echo', name: 'echo' },
        { key: 'heap', source: 'heap', name: 'heap' },
        { key: 'abi', source: 'abi_mismatch', name: 'abi2' },
        { key: 'noexec', source: 'missing_execute', name: 'noexec' },
        { key: 'metaNotJson', source: 'bad_metadata', name: 'meta-notjson' },
        { key: 'metaMissing', source: 'bad_metadata', name: 'meta-missing', defines: { META: JSON.stringify('{"name":"meta-missing","abi_version":1}') } },
        { key: 'metaOther', source: 'bad_metadata', name: 'meta-other', defines: { META: JSON.stringify('{"name":"someone-else","description":"d","version":"1","abi_version":1}') } },
        { key: 'metaNull', source: 'bad_metadata', name: 'meta-null', defines: { NULL_META: '1' } },
        { key: 'serial', source: 'concurrency', name: 'serial' },
        { key: 'parallel', source: 'concurrency', name: 'parallel', defines: { THREAD_SAFE: '1' } },
        { key: 'stack', source: 'deep_stack', name: 'deep-stack' },
        { key: 'cargo', source: 'echo', name: 'cargo-style', libraryFile: 'libcargo_style.so' },
      ];
      dirs = await buildFixtures(root, specs);
      loader = new PluginLoader({ pluginsDirs: [root], home: tempHome(), workspace: root, isolation, pollMicros });
      if (lane) {
        const warm = await loader.loadPlugin(dirs.echo as string);
        await warmSharedLane(warm, ctx({}));
        await warm.close();
      }
    });

    async function withPlugin<T>(key: string, use: (p: NativePluginTrait) => Promise<T>): Promise<T> {
      const plugin = await loader.loadPlugin(dirs[key] as string);
      try {
        return await use(plugin);
      } finally {
        await plugin.close();
      }
    }

    it('loads a plugin and runs it with the full context', async () => {
      await withPlugin('echo', async (plugin) => {
        assert.equal(plugin.metadata.name, 'echo');
        assert.equal(plugin.metadata.thread_safe, false);
        assert.deepEqual(plugin.metadata.allowed_tools, ['read']);
        assert.equal(plugin.path, dirs.echo);
        const result = await plugin.execute({ input: { q: 'ünï', n: 1 }, workspace_root: '/some/ws', config: { k: true } });
        assert.deepEqual(result, {
          success: true,
          output: { ctx: { input: { q: 'ünï', n: 1 }, workspace_root: '/some/ws', config: { k: true } } },
          error: null,
          files: ['echo.txt'],
        });
      });
    });

    it('finds a Cargo-style library name (hyphens as underscores)', async () => {
      await withPlugin('cargo', async (plugin) => {
        assert.equal(path.basename(plugin.libraryPath), 'libcargo_style.so');
      });
    });

    it('runs plugins that use a megabyte of stack', async () => {
      await withPlugin('stack', async (plugin) => {
        const result = await plugin.execute(ctx({}));
        assert.deepEqual(result.output, { pages: 256, ctx_len: 47 });
      });
    });

    it('refuses an ABI version mismatch, naming both numbers', async () => {
      const err = await rejectsWithCode(loader.loadPlugin(dirs.abi as string), ErrorCode.ABI_MISMATCH);
      assert.deepEqual(err.data, { expected: 1, found: 2 });
    });

    it('refuses a library without vtcode_plugin_execute', async () => {
      const err = await rejectsWithCode(loader.loadPlugin(dirs.noexec as string), ErrorCode.MISSING_SYMBOL);
      assert.equal(err.data?.symbol, 'vtcode_plugin_execute');
    });

    for (const key of ['metaNotJson', 'metaMissing', 'metaOther', 'metaNull']) {
      it(`refuses invalid library metadata (${key})`, async () => {
        await rejectsWithCode(loader.loadPlugin(dirs[key] as string), ErrorCode.INVALID_METADATA);
      });
    }

    it('frees every returned string exactly once, including bad ones', async () => {
      await withPlugin('heap', async (plugin) => {
        await plugin.execute(ctx({ mode: 'ok' }));
        await rejectsWithCode(plugin.execute(ctx({ mode: 'badutf8' })), ErrorCode.INVALID_UTF8);
        assert.equal((await plugin.execute(ctx({ mode: 'replacement' }))).output, '\uFFFD ok', 'a real U+FFFD is valid UTF-8');
        await rejectsWithCode(plugin.execute(ctx({ mode: 'notjson' })), ErrorCode.INVALID_JSON);
        await rejectsWithCode(plugin.execute(ctx({ mode: 'badshape' })), ErrorCode.INVALID_RESULT);
        await rejectsWithCode(plugin.execute(ctx({ mode: 'null' })), ErrorCode.NULL_RESULT);
        const failed = await plugin.execute(ctx({ mode: 'fail' }));
        assert.equal(failed.success, false);
        assert.equal(failed.error, 'it went wrong');
        const stats = (await plugin.execute(ctx({ mode: 'stats' }))).output as { allocs: number; frees: number; bad_frees: number };
        // metadata + ok + badutf8 + replacement + notjson + badshape + fail + stats = 8 allocations; all but the stats string itself freed.
        assert.deepEqual(stats, { allocs: 8, frees: 7, bad_frees: 0 });
        if (lane) assert.equal(laneUp(plugin), true, 'these calls went through the shared lane');
      });
    });

    it('carries a result of tens of MiB', async () => {
      await withPlugin('heap', async (plugin) => {
        const size = 40 * 1024 * 1024;
        const result = await plugin.execute(ctx({ mode: 'big', size }));
        assert.equal((result.output as string).length, size);
      });
    });

    it('refuses a result over maxOutputBytes with E_OUTPUT_TOO_LARGE', async () => {
      const small = new PluginLoader({ pluginsDirs: [root], home: tempHome(), workspace: root, isolation, pollMicros, maxOutputBytes: 4096 });
      const plugin = await small.loadPlugin(dirs.heap as string);
      try {
        const err = await rejectsWithCode(plugin.execute(ctx({ mode: 'big', size: 8192 })), ErrorCode.OUTPUT_TOO_LARGE);
        assert.equal(err.data?.limit, 4096);
        assert.equal((await plugin.execute(ctx({ mode: 'ok' }))).success, true);
      } finally {
        await plugin.close();
      }
    });

    it('checks the context before any native call', async () => {
      await withPlugin('heap', async (plugin) => {
        await rejectsWithCode(plugin.execute({ input: [] as never, workspace_root: null, config: {} }), ErrorCode.INVALID_INPUT);
        await rejectsWithCode(plugin.execute({ input: { n: 1n } as never, workspace_root: null, config: {} }), ErrorCode.INVALID_INPUT);
        await rejectsWithCode(plugin.execute({ input: {}, workspace_root: 5 as never, config: {} }), ErrorCode.INVALID_INPUT);
        await rejectsWithCode(plugin.execute(ctx({}), { timeoutMs: -1 }), ErrorCode.INVALID_INPUT);
        const stats = (await plugin.execute(ctx({ mode: 'stats' }))).output as { allocs: number };
        assert.equal(stats.allocs, 2, 'only metadata and this call reached the plugin');
      });
    });

    it('never blocks the event loop during a call', async () => {
      // Unsandboxed, so the fixture can reach the marker files.
      const plugin = await new PluginLoader({ pluginsDirs: [root], home: tempHome(), workspace: root, isolation, pollMicros, sandbox: 'off' }).loadPlugin(dirs.serial as string);
      try {
        const marks = new CallMarkers();
        // Held until this event loop, turning while the call runs, sees it start and releases it.
        const call = plugin.execute(ctx({ started: marks.started(0), until: marks.until }));
        await marks.waitStarted(0);
        marks.release();
        assert.equal((await call).success, true, 'released by this loop, not given up on by the fixture');
      } finally {
        await plugin.close();
      }
    });

    it('serializes calls to a plugin that is not thread-safe, in order', async () => {
      await withPlugin('serial', async (plugin) => {
        const results = await Promise.all(Array.from({ length: 6 }, (_, seq) => plugin.execute(ctx({ seq, ms: 15 }))));
        const outputs = results.map((r: PluginResult) => r.output as { seq: number; order: number; max_inflight: number });
        assert.deepEqual(outputs.map((o) => o.order), [0, 1, 2, 3, 4, 5]);
        assert.deepEqual(outputs.map((o) => o.seq), [0, 1, 2, 3, 4, 5]);
        assert.equal(Math.max(...outputs.map((o) => o.max_inflight)), 1);
      });
    });

    it('lets a thread-safe plugin run calls concurrently', async () => {
      await withPlugin('parallel', async (plugin) => {
        assert.equal(plugin.metadata.thread_safe, true);
        const results = await Promise.all(Array.from({ length: 4 }, (_, seq) => plugin.execute(ctx({ seq, ms: 150 }))));
        const max = Math.max(...results.map((r) => (r.output as { max_inflight: number }).max_inflight));
        assert.ok(max >= 2, `max concurrent calls was ${max}`);
      });
    });

    it('cancels a queued call before it reaches the plugin', async () => {
      await withPlugin('serial', async (plugin) => {
        const first = plugin.execute(ctx({ seq: 0, ms: 100 }));
        const controller = new AbortController();
        const second = plugin.execute(ctx({ seq: 1, ms: 10 }), { signal: controller.signal });
        controller.abort();
        const err = await rejectsWithCode(second, ErrorCode.CANCELLED);
        assert.equal(err.data?.started, false);
        await first;
        const third = await plugin.execute(ctx({ seq: 2, ms: 1 }));
        assert.equal((third.output as { order: number }).order, 1, 'the cancelled call never entered the plugin');
      });
    });

    it('rejects calls after close with E_CLOSED', async () => {
      const plugin = await loader.loadPlugin(dirs.echo as string);
      await plugin.close();
      await rejectsWithCode(plugin.execute(ctx({})), ErrorCode.CLOSED);
    });
  });
}

describe('loader trust rules', () => {
  let trusted: string;
  let outside: string;
  let loader: PluginLoader;

  before(async () => {
    const base = tempDir();
    trusted = path.join(base, 'trusted');
    outside = path.join(base, 'outside');
    mkdirSync(trusted);
    mkdirSync(outside);
    await buildFixture(trusted, { source: 'echo', name: 'inside' });
    await buildFixture(outside, { source: 'echo', name: 'stranger' });
    // A plugin dir inside the trusted dir whose library links out of it.
    const linked = path.join(trusted, 'linked-lib');
    mkdirSync(linked);
    writeFileSync(path.join(linked, 'plugin.json'), JSON.stringify({ name: 'stranger', description: 'd', version: '1' }));
    symlinkSync(path.join(outside, 'stranger', 'libstranger.so'), path.join(linked, 'libstranger.so'));
    // A symlinked plugin dir that escapes the trusted dir.
    symlinkSync(path.join(outside, 'stranger'), path.join(trusted, 'escape'));
    loader = new PluginLoader({ pluginsDirs: [trusted], defaultDirs: false });
  });

  it('canonicalizes and deduplicates trusted dirs', () => {
    const l = new PluginLoader({ defaultDirs: false });
    const a = l.addTrustedDir(trusted);
    const b = l.addTrustedDir(path.join(trusted, '..', 'trusted'));
    assert.equal(a, b);
    assert.deepEqual(l.trustedDirs(), [a]);
    assert.equal(l.addTrustedDir('does/not/exist'), path.resolve('does/not/exist'));
  });

  it('includes the default trusted dirs', () => {
    const l = new PluginLoader({ workspace: '/ws', home: '/home/u' });
    assert.deepEqual(l.trustedDirs(), ['/home/u/.vtcode/plugins', '/home/u/.local/share/vtcode/plugins', '/home/u/.codex/plugins', '/home/u/.agents/plugins', '/ws/.vtcode/plugins', '/ws/.agents/plugins']);
  });

  it('names the platform library file', () => {
    assert.equal(loader.libraryFilename('my-plugin'), process.platform === 'darwin' ? 'libmy-plugin.dylib' : process.platform === 'win32' ? 'my-plugin.dll' : 'libmy-plugin.so');
  });

  it('loads a plugin inside a trusted dir', async () => {
    const plugin = await loader.loadPlugin(path.join(trusted, 'inside'));
    await plugin.close();
  });

  it('refuses a plugin outside every trusted dir', async () => {
    await rejectsWithCode(loader.loadPlugin(path.join(outside, 'stranger')), ErrorCode.UNTRUSTED_PATH);
  });

  it('refuses a .. escape', async () => {
    await rejectsWithCode(loader.loadPlugin(path.join(trusted, '..', 'outside', 'stranger')), ErrorCode.UNTRUSTED_PATH);
  });

  it('refuses a symlinked plugin dir that escapes', async () => {
    await rejectsWithCode(loader.loadPlugin(path.join(trusted, 'escape')), ErrorCode.UNTRUSTED_PATH);
  });

  it('refuses a library that links out of the trusted dir', async () => {
    await rejectsWithCode(loader.loadPlugin(path.join(trusted, 'linked-lib')), ErrorCode.UNTRUSTED_PATH);
  });

  it('refuses the trusted dir itself and a missing dir', async () => {
    await rejectsWithCode(loader.loadPlugin(trusted), ErrorCode.UNTRUSTED_PATH);
    await rejectsWithCode(loader.loadPlugin(path.join(trusted, 'nope')), ErrorCode.NOT_FOUND);
  });

  it('refuses a broken manifest with E_INVALID_MANIFEST naming the field', async () => {
    const dir = path.join(trusted, 'noversion');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ name: 'inside', description: 'd' }));
    copyFileSync(path.join(trusted, 'inside', 'libinside.so'), path.join(dir, 'libinside.so'));
    const err = await rejectsWithCode(loader.loadPlugin(dir), ErrorCode.INVALID_MANIFEST);
    assert.equal(err.data?.field, 'version');
  });

  it('refuses a FIFO planted as plugin.json with E_INVALID_MANIFEST instead of waiting for a writer', { skip: process.platform === 'win32' ? 'Windows has no FIFOs (mkfifo)' : false }, async () => {
    const dir = path.join(trusted, 'fifo');
    mkdirSync(dir);
    execFileSync('mkfifo', [path.join(dir, 'plugin.json')]);
    await rejectsWithCode(loader.loadPlugin(dir), ErrorCode.INVALID_MANIFEST);
  });

  it('resolves plugins by name with explicit dirs first', async () => {
    const found = await loader.findPlugin('inside');
    assert.equal(found.path, path.join(trusted, 'inside'));
    await rejectsWithCode(loader.findPlugin('no-such-plugin'), ErrorCode.NOT_FOUND);
  });

  it('warns once about a group-writable trusted dir', async () => {
    const { chmodSync } = await import('node:fs');
    const loose = tempDir();
    chmodSync(loose, 0o777);
    const warnings: string[] = [];
    const l = new PluginLoader({ pluginsDirs: [loose], defaultDirs: false, onWarning: (m) => warnings.push(m) });
    await l.discoverPlugins();
    await l.discoverPlugins();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /writable/);
  });

  it('rejects bad loader options', () => {
    assert.throws(() => new PluginLoader({ isolation: 'vm' as never }), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.USAGE);
    assert.throws(() => new PluginLoader({ maxConcurrency: 0 }), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.USAGE);
    for (const pollMicros of [-1, 1.5, '200' as never]) {
      assert.throws(() => new PluginLoader({ pollMicros }), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.USAGE, String(pollMicros));
    }
    assert.doesNotThrow(() => new PluginLoader({ pollMicros: 0 }));
  });
});
