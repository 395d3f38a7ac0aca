import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { PluginLoader, defaultTrustedDirs } from '../../src/index.js';
import { buildFixture, runScript, tempDir } from '../helpers/fixtures.js';
import { userPluginDirs } from '../../src/discovery/user-dirs.js';

describe('user plugin dirs (as VT Code has them)', () => {
  it('derives every user dir from home when no variable is set, in precedence order', () => {
    assert.deepEqual(
      userPluginDirs('/h', {}, 'linux').map((d) => d.path),
      ['/h/.vtcode/plugins', '/h/.local/share/vtcode/plugins', '/h/.codex/plugins', '/h/.agents/plugins'],
    );
  });

  it('lets VTCODE_HOME, VTCODE_DATA and CODEX_HOME move their dirs, and says which variable did', () => {
    const dirs = userPluginDirs('/h', { VTCODE_HOME: '/vh', VTCODE_DATA: '/vd', CODEX_HOME: '/ch', XDG_DATA_HOME: '/xdg' }, 'linux');
    assert.deepEqual(dirs, [
      { path: '/vh/plugins', from: 'VTCODE_HOME' },
      { path: '/vd/plugins', from: 'VTCODE_DATA' },
      { path: '/ch/plugins', from: 'CODEX_HOME' },
      { path: '/h/.agents/plugins' },
    ]);
  });

  it('falls back to $XDG_DATA_HOME/vtcode for the data dir on Linux, as VT Code does', () => {
    assert.equal(userPluginDirs('/h', { XDG_DATA_HOME: '/xdg' }, 'linux')[1]?.path, '/xdg/vtcode/plugins');
    assert.equal(userPluginDirs('/h', { XDG_DATA_HOME: '/xdg' }, 'darwin')[1]?.path, '/h/Library/Application Support/com.vinhnx.vtcode/plugins');
  });

  it('ignores a relative or blank variable, reports the relative one, and uses the default', () => {
    const ignored: string[] = [];
    const dirs = userPluginDirs('/h', { VTCODE_HOME: 'rel/home', CODEX_HOME: '   ' }, 'linux', (v) => ignored.push(v));
    assert.equal(dirs[0]?.path, '/h/.vtcode/plugins');
    assert.equal(dirs[2]?.path, '/h/.codex/plugins');
    assert.deepEqual(ignored, ['VTCODE_HOME']);
  });

  it('a relative variable never makes a dir of the current project a trusted user dir', async () => {
    const project = tempDir();
    await buildFixture(path.join(project, 'plugins'), { source: 'echo', name: 'sneaky' });
    const relative = path.relative(process.cwd(), project);
    const loader = new PluginLoader({ workspace: tempDir(), home: tempDir(), readConfig: false, pluginDirsEnv: { VTCODE_HOME: relative }, onWarning: () => undefined });
    assert.ok(!(await loader.discoverPlugins()).some((p) => p.name === 'sneaky'));
  });

  it('puts the user dirs, then the workspace dirs, in defaultTrustedDirs', () => {
    const dirs = defaultTrustedDirs('/ws', '/h', { platform: 'linux' });
    assert.deepEqual(dirs.map((d) => d.kind), ['user', 'user', 'user', 'user', 'workspace', 'workspace']);
    assert.deepEqual(dirs.slice(4).map((d) => d.path), ['/ws/.vtcode/plugins', '/ws/.agents/plugins']);
  });

  it('the loader takes the variables as an option and warns about an ignored one', () => {
    const warnings: string[] = [];
    const loader = new PluginLoader({ workspace: '/ws', home: '/h', pluginDirsEnv: { VTCODE_DATA: '/data', CODEX_HOME: 'relative' }, readConfig: false, onWarning: (m) => warnings.push(m) });
    assert.ok(loader.trustedDirs().includes('/data/plugins'));
    assert.ok(loader.trustedDirs().includes('/h/.codex/plugins'));
    assert.equal(warnings.length, 1);
  });

  it('an explicit home alone decides the user dirs; without one the process environment does', async () => {
    const index = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'index.js');
    const script = `import { PluginLoader } from ${JSON.stringify(index)};
      const withHome = new PluginLoader({ workspace: '/ws', home: '/h', readConfig: false }).trustedDirs();
      const fromEnv = new PluginLoader({ workspace: '/ws', readConfig: false }).trustedDirs();
      console.log(JSON.stringify({ withHome, fromEnv }));`;
    const env = { ...process.env, HOME: tempDir(), VTCODE_HOME: '/elsewhere/vt', CODEX_HOME: '/elsewhere/codex' };
    const { code, stdout } = await runScript(script, 30_000, env);
    assert.equal(code, 0);
    const { withHome, fromEnv } = JSON.parse(stdout) as { withHome: string[]; fromEnv: string[] };
    assert.ok(withHome.includes('/h/.vtcode/plugins') && withHome.includes('/h/.codex/plugins'));
    assert.ok(!withHome.some((d) => d.startsWith('/elsewhere')));
    assert.ok(fromEnv.includes('/elsewhere/vt/plugins') && fromEnv.includes('/elsewhere/codex/plugins'));
  });

  it('resolves a name clash among user dirs in the documented order: VTCODE_HOME, VTCODE_DATA, CODEX_HOME, ~/.agents', async () => {
    const home = tempDir();
    const dirs = userPluginDirs(home, {}, process.platform).map((d) => d.path);
    // The same plugin name in every user dir; each copy says where it lives.
    for (const dir of dirs) {
      mkdirSync(dir, { recursive: true });
      await buildFixture(dir, { source: 'echo', name: 'twin', manifest: { name: 'twin', description: dir, version: '1.0.0' } });
    }
    const loader = new PluginLoader({ workspace: tempDir(), home, readConfig: false, pluginDirsEnv: {} });
    for (const [i, dir] of dirs.entries()) {
      const found = await loader.findPlugin('twin');
      assert.equal(found.description, dir, `copy ${i} should win`);
      await import('node:fs/promises').then((fs) => fs.rm(path.join(dir, 'twin'), { recursive: true }));
    }
  });
});
