// Discovery compiles plugin schemas once per plugin.json version, only for plugins that may load.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode, PluginLoader } from '../../src/index.js';
import { retainedSchemaCount } from '../../src/manifest/schema.js';
import { buildFixture, tempDir, writeManifest } from '../helpers/fixtures.js';

const manifest = (name: string, inputSchema: Record<string, unknown>) => ({ name, description: 'd', version: '1', input_schema: inputSchema });
const verdictCount = (loader: PluginLoader): number => (loader as unknown as { schemaVerdicts: { size: number } }).schemaVerdicts.size;

describe('discovery schema cache', () => {
  it('keeps a plugin whose schema has an $id through repeated discoveries (ajv refused its second compile)', async () => {
    const plugins = path.join(tempDir(), 'plugins');
    mkdirSync(plugins);
    const dir = await buildFixture(plugins, { source: 'echo', name: 'withid', manifest: manifest('withid', { $id: 'https://example.com/withid', type: 'object' }) });
    const loader = new PluginLoader({ pluginsDirs: [plugins], defaultDirs: false, readConfig: false });
    for (let i = 0; i < 3; i++) {
      const [found] = await loader.discoverPlugins();
      assert.equal(found?.status, 'ok', `pass ${i}: ${JSON.stringify(found?.errors)}`);
    }
    // A rewrite is a new file version: it is judged again, and an edit that breaks the schema shows.
    writeManifest(dir, manifest('withid', { $id: 'https://example.com/withid', type: 'object', properties: { n: { type: 'number' } } }));
    const [edited] = await new PluginLoader({ pluginsDirs: [plugins], defaultDirs: false, readConfig: false }).discoverPlugins();
    assert.equal(edited?.status, 'ok', 'the same $id compiles again in another loader');
    writeManifest(dir, manifest('withid', { $id: 'https://example.com/withid', type: 'object', properties: { n: { type: 'nope' } } }));
    const [broken] = await loader.discoverPlugins();
    assert.equal(broken?.errors[0]?.code, ErrorCode.INVALID_MANIFEST);
  });

  it('holds nothing more after 50 discoveries than after one, and drops the entry of a removed plugin', async () => {
    const plugins = path.join(tempDir(), 'plugins');
    mkdirSync(plugins);
    for (const name of ['one', 'two', 'three']) await buildFixture(plugins, { source: 'echo', name, manifest: manifest(name, { type: 'object', properties: { q: { type: 'string' } } }) });
    const loader = new PluginLoader({ pluginsDirs: [plugins], defaultDirs: false, readConfig: false });
    await loader.discoverPlugins();
    assert.equal(verdictCount(loader), 3);
    const retained = retainedSchemaCount();
    for (let i = 0; i < 50; i++) {
      // A new version of one plugin.json each time: it is compiled again, and must replace, not add.
      writeManifest(path.join(plugins, 'one'), manifest('one', { type: 'object', description: `v${i}`, properties: { q: { type: 'string' } } }));
      await loader.discoverPlugins();
    }
    assert.equal(verdictCount(loader), 3);
    assert.equal(retainedSchemaCount(), retained, 'ajv\'s own registry does not grow');
    rmSync(path.join(plugins, 'two'), { recursive: true });
    await loader.discoverPlugins();
    assert.equal(verdictCount(loader), 2);
  });

  it('compiles no schema of an untrusted workspace plugin', async () => {
    const workspace = tempDir();
    const dir = path.join(workspace, '.vtcode', 'plugins');
    mkdirSync(dir, { recursive: true });
    await buildFixture(dir, { source: 'echo', name: 'repo', manifest: manifest('repo', { type: 'object', properties: { n: { type: 'nope' } } }) });
    const home = tempDir();
    mkdirSync(path.join(home, '.vtcode'));
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), '{}');
    const loader = new PluginLoader({ workspace, home });
    const [found] = await loader.discoverPlugins();
    assert.equal(found?.status, 'untrusted-workspace');
    assert.equal(verdictCount(loader), 0);
  });
});
