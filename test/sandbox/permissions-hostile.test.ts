import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { detectSandbox } from '../../src/sandbox/index.js';
import { lockKey, sha256, writeLock } from '../../src/signing/lock.js';
import { buildFixture, tempDir, tempHome } from '../helpers/fixtures.js';

type Attack = { ok: boolean; errno: number };

const denied = (e: unknown): boolean => e instanceof PluginError && e.code === ErrorCode.PERMISSION_DENIED;

function loaderFor(plugins: string, workspace: string, options: PluginLoaderOptions): PluginLoader {
  return new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false, isolation: 'process', sandbox: 'required', ...options });
}

/** Loads the plugin and makes each call, collecting outputs or errors. */
async function attack(loader: PluginLoader, dir: string, calls: Record<string, string>[]): Promise<(Attack | PluginError)[]> {
  const plugin = await loader.loadPlugin(dir);
  const results: (Attack | PluginError)[] = [];
  try {
    for (const input of calls) {
      try {
        results.push((await plugin.execute({ input, workspace_root: loader.workspace, config: {} })).output as Attack);
      } catch (err) {
        results.push(err as PluginError);
      }
    }
  } finally {
    await plugin.close();
  }
  return results;
}

describe('permission requests are checked before any plugin code runs, in every mode', () => {
  let plugins: string;
  let workspace: string;

  before(async () => {
    const base = tempDir();
    plugins = path.join(base, 'plugins');
    workspace = path.join(base, 'ws');
    mkdirSync(workspace, { recursive: true });
    await buildFixture(plugins, { source: 'perm_attack', name: 'greedy', manifest: { name: 'greedy', description: 'd', version: '1', permissions: { network: true, fs_read: ['/'] } } });
  });

  for (const options of [{ isolation: 'process', sandbox: 'required' }, { isolation: 'process', sandbox: 'off' }, { isolation: 'none' }] as const) {
    it(`a plugin asking for network and "/" does not load without a grant (${JSON.stringify(options)})`, async () => {
      const loader = loaderFor(plugins, workspace, options);
      await assert.rejects(loader.loadPlugin(path.join(plugins, 'greedy')), (e: unknown) => {
        assert.ok(denied(e));
        const data = (e as PluginError).data as { missing: { network: boolean; fs_read: string[] }; grant_command: string };
        assert.equal(data.missing.network, true);
        assert.deepEqual(data.missing.fs_read, ['/']);
        assert.equal(data.grant_command, 'skillplug grant greedy --network --read /');
        return true;
      });
    });
  }

  it('loads once the user config grants exactly that', async () => {
    const home = tempDir('skillplug-home-');
    mkdirSync(path.join(home, '.vtcode'), { recursive: true });
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ plugins: { greedy: { grant: { network: true, fs_read: ['/'] } } } }));
    const loader = new PluginLoader({ pluginsDirs: [plugins], home, workspace, defaultDirs: false, isolation: 'process', sandbox: 'off' });
    const plugin = await loader.loadPlugin(path.join(plugins, 'greedy'));
    await plugin.close();
  });

  it('a workspace config that tries to grant is ignored, with a warning', async () => {
    mkdirSync(path.join(workspace, '.vtcode'), { recursive: true });
    writeFileSync(path.join(workspace, '.vtcode', 'skillplug.json'), JSON.stringify({ plugins: { greedy: { grant: { network: true, fs_read: ['/'] } } } }));
    const warnings: string[] = [];
    try {
      const loader = loaderFor(plugins, workspace, { sandbox: 'off', onWarning: (m) => warnings.push(m) });
      await assert.rejects(loader.loadPlugin(path.join(plugins, 'greedy')), denied);
      assert.ok(warnings.some((w) => w.includes('plugins.greedy.grant')));
    } finally {
      writeFileSync(path.join(workspace, '.vtcode', 'skillplug.json'), '{}');
    }
  });
});

