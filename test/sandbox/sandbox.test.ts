import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { bwrapArgs, detectSandbox, expandPermissionPath } from '../../src/sandbox/index.js';
import { assessPermissions, effectivePermissions, fullyGranted, permissionDenied } from '../../src/sandbox/permissions.js';
import { buildFixture, tempDir, tempHome } from '../helpers/fixtures.js';
import { laneUp, warmSharedLane } from '../helpers/lane.js';
import { hostTuning } from '../../src/host/tuning.js';

const DEFAULT_SHARED_AFTER = hostTuning.sharedAfterLoneCalls;

describe('sandbox permissions', () => {
  const none = { network: false, unix_sockets: false, fs_read: [], fs_write: [] };
  const context = { workspace: '/ws', pluginDir: '/plugins/p', protectedPaths: ['/ws/.git'] };

  it('expands ${workspace} and resolves relative paths against the workspace', () => {
    assert.equal(expandPermissionPath('${workspace}/out', '/ws'), '/ws/out');
    assert.equal(expandPermissionPath('cache', '/ws'), '/ws/cache');
  });

  it('by default a plugin asks for and gets reading the workspace, nothing else', () => {
    const report = assessPermissions(undefined, undefined, context);
    assert.deepEqual(report.missing, none);
    assert.deepEqual(report.granted, { ...none, fs_read: ['/ws'] });
    assert.deepEqual(effectivePermissions(report, context), { network: false, unix_sockets: false, read: ['/ws'], write: [], readOnlyInside: [], emptyInside: [] });
  });

  it('whatever a plugin asks beyond reading the workspace is missing until the user grants exactly that', () => {
    const asked = { network: true, unix_sockets: true, fs_read: ['/', '/data/set'], fs_write: ['${workspace}/out'] };
    const ungranted = assessPermissions(asked, undefined, context);
    assert.deepEqual(ungranted.missing, { network: true, unix_sockets: true, fs_read: ['/', '/data/set'], fs_write: ['/ws/out'] });
    assert.equal(fullyGranted(ungranted), false);
    const partly = assessPermissions(asked, { network: true, fs_read: ['/data'], fs_write: ['${workspace}'] }, context);
    assert.deepEqual(partly.missing, { ...none, unix_sockets: true, fs_read: ['/'] });
    const all = assessPermissions(asked, { network: true, unix_sockets: true, fs_read: ['/'], fs_write: ['/ws/out'] }, context);
    assert.equal(fullyGranted(all), true);
  });

  it('refuses writes into protected paths even when the user granted them', () => {
    const report = assessPermissions({ fs_write: ['${workspace}/.git/hooks'] }, { fs_write: ['/ws'] }, context);
    assert.deepEqual(report.refused, [{ path: '/ws/.git/hooks', reason: 'protected', at: '/ws/.git' }]);
    assert.equal(fullyGranted(report), false);
  });

  it('names the exact grant command in E_PERMISSION_DENIED', () => {
    const err = permissionDenied('p', '/plugins/p', assessPermissions({ network: true, fs_write: ['/w s'] }, undefined, context));
    assert.equal(err.code, ErrorCode.PERMISSION_DENIED);
    assert.equal(err.data?.grant_command, "skillplug grant p --network --write '/w s'");
  });

  it('builds bwrap arguments with no privileges, namespaces, a private /tmp, no environment values and read-only protected paths on top', () => {
    const args = bwrapArgs({
      bwrap: '/usr/bin/bwrap',
      hostBinary: '/cache/host/skillplug-host',
      pluginDir: '/plugins/p',
      libraryPath: '/plugins/p/libp.so',
      workspace: '/ws',
      permissions: { network: false, unix_sockets: false, read: ['/ws'], write: ['/ws/out'], readOnlyInside: ['/ws/out/.git'], emptyInside: ['/ws/out/.vtcode'] },
      env: { PATH: '/usr/bin/secret-path' },
      maskDirs: [],
      tmpSizeMb: 64,
    });
    const joined = args.join(' ');
    for (const flag of ['--unshare-user --disable-userns --cap-drop ALL', '--unshare-pid', '--unshare-net', '--die-with-parent', '--new-session', '--size 67108864 --tmpfs /tmp', '--bind-try /ws/out /ws/out', '--ro-bind-try /ws /ws', '--chdir /ws']) {
      assert.ok(joined.includes(flag), flag);
    }
    assert.ok(!joined.includes('secret-path') && !joined.includes('--setenv'), 'environment values stay off the command line');
    assert.ok(joined.indexOf('--ro-bind /ws/out/.git /ws/out/.git') > joined.indexOf('--bind-try /ws/out /ws/out'));
    assert.ok(joined.includes('--tmpfs /ws/out/.vtcode --remount-ro /ws/out/.vtcode'));
    const open = { network: true, unix_sockets: false, read: [], write: [], readOnlyInside: [], emptyInside: [] };
    assert.ok(!bwrapArgs({ ...{ bwrap: 'b', hostBinary: '/h/x', pluginDir: '/p', libraryPath: '/p/l', workspace: null, env: {} }, permissions: open }).includes('--unshare-net'));
  });

  it('mounts shallow paths first, so a grant of / cannot uncover /tmp and socket dirs are masked under it', () => {
    const args = bwrapArgs({
      bwrap: 'b',
      hostBinary: '/h/x',
      pluginDir: '/p',
      libraryPath: '/p/l',
      workspace: '/tmp/ws',
      permissions: { network: false, unix_sockets: false, read: ['/', '/run/user/1/inside'], write: [], readOnlyInside: [], emptyInside: [] },
      env: {},
      maskDirs: ['/run', '/home/u/.runtime'],
    });
    const at = (...words: string[]): number => args.findIndex((_, i) => words.every((w, j) => args[i + j] === w));
    assert.ok(at('--ro-bind-try', '/', '/') < at('--tmpfs', '/tmp'), '/ before the private /tmp');
    assert.ok(at('--tmpfs', '/tmp') < at('--ro-bind-try', '/tmp/ws', '/tmp/ws'), 'the readable workspace on top of /tmp');
    assert.ok(at('--tmpfs', '/run') > at('--ro-bind-try', '/', '/') && at('--tmpfs', '/home/u/.runtime') > 0, 'socket dirs masked');
    assert.equal(at('--ro-bind-try', '/run/user/1/inside', '/run/user/1/inside'), -1, 'nothing inside a socket dir is bound');
    const narrow = bwrapArgs({ bwrap: 'b', hostBinary: '/h/x', pluginDir: '/p', libraryPath: '/p/l', workspace: null, env: {}, permissions: { network: false, unix_sockets: false, read: [], write: [], readOnlyInside: [], emptyInside: [] }, maskDirs: ['/run'] });
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

  it('grants what the plugin asks for once the user grants it', { skip }, async () => {
    const target = path.join(workspace, 'out', 'granted.txt');
    const grant = { network: true, fs_write: ['${workspace}/out'] };
    const out = await probe('probe-granted', { sandbox: 'required', grants: { 'probe-granted': grant } }, { write: target, port });
    assert.deepEqual(out, { wrote: true, connected: true, env_visible: false });
    assert.equal(existsSync(target), true);
  });

  it('never runs a plugin with less than it asked for: an ungranted request fails to load', { skip }, async () => {
    const target = path.join(workspace, 'out', 'ungranted.txt');
    for (const grant of [undefined, { network: true }, { fs_write: ['${workspace}/out'] }]) {
      await assert.rejects(
        probe('probe-granted', { sandbox: 'required', ...(grant ? { grant } : {}) }, { write: target, port }),
        (e: unknown) => e instanceof PluginError && e.code === ErrorCode.PERMISSION_DENIED,
      );
    }
    assert.equal(existsSync(target), false);
  });

  it('sandboxed, calls through the shared memory lane are just as confined', { skip }, async () => {
    hostTuning.sharedAfterLoneCalls = 0;
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
      hostTuning.sharedAfterLoneCalls = DEFAULT_SHARED_AFTER;
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
