// Permission reports made for many plugins at once (list, serve) judge each plugin exactly as a report made alone does.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PluginLoader } from '../../src/index.js';
import { tempDir, tempHome } from '../helpers/fixtures.js';

// Discovery and permission reports read files only: an empty library file is enough.
function plugin(parent: string, name: string, permissions?: Record<string, unknown>): void {
  const dir = path.join(parent, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ name, description: 'd', version: '1', ...(permissions ? { permissions } : {}) }));
  writeFileSync(path.join(dir, `lib${name}.so`), '');
}

describe('permission reports in one batch', () => {
  it('equal the reports made one plugin at a time, hostile requests included', async () => {
    const base = tempDir();
    const plugins = path.join(base, 'plugins');
    const workspace = path.join(base, 'ws');
    mkdirSync(path.join(workspace, '.git'), { recursive: true });
    symlinkSync('/etc', path.join(workspace, 'etc-link'));
    symlinkSync(path.join(base, 'elsewhere'), path.join(workspace, '.agents'));
    plugin(plugins, 'plain');
    plugin(plugins, 'through-link', { fs_read: ['${workspace}/etc-link/passwd'] });
    plugin(plugins, 'hooks', { fs_write: ['${workspace}/.git/hooks'] });
    plugin(plugins, 'whole-ws', { fs_write: ['${workspace}'] });
    plugin(plugins, 'greedy', { network: true, unix_sockets: true, fs_read: ['/', '${workspace}/src'] });
    plugin(plugins, 'own-dir', { fs_read: [path.join(plugins, 'own-dir', 'data')] });
    const loader = new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false, grants: { hooks: { fs_write: ['${workspace}'] }, 'whole-ws': { fs_write: ['${workspace}'] } } });
    const found = await loader.discoverPlugins();
    assert.equal(found.length, 6);
    const batch = loader.permissionReports(found);
    assert.deepEqual(
      batch,
      found.map((p) => (p.manifest ? loader.permissionReport(p.path, p.manifest) : undefined)),
    );
    const reasons = Object.fromEntries(found.map((p, i) => [p.name, batch[i]?.refused.map((r) => r.reason) ?? []]));
    assert.deepEqual(reasons, { plain: [], 'through-link': ['symlink'], hooks: ['protected'], 'whole-ws': ['symlink'], greedy: [], 'own-dir': [] });
  });

  it('give plugins that ask for nothing equal reports that share nothing unless asked to share, an own grant still counting', async () => {
    const base = tempDir();
    const plugins = path.join(base, 'plugins');
    const workspace = path.join(base, 'ws');
    mkdirSync(path.join(base, 'data'), { recursive: true });
    mkdirSync(workspace, { recursive: true });
    for (const name of ['a', 'b', 'c', 'granted']) plugin(plugins, name);
    const loader = new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false, grant: { fs_read: [path.join(base, 'data')] }, grants: { granted: { network: true } } });
    const found = await loader.discoverPlugins();
    const batch = loader.permissionReports(found);
    assert.deepEqual(
      batch,
      found.map((p) => (p.manifest ? loader.permissionReport(p.path, p.manifest) : undefined)),
    );
    batch[0]?.requested.fs_read.push('/changed');
    assert.deepEqual(loader.permissionReports(found)[1], batch[1]);
    assert.notDeepEqual(batch[0], batch[1], 'a report handed out is its caller\'s alone');
    // Shared, for callers that only read them: one object for those that ask nothing, the same reports.
    const shared = loader.permissionReports(found, { shared: true });
    assert.deepEqual(shared, loader.permissionReports(found));
    const byName = (name: string) => shared[found.findIndex((p) => p.name === name)];
    assert.equal(byName('a'), byName('b'));
    assert.equal(byName('b'), byName('c'));
    assert.notEqual(byName('granted'), byName('a'), 'an own grant gets its own report');
  });

  it('see a link planted after the previous batch (nothing is remembered between batches)', async () => {
    const base = tempDir();
    const plugins = path.join(base, 'plugins');
    const workspace = path.join(base, 'ws');
    mkdirSync(path.join(workspace, 'data'), { recursive: true });
    plugin(plugins, 'reader', { fs_read: ['${workspace}/data'] });
    const loader = new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false });
    const found = await loader.discoverPlugins();
    assert.deepEqual(loader.permissionReports(found)[0]?.refused, []);
    renameSync(path.join(workspace, 'data'), path.join(workspace, 'real-data'));
    symlinkSync('/', path.join(workspace, 'data'));
    assert.deepEqual(loader.permissionReports(found)[0]?.refused.map((r) => r.reason), ['symlink']);
  });
});