describe('hostile plugins against permission paths', async () => {
  const support = await detectSandbox();
  const skip = support.available ? false : `bubblewrap unavailable: ${support.reason}`;

  it('a granted path that is a symlink to the workspace parent is refused, and nothing outside is written', { skip }, async () => {
    const base = tempDir();
    const plugins = path.join(base, 'plugins');
    const workspace = path.join(base, 'ws');
    mkdirSync(workspace, { recursive: true });
    const dir = await buildFixture(plugins, { source: 'perm_attack', name: 'builder', manifest: { name: 'builder', description: 'd', version: '1', permissions: { fs_write: ['${workspace}/.build'] } } });
    symlinkSync('..', path.join(workspace, '.build'));
    const loader = loaderFor(plugins, workspace, { grants: { builder: { fs_write: ['${workspace}/.build'] } } });
    await assert.rejects(loader.loadPlugin(dir), (e: unknown) => {
      assert.ok(denied(e));
      assert.deepEqual((e as PluginError).data?.refused, [{ path: path.join(workspace, '.build'), reason: 'symlink', at: path.join(workspace, '.build') }]);
      return true;
    });
    assert.equal(existsSync(path.join(base, 'escaped')), false);
  });

  it('a link planted after loading is not followed when the host restarts', { skip }, async () => {
    const base = tempDir();
    const plugins = path.join(base, 'plugins');
    const workspace = path.join(base, 'ws');
    const outside = path.join(base, 'outside');
    // .build/cache does not exist yet, so nothing is bound there and the plugin may create it.
    for (const d of [path.join(workspace, '.build'), outside]) mkdirSync(d, { recursive: true });
    const permissions = { fs_write: ['${workspace}/.build', '${workspace}/.build/cache'] };
    const dir = await buildFixture(plugins, { source: 'perm_attack', name: 'relinker', manifest: { name: 'relinker', description: 'd', version: '1', permissions } });
    const loader = loaderFor(plugins, workspace, { grants: { relinker: { fs_write: ['${workspace}/.build'] } } });
    const cache = path.join(workspace, '.build', 'cache');
    const [relinked, crashed, planted] = await attack(loader, dir, [
      { op: 'link', path: cache, to: outside },
      { op: 'crash' },
      { op: 'write', path: path.join(cache, 'pwned') },
    ]);
    assert.deepEqual(relinked, { ok: true, errno: 0 });
    assert.equal((crashed as PluginError).code, ErrorCode.CRASHED);
    assert.equal((planted as Attack).ok, false);
    assert.equal(existsSync(path.join(outside, 'pwned')), false);
  });

  it('a workspace write grant leaves .git, .vtcode, .agents, the lock, plugin dirs and ~/.vtcode read-only', { skip }, async () => {
    const base = tempDir();
    const workspace = path.join(base, 'home', 'ws');
    const home = path.join(base, 'home');
    const plugins = path.join(workspace, 'tools', 'plugins');
    for (const d of [path.join(workspace, '.git', 'hooks'), path.join(workspace, '.vtcode', 'plugins'), path.join(home, '.vtcode')]) mkdirSync(d, { recursive: true });
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), '{}');
    const dir = await buildFixture(plugins, { source: 'perm_attack', name: 'planter', manifest: { name: 'planter', description: 'd', version: '1', permissions: { fs_write: ['${workspace}', home] } } });
    const entry = (file: string): string => sha256(readFileSync(path.join(dir, file)));
    writeLock(workspace, [{ name: 'planter', version: '1', path: lockKey(dir, workspace), manifest_sha256: entry('plugin.json'), library_sha256: entry('libplanter.so') }]);
    const lock = path.join(workspace, 'skillplug.lock.json');
    const lockBefore = readFileSync(lock, 'utf8');
    const loader = new PluginLoader({ pluginsDirs: [plugins], home, workspace, defaultDirs: false, isolation: 'process', sandbox: 'required', grants: { planter: { fs_write: ['${workspace}', home] } } });
    const hook = path.join(workspace, '.git', 'hooks', 'post-checkout');
    const bait = path.join(workspace, 'bait.txt');
    const [baited, ...results] = await attack(loader, dir, [
      { op: 'write', path: bait },
      { op: 'write', path: hook },
      { op: 'rename', path: path.join(workspace, '.git'), to: path.join(workspace, 'moved-git') },
      { op: 'write', path: path.join(workspace, '.vtcode', 'plugins', 'x') },
      { op: 'mkdirs', path: path.join(workspace, '.agents') },
      { op: 'write', path: path.join(workspace, '.agents', 'x') },
      { op: 'append', path: lock },
      { op: 'write', path: lock },
      { op: 'unlink', path: lock },
      { op: 'rename', path: bait, to: lock },
      { op: 'write', path: path.join(dir, 'libplanter.so') },
      { op: 'write', path: path.join(home, '.vtcode', 'skillplug.json') },
      { op: 'write', path: path.join(workspace, 'normal.txt') },
      { op: 'write', path: path.join(home, 'also-normal.txt') },
    ]);
    const normal = results.slice(-2);
    const attacks = results.slice(0, -2);
    assert.deepEqual([baited, ...normal], [{ ok: true, errno: 0 }, { ok: true, errno: 0 }, { ok: true, errno: 0 }]);
    for (const [i, r] of attacks.entries()) assert.equal((r as Attack).ok, false, `attack ${i} succeeded`);
    assert.equal(existsSync(hook), false);
    assert.equal(existsSync(path.join(workspace, '.vtcode', 'plugins', 'x')), false);
    assert.equal(existsSync(path.join(workspace, '.agents', 'x')), false);
    assert.equal(readFileSync(lock, 'utf8'), lockBefore);
    assert.equal(readFileSync(path.join(home, '.vtcode', 'skillplug.json'), 'utf8'), '{}');
  });

  it('a write request inside .git is refused even when the workspace is granted', async () => {
    const base = tempDir();
    const plugins = path.join(base, 'plugins');
    const workspace = path.join(base, 'ws');
    mkdirSync(path.join(workspace, '.git'), { recursive: true });
    const dir = await buildFixture(plugins, { source: 'perm_attack', name: 'hooker', manifest: { name: 'hooker', description: 'd', version: '1', permissions: { fs_write: ['${workspace}/.git/hooks'] } } });
    const loader = loaderFor(plugins, workspace, { sandbox: 'off', grants: { hooker: { fs_write: ['${workspace}'] } } });
    await assert.rejects(loader.loadPlugin(dir), (e: unknown) => denied(e) && ((e as PluginError).data?.refused as { reason: string }[] | undefined)?.[0]?.reason === 'protected');
  });
});

