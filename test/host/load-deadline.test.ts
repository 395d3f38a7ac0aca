// Loading runs plugin code (constructors, vtcode_plugin_metadata()), so it has a deadline in every isolation mode.
// The fixtures block forever: any timeout works, and only error codes are asserted, never elapsed time.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader, type IsolationMode } from '../../src/index.js';
import { buildFixtures, runCli, tempDir } from '../helpers/fixtures.js';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof PluginError, String(err));
    return err.code;
  }
  return 'resolved';
}

describe('load deadline', () => {
  let plugins: string;
  let dirs: Record<string, string>;
  const loader = (isolation: IsolationMode, env?: Record<string, string>) =>
    new PluginLoader({ pluginsDirs: [plugins], defaultDirs: false, readConfig: false, isolation, sandbox: 'off', timeoutMs: 300, ...(env ? { env } : {}) });

  before(async () => {
    plugins = path.join(tempDir(), 'plugins');
    mkdirSync(plugins);
    // A random suffix keeps each run's builds out of the metadata registry, which would skip the load.
    const tag = Math.random().toString(36).slice(2, 8);
    dirs = await buildFixtures(plugins, [
      { key: 'ctor', source: 'block_on_load', name: `ctor-${tag}`, defines: { BLOCK_IN_CONSTRUCTOR: '1' } },
      { key: 'meta', source: 'block_on_load', name: `meta-${tag}`, defines: { BLOCK_IN_METADATA: '1' } },
      { key: 'ctorNone', source: 'block_on_load', name: `ctornone-${tag}`, defines: { BLOCK_IN_CONSTRUCTOR: '1' } },
      { key: 'metaNone', source: 'block_on_load', name: `metanone-${tag}`, defines: { BLOCK_IN_METADATA: '1' } },
      { key: 'lazy', source: 'block_on_load', name: `lazy-${tag}` },
      { key: 'cli', source: 'block_on_load', name: `cli-${tag}`, defines: { BLOCK_IN_METADATA: '1' } },
    ]);
  });

  it('isolated: a constructor or metadata that blocks forever is E_TIMEOUT and its host is killed', async () => {
    for (const key of ['ctor', 'meta']) {
      const err = await loader('process').loadPlugin(dirs[key] as string).then(
        () => undefined,
        (e: unknown) => e as PluginError,
      );
      assert.equal(err?.code, ErrorCode.TIMEOUT, key);
      assert.equal(err?.failure?.timedOut, true);
      assert.equal(err?.failure?.signal, 'SIGKILL');
    }
  });

  it('in-process: a build that blocks while loading is E_TIMEOUT (it is loaded once in a host first), and this process is not hung', async () => {
    assert.equal(await codeOf(loader('none').loadPlugin(dirs.ctorNone as string)), ErrorCode.TIMEOUT);
    assert.equal(await codeOf(loader('none').loadPlugin(dirs.metaNone as string)), ErrorCode.TIMEOUT);
  });

  it('a lazily started host that blocks is E_TIMEOUT for the call, and for every later call', async () => {
    // Answers once, so its metadata is known and the next load starts no host until the first call.
    const first = await loader('process').loadPlugin(dirs.lazy as string);
    await first.close();
    const plugin = await loader('process', { SKILLPLUG_FIXTURE_BLOCK: 'constructor' }).loadPlugin(dirs.lazy as string);
    try {
      for (let i = 0; i < 4; i++) {
        assert.equal(await codeOf(plugin.execute({ input: {}, workspace_root: null, config: {} }, { timeoutMs: 200 })), ErrorCode.TIMEOUT, `call ${i}`);
      }
    } finally {
      await plugin.close();
    }
  });

  it('CLI: run --timeout and list --deep --timeout end with E_TIMEOUT', async () => {
    const run = await runCli(['run', dirs.cli as string, '--plugins-dir', plugins, '--sandbox', 'off', '--timeout', '300', '--json']);
    assert.equal(run.code, 4);
    assert.equal((JSON.parse(run.stdout) as { error: { code: string } }).error.code, ErrorCode.TIMEOUT);
    const list = await runCli(['list', '--plugins-dir', plugins, '--sandbox', 'off', '--deep', '--timeout', '300', '--json']);
    const listed = JSON.parse(list.stdout) as { plugins: { path: string; metadata_error?: { code: string } }[] };
    const entry = listed.plugins.find((p) => p.path.endsWith(path.basename(dirs.cli as string)));
    assert.equal(entry?.metadata_error?.code, ErrorCode.TIMEOUT);
  });
});
