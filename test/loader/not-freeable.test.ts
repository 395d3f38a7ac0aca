// A plugin exporting vtcode_plugin_free_string that returns a string literal or static buffer is refused
// with the rule explained, before anything frees it (which crashed the host: E_CRASHED SIGSEGV/SIGABRT).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginLoader, type IsolationMode } from '../../src/index.js';
import { openNativeLibrary } from '../../src/abi/native.js';
import { buildFixtures, runCli, tempDir, tempHome } from '../helpers/fixtures.js';
import { rejectsWithCode } from '../helpers/assertions.js';

const ctx = { input: {}, workspace_root: null, config: {} };

describe('strings the free function must not free', () => {
  let root: string;
  let dirs: Record<string, string>;

  before(async () => {
    root = tempDir();
    const fresh = { BUILD_ID: JSON.stringify(randomUUID()) };
    dirs = await buildFixtures(root, [
      { key: 'literalMeta', source: 'static_free', name: 'literal-meta', defines: fresh },
      { key: 'literalResult', source: 'static_free', name: 'literal-result', defines: { HEAP_METADATA: '1', ...fresh } },
      { key: 'bufferResult', source: 'static_free', name: 'buffer-result', defines: { HEAP_METADATA: '1', STATIC_BUFFER: '1', ...fresh } },
      { key: 'heap', source: 'static_free', name: 'all-heap', defines: { HEAP_METADATA: '1', HEAP_RESULT: '1' } },
    ]);
  });

  for (const isolation of ['process', 'none'] as IsolationMode[]) {
    it(`refuses literal metadata with E_INVALID_METADATA (isolation ${isolation})`, async () => {
      const loader = new PluginLoader({ pluginsDirs: [root], home: tempHome(), workspace: root, isolation });
      const err = await rejectsWithCode(loader.loadPlugin(dirs.literalMeta as string), ErrorCode.INVALID_METADATA);
      assert.deepEqual(err.data, { reason: 'not-freeable', function: 'vtcode_plugin_metadata', storage: 'string-literal' });
    });
  }

  it('refuses a literal or static-buffer result with E_INVALID_RESULT, and the host lives on', async () => {
    const loader = new PluginLoader({ pluginsDirs: [root], home: tempHome(), workspace: root, isolation: 'process' });
    for (const [key, storage] of [
      ['literalResult', 'string-literal'],
      ['bufferResult', 'static-buffer'],
    ] as const) {
      const plugin = await loader.loadPlugin(dirs[key] as string);
      try {
        for (let i = 0; i < 2; i++) {
          const err = await rejectsWithCode(plugin.execute(ctx), ErrorCode.INVALID_RESULT);
          assert.deepEqual(err.data, { reason: 'not-freeable', function: 'vtcode_plugin_execute', storage });
        }
      } finally {
        await plugin.close();
      }
    }
    const heap = await loader.loadPlugin(dirs.heap as string);
    assert.equal((await heap.execute(ctx)).success, true, 'heap strings are freed as before');
    await heap.close();
  });

  it('the in-process library binding tells them apart too (koffi path)', () => {
    const library = path.join(dirs.literalResult as string, 'libliteral-result.so');
    const lib = openNativeLibrary(library, { plugin: 'literal-result', path: library });
    try {
      assert.equal(lib.metadata(1 << 20).kind, 'text', 'strdup metadata is heap');
      assert.deepEqual(lib.executeSync({ input: '{}', workspaceRoot: null, config: null }, 1 << 20), { kind: 'not-freeable', writable: false });
    } finally {
      lib.unload();
    }
    const literalMeta = path.join(dirs.literalMeta as string, 'libliteral-meta.so');
    const other = openNativeLibrary(literalMeta, { plugin: 'literal-meta', path: literalMeta });
    try {
      assert.deepEqual(other.metadata(1 << 20), { kind: 'not-freeable', writable: false });
    } finally {
      other.unload();
    }
  });

  it('inspect and list --deep report it before anything runs', async () => {
    const home = tempHome();
    const inspect = await runCli(['inspect', dirs.literalMeta as string, '--plugins-dir', root, '--json'], { env: { HOME: home } });
    assert.equal(inspect.code, 3);
    assert.equal(JSON.parse(inspect.stdout).error.code, ErrorCode.INVALID_METADATA);
    const list = await runCli(['list', '--deep', '--plugins-dir', root, '--json'], { env: { HOME: home } });
    const listed = JSON.parse(list.stdout).plugins.find((p: { name: string }) => p.name === 'literal-meta');
    assert.equal(listed.metadata_error.code, ErrorCode.INVALID_METADATA);
  });
});