describe('Unix sockets need a grant', async () => {
  const support = await detectSandbox();
  const skip = support.available ? false : `bubblewrap unavailable: ${support.reason}`;

  it('a socket listening in the workspace is reachable only when unix_sockets was asked for and granted', { skip }, async () => {
    const base = tempDir();
    const plugins = path.join(base, 'plugins');
    const workspace = path.join(base, 'ws');
    mkdirSync(workspace, { recursive: true });
    const socketPath = path.join(workspace, 'agent.sock');
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.end();
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const plain = await buildFixture(plugins, { source: 'perm_attack', name: 'plain-socket' });
      const asking = await buildFixture(plugins, { source: 'perm_attack', name: 'socket-user', manifest: { name: 'socket-user', description: 'd', version: '1', permissions: { unix_sockets: true } } });
      const [blocked] = await attack(loaderFor(plugins, workspace, {}), plain, [{ op: 'unix', path: socketPath }]);
      assert.equal((blocked as Attack).ok, false);
      assert.equal(connections, 0);
      await assert.rejects(loaderFor(plugins, workspace, {}).loadPlugin(asking), denied);
      const [allowed] = await attack(loaderFor(plugins, workspace, { grants: { 'socket-user': { unix_sockets: true } } }), asking, [{ op: 'unix', path: socketPath }]);
      assert.deepEqual(allowed, { ok: true, errno: 0 });
      assert.equal(connections, 1);
    } finally {
      server.close();
    }
  });
});
