// The parent's side of one host: limits that apply to frames, whatever the plugin's result limit.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader } from '../../src/index.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';

describe('host process', () => {
  let root: string;
  let dir: string;
  // Unique per run: a build seen before would answer from the metadata cache without a READY frame.
  const description = `${process.pid}-${Date.now()}-`.padEnd(5000, 'd');

  before(async () => {
    root = tempDir();
    const meta = JSON.stringify({ name: 'wordy', description, version: '1', abi_version: 1 });
    dir = await buildFixture(root, { source: 'bad_metadata', name: 'wordy', defines: { META: JSON.stringify(meta) } });
  });

  it('loads a plugin whose metadata is longer than a small maxOutputBytes', async () => {
    const loader = new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false, isolation: 'process', sandbox: 'off', maxOutputBytes: 1000 });
    const plugin = await loader.loadPlugin(dir);
    try {
      assert.equal(plugin.metadata.description, description);
      assert.equal((await plugin.execute({ input: {}, workspace_root: null, config: {} })).success, true);
    } finally {
      await plugin.close();
    }
  });
});

describe('a refused load shows what the plugin said', () => {
  it('attaches the stderr a plugin wrote before returning NULL metadata (as the Rust SDK does on a panic)', async () => {
    const root = tempDir();
    const why = `vtcode plugin: metadata() panicked: boom at src/lib.rs:3:9 (${process.pid}-${Date.now()})`;
    const dir = await buildFixture(root, { source: 'bad_metadata', name: 'says-why', defines: { NULL_META: '1', WHY: JSON.stringify(why) } });
    const loader = new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false, isolation: 'process', sandbox: 'off' });
    await assert.rejects(loader.loadPlugin(dir), (err: unknown) => {
      assert.ok(err instanceof PluginError);
      assert.equal(err.code, ErrorCode.INVALID_METADATA);
      assert.ok(err.failure?.stderrTail.includes(why), `stderr tail: ${JSON.stringify(err.failure?.stderrTail)}`);
      return true;
    });
  });
});
