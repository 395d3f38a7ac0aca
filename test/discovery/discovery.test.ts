import assert from 'node:assert/strict';
import { existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginLoader, type DiscoveredPlugin } from '../../src/index.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';

describe('discovery', () => {
  let trusted: string;
  let marker: string;
  let found: DiscoveredPlugin[];

  before(async () => {
    const base = tempDir();
    trusted = path.join(base, 'plugins');
    mkdirSync(trusted);
    marker = path.join(base, 'marker');
    process.env.SKILLPLUG_TEST_MARKER = marker;
    await buildFixture(trusted, { source: 'echo', name: 'good' });
    await buildFixture(trusted, { source: 'marker', name: 'marker' });
    await buildFixture(trusted, { source: 'echo', name: 'nomanifest', manifest: null });
    await buildFixture(trusted, { source: 'echo', name: 'badjson', manifest: '{oops' });
    await buildFixture(trusted, { source: 'echo', name: 'wronglib', libraryFile: 'libother.so' });
    const outside = path.join(base, 'outside');
    mkdirSync(outside);
    await buildFixture(outside, { source: 'echo', name: 'escapee' });
    symlinkSync(path.join(outside, 'escapee'), path.join(trusted, 'escape-link'));
    const linked = await buildFixture(trusted, { source: 'echo', name: 'linkedlib', libraryFile: 'build.so' });
    symlinkSync('build.so', path.join(linked, 'liblinkedlib.so'));
    symlinkSync('good', path.join(trusted, 'alias'));
    mkdirSync(path.join(trusted, '.hidden'));
    writeFileSync(path.join(trusted, 'README.md'), 'not a plugin');
    found = await new PluginLoader({ pluginsDirs: [trusted], defaultDirs: false }).discoverPlugins();
  });

  const byDir = (name: string) => found.find((p) => path.basename(p.path) === name || p.path.endsWith(`${path.sep}${name}`));

  it('finds every plugin dir, good and broken, skipping files and hidden dirs', () => {
    assert.equal(found.length, 8);
  });

  it('judges good plugins ok with their facts', () => {
    const good = byDir('good');
    assert.equal(good?.status, 'ok');
    assert.equal(good?.name, 'good');
    assert.equal(good?.version, '1.0.0');
    assert.deepEqual(good?.errors, []);
  });

  it('reports broken plugins with their reasons without failing the scan', () => {
    assert.equal(byDir('nomanifest')?.errors[0]?.code, ErrorCode.INVALID_MANIFEST);
    assert.equal(byDir('badjson')?.errors[0]?.code, ErrorCode.INVALID_MANIFEST);
    assert.equal(byDir('wronglib')?.errors[0]?.code, ErrorCode.INVALID_STRUCTURE);
    for (const name of ['nomanifest', 'badjson', 'wronglib']) assert.equal(byDir(name)?.status, 'error');
  });

  it('reports canonical paths for symlinked dirs and libraries that stay inside the trusted dir', () => {
    const canonical = realpathSync(trusted);
    const alias = found.find((p) => p.path === path.join(canonical, 'good') && p !== byDir('good'));
    assert.ok(alias, 'the alias resolves to the good plugin');
    assert.equal(alias?.status, 'ok');
    const linked = byDir('linkedlib');
    assert.equal(linked?.status, 'ok');
    assert.equal(linked?.libraryPath, path.join(canonical, 'linkedlib', 'build.so'));
    assert.equal(byDir('good')?.libraryPath, path.join(canonical, 'good', 'libgood.so'));
  });

  it('flags a plugin dir whose canonical path leaves the trusted dir', () => {
    const escaping = found.find((p) => p.errors.some((e) => e.code === ErrorCode.UNTRUSTED_PATH));
    assert.ok(escaping, 'the escaping symlink is listed');
    assert.equal(escaping?.status, 'error');
  });

  it('runs no plugin code', () => {
    assert.equal(byDir('marker')?.status, 'ok');
    assert.equal(existsSync(marker), false, 'the constructor of the marker plugin ran');
  });

  it('loading does run plugin code (the marker proves the probe works)', async () => {
    const loader = new PluginLoader({ pluginsDirs: [trusted], defaultDirs: false, isolation: 'none' });
    const plugin = await loader.loadPlugin(path.join(trusted, 'marker'));
    await plugin.close();
    assert.equal(existsSync(marker), true);
  });

  it('scans a missing trusted dir as empty', async () => {
    const none = await new PluginLoader({ pluginsDirs: [path.join(trusted, 'nope')], defaultDirs: false }).discoverPlugins();
    assert.deepEqual(none, []);
  });
});
