import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { bwrapArgs, detectSandbox, effectivePermissions, expandPermissionPath } from '../../src/sandbox/index.js';
import { buildFixture, tempDir, tempHome } from '../helpers/fixtures.js';
import { laneUp, warmSharedLane } from '../helpers/lane.js';

describe('sandbox permissions', () => {
  it('expands ${workspace} and resolves relative paths against the workspace', () => {
    assert.equal(expandPermissionPath('${workspace}/out', '/ws'), '/ws/out');
    assert.equal(expandPermissionPath('cache', '/ws'), '/ws/cache');
  });

  it('defaults to no network, reading the workspace, writing nothing', () => {
    assert.deepEqual(effectivePermissions(undefined, undefined, '/ws'), { network: false, read: ['/ws'], write: [] });
  });

  it('grants writes only inside what the user allows (the workspace by default)', () => {
    const asked = { network: true, fs_write: ['${workspace}/out', '/etc', '/home/u/.ssh'] };
    assert.deepEqual(effectivePermissions(asked, undefined, '/ws'), { network: true, read: ['/ws'], write: ['/ws/out'] });
    assert.deepEqual(effectivePermissions(asked, { network: false, fs_write: [] }, '/ws'), { network: false, read: ['/ws'], write: [] });
    assert.deepEqual(effectivePermissions({ fs_read: ['/data', '/secret'] }, { fs_read: ['/data'] }, '/ws').read, ['/data']);
  });

  it('builds bwrap arguments with no privileges, namespaces, a private /tmp and no environment values', () => {
    const args = bwrapArgs({
      bwrap: '/usr/bin/bwrap',
      hostBinary: '/cache/host/skillplug-host',
      pluginDir: '/plugins/p',
      libraryPath: '/plugins/p/libp.so',
      workspace: '/ws',
      permissions: { network: false, read: ['/ws'], write: ['/ws/out'] },
      env: { PATH: '/usr/bin/secret-path' },
      maskDirs: [],
      tmpSizeMb: 64,
    });
    const joined = args.join(' ');
    for (const flag of ['--unshare-user --disable-userns --cap-drop ALL', '--unshare-pid', '--unshare-net', '--die-with-parent', '--new-session', '--size 67108864 --tmpfs /tmp', '--bind-try /ws/out /ws/out', '--ro-bind-try /ws /ws', '--chdir /ws']) {
      assert.ok(joined.includes(flag), flag);
    }
    assert.ok(!joined.includes('secret-path') && !joined.includes('--setenv'), 'environment values stay off the command line');
    assert.ok(!bwrapArgs({ ...{ bwrap: 'b', hostBinary: '/h/x', pluginDir: '/p', libraryPath: '/p/l', workspace: null, env: {} }, permissions: { network: true, read: [], write: [] } }).includes('--unshare-net'));
  });

  it('mounts shallow paths first, so a grant of / cannot uncover /tmp and socket dirs are masked under it', () => {
    const args = bwrapArgs({
      bwrap: 'b',
      hostBinary: '/h/x',
      pluginDir: '/p',
      libraryPath: '/p/l',
      workspace: '/tmp/ws',
      permissions: { network: false, read: ['/', '/run/user/1/inside'], write: [] },
      env: {},
      maskDirs: ['/run', '/home/u/.runtime'],
    });
    const at = (...words: string[]): number => args.findIndex((_, i) => words.every((w, j) => args[i + j] === w));
    assert.ok(at('--ro-bind-try', '/', '/') < at('--tmpfs', '/tmp'), '/ before the private /tmp');
    assert.ok(at('--tmpfs', '/tmp') < at('--ro-bind-try', '/tmp/ws', '/tmp/ws'), 'the readable workspace on top of /tmp');
    assert.ok(at('--tmpfs', '/run') > at('--ro-bind-try', '/', '/') && at('--tmpfs', '/home/u/.runtime') > 0, 'socket dirs masked');
    assert.equal(at('--ro-bind-try', '/run/user/1/inside', '/run/user/1/inside'), -1, 'nothing inside a socket dir is bound');
    const narrow = bwrapArgs({ bwrap: 'b', hostBinary: '/h/x', pluginDir: '/p', libraryPath: '/p/l', workspace: null, env: {}, permissions: { network: false, read: [], write: [] }, maskDirs: ['/run'] });
    assert.ok(!narrow.includes('/run'), 'a mask only where a grant covers the dir');
  });
});

describe('sandboxed host', async () => {
  const support = await detectSandbox();
  const skip = support.available ? false : `bubblewrap unavailable: ${support.reason}`;
  let plugins: string;
  let workspace: string;
  let outside: string;
  let server: net.Server;
  let port: number;
  let connections = 0;

  before(async () => {
    const base = tempDir();
    plugins = path.join(base, 'plugins');
    workspace = path.join(base, 'ws');
    outside = path.join(base, 'outside');
    for (const d of [plugins, workspace, outside, path.join(workspace, 'out')]) mkdirSync(d, { recursive: true });
    await buildFixture(plugins, { source: 'sandbox_probe', name: 'probe' });
    await buildFixture(plugins, {
      source: 'sandbox_probe',
      name: 'probe-granted',
      manifest: { name: 'probe-granted', description: 'd', version: '1', permissions: { network: true, fs_write: ['${workspace}/out'] } },
    });
    server = net.createServer((socket) => {
      connections++;
      socket.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
    process.env.SKILLPLUG_SECRET = 'do-not-leak';
  });

  after(() => {
    server?.close();
    delete process.env.SKILLPLUG_SECRET;
  });

  async function probe(name: string, options: PluginLoaderOptions, input: Record<string, unknown>): Promise<{ wrote: boolean; connected: boolean; env_visible: boolean }> {
    const loader = new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false, isolation: 'process', ...options });
    const plugin = await loader.loadPlugin(path.join(plugins, name));
    try {
      return (await plugin.execute({ input: input as never, workspace_root: workspace, config: {} })).output as never;
    } finally {
      await plugin.close();
    }
  }

  it('unsandboxed, the probe can write outside the workspace and reach a loopback port, but not see the caller env', { skip }, async () => {
    const target = path.join(outside, 'unsandboxed.txt');
    const before = connections;
    const out = await probe('probe', { sandbox: 'off' }, { write: target, port, env: 'SKILLPLUG_SECRET' });
    assert.deepEqual(out, { wrote: true, connected: true, env_visible: false });
    assert.equal(readFileSync(target, 'utf8'), 'escaped\n');
    assert.equal(connections, before + 1);
  });

  it('sandboxed, the same writes and connection fail and no file appears', { skip }, async () => {
    const target = path.join(outside, 'sandboxed.txt');
    const inPluginDir = path.join(plugins, 'probe', 'planted.txt');
    const before = connections;
    const out = await probe('probe', { sandbox: 'required' }, { write: target, port });
    assert.deepEqual(out, { wrote: false, connected: false, env_visible: false });
    assert.equal(existsSync(target), false);
    const again = await probe('probe', { sandbox: 'required' }, { write: inPluginDir });
    assert.equal(again.wrote, false);
    assert.equal(existsSync(inPluginDir), false);
    const intoWorkspace = await probe('probe', { sandbox: 'required' }, { write: path.join(workspace, 'x.txt') });
    assert.equal(intoWorkspace.wrote, false, 'the workspace is read-only by default');
    assert.equal(connections, before);
  });

  it('grants what the plugin asks for and the user allows', { skip }, async () => {
    const target = path.join(workspace, 'out', 'granted.txt');
    const out = await probe('probe-granted', { sandbox: 'required' }, { write: target, port });
    assert.deepEqual(out, { wrote: true, connected: true, env_visible: false });
    assert.equal(existsSync(target), true);
    const capped = await probe('probe-granted', { sandbox: 'required', grant: { network: false, fs_write: [] } }, { write: path.join(workspace, 'out', 'capped.txt'), port });
    assert.deepEqual(capped, { wrote: false, connected: false, env_visible: false });
  });

  it('sandboxed, calls through the shared memory lane are just as confined', { skip }, async () => {
    process.env.SKILLPLUG_SHARED_AFTER = '0';
    const loader = new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false, isolation: 'process', sandbox: 'required' });
    const plugin = await loader.loadPlugin(path.join(plugins, 'probe'));
    try {
      const quiet = { input: {} as never, workspace_root: workspace, config: {} };
      await warmSharedLane(plugin, quiet);
      const target = path.join(outside, 'through-the-lane.txt');
      const out = (await plugin.execute({ input: { write: target, port } as never, workspace_root: workspace, config: {} })).output;
      assert.deepEqual(out, { wrote: false, connected: false, env_visible: false });
      assert.equal(existsSync(target), false);
      assert.equal(laneUp(plugin), true);
    } finally {
      delete process.env.SKILLPLUG_SHARED_AFTER;
      await plugin.close();
    }
  });

  it('passes explicit env to the host', { skip }, async () => {
    const out = await probe('probe', { sandbox: 'required', env: { SKILLPLUG_SECRET: 'given' } }, { env: 'SKILLPLUG_SECRET' });
    assert.equal(out.env_visible, true);
  });

  it('refuses to run unsandboxed under sandbox "required" when no sandbox exists; "auto" warns once', async () => {
    const saved = process.env.SKILLPLUG_BWRAP;
    process.env.SKILLPLUG_BWRAP = '/nonexistent/bwrap';
    try {
      await assert.rejects(probe('probe', { sandbox: 'required' }, {}), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.SANDBOX_UNAVAILABLE);
      const warnings: string[] = [];
      const out = await probe('probe', { sandbox: 'auto', onWarning: (m) => warnings.push(m) }, {});
      assert.equal(out.wrote, false);
      await probe('probe', { sandbox: 'auto', onWarning: (m) => warnings.push(m) }, {});
      assert.equal(warnings.filter((w) => w.includes('without a sandbox')).length, 1);
    } finally {
      if (saved === undefined) delete process.env.SKILLPLUG_BWRAP;
      else process.env.SKILLPLUG_BWRAP = saved;
    }
  });
});
