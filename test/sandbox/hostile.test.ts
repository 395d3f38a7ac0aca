import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { detectSandbox } from '../../src/sandbox/index.js';
import { buildFixture, tempDir, tempHome } from '../helpers/fixtures.js';

type Output = Record<string, unknown>;

// Every process below a pid (bwrap, its init, the host, the plugin's children), bounded by the pid count.
function descendants(pid: number): number[] {
  const found = [pid];
  for (let i = 0; i < found.length && i < 10_000; i++) {
    const taskDir = `/proc/${found[i]}/task`;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(taskDir);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        for (const child of readFileSync(path.join(taskDir, task, 'children'), 'utf8').split(' ').filter(Boolean)) found.push(Number(child));
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return found;
}

function listen(socketPath: string): Promise<net.Server> {
  const server = net.createServer((s) => s.end());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

describe('a hostile plugin inside the sandbox', async () => {
  const support = await detectSandbox();
  const skip = support.available ? false : `bubblewrap unavailable: ${support.reason}`;
  let plugins: string;
  let workspace: string;
  let runtimeDir: string;
  const servers: net.Server[] = [];
  const savedRuntimeDir = process.env.XDG_RUNTIME_DIR;

  before(async () => {
    const base = tempDir();
    plugins = path.join(base, 'plugins');
    workspace = path.join(base, 'ws');
    for (const d of [plugins, workspace]) mkdirSync(d, { recursive: true });
    // Outside /tmp, which the sandbox replaces anyway: only the socket-dir mask can hide it.
    runtimeDir = mkdtempSync('/var/tmp/skillplug-runtime-');
    await buildFixture(plugins, { source: 'sandbox_hostile', name: 'hostile' });
    await buildFixture(plugins, {
      source: 'sandbox_hostile',
      name: 'hostile-reader',
      manifest: { name: 'hostile-reader', description: 'd', version: '1', permissions: { fs_read: ['/'] } },
    });
    await buildFixture(plugins, { source: 'sandbox_probe', name: 'probe' });
  });

  after(() => {
    for (const s of servers) s.close();
    rmSync(runtimeDir, { recursive: true, force: true });
    if (savedRuntimeDir === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = savedRuntimeDir;
  });

  async function attack(name: string, options: PluginLoaderOptions, input: Output): Promise<Output> {
    const loader = new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false, isolation: 'process', sandbox: 'required', ...options });
    const plugin = await loader.loadPlugin(path.join(plugins, name));
    try {
      return (await plugin.execute({ input: input as never, workspace_root: workspace, config: {} })).output as Output;
    } finally {
      await plugin.close();
    }
  }

  it('has no capabilities, cannot remount its read-only workspace or write to it, and cannot make namespaces', { skip }, async () => {
    const out = await attack('hostile', {}, { do: 'caps', path: workspace });
    assert.equal(out.cap_eff, '0000000000000000');
    assert.notEqual(out.remount, 0, 'remounting the read-only workspace bind read-write must fail');
    assert.equal(out.wrote, false);
    assert.equal(existsSync(path.join(workspace, 'planted-by-plugin.txt')), false);
    assert.notEqual(out.unshare_user, 0, 'a nested user namespace must be refused');
    assert.notEqual(out.unshare_mount, 0, 'a new mount namespace must be refused');
  });

  it('cannot open its mappings through /proc/self/map_files (the way the shared lane file was truncated)', { skip }, async () => {
    const out = await attack('hostile', {}, { do: 'mapfiles' });
    assert.ok((out.entries as number) > 0, 'the fixture sees its mappings');
    assert.equal(out.opened, 0);
  });

  it('with / readable, cannot see or connect to sockets in $XDG_RUNTIME_DIR or /run', { skip }, async () => {
    process.env.XDG_RUNTIME_DIR = runtimeDir;
    const agent = path.join(runtimeDir, 'agent.sock');
    servers.push(await listen(agent));
    // As root, a socket in /run itself too (removed with the server).
    let runSocket: string | undefined;
    try {
      runSocket = `/run/skillplug-test-${process.pid}.sock`;
      servers.push(await listen(runSocket));
    } catch {
      runSocket = undefined;
    }
    const grant = { fs_read: ['/'] };
    const open = await attack('hostile-reader', { sandbox: 'off', grant }, { do: 'connect', path: agent, dir: runtimeDir });
    assert.equal(open.connected, true, 'unsandboxed, the fixture reaches the socket');
    const inside = await attack('hostile-reader', { grant }, { do: 'connect', path: agent, dir: runtimeDir });
    assert.equal(inside.connected, false);
    assert.equal(inside.entries, 0, '$XDG_RUNTIME_DIR is empty inside');
    const run = await attack('hostile-reader', { grant }, { do: 'connect', path: runSocket ?? '/run/dbus/system_bus_socket', dir: '/run' });
    assert.equal(run.connected, false);
    assert.equal(run.entries, 0, '/run is empty inside');
  });

  it('keeps environment values, explicit secrets included, off every command line', { skip }, async () => {
    const secret = `s3cret-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const loader = new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false, isolation: 'process', sandbox: 'required', env: { SKILLPLUG_SECRET: secret } });
    const plugin = await loader.loadPlugin(path.join(plugins, 'probe'));
    try {
      const out = (await plugin.execute({ input: { env: 'SKILLPLUG_SECRET' } as never, workspace_root: workspace, config: {} })).output as Output;
      assert.equal(out.env_visible, true, 'the plugin still gets the value');
      const pid = (plugin as unknown as { hostPid?: number }).hostPid;
      assert.ok(pid, 'the host is running');
      const pids = descendants(pid);
      assert.ok(pids.length >= 2, `bwrap and the host, got ${pids.join(',')}`);
      for (const p of pids) {
        let cmdline = '';
        try {
          cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        } catch {
          continue;
        }
        assert.ok(!cmdline.includes(secret), `pid ${p}'s command line holds the secret: ${cmdline.split('\0').join(' ')}`);
      }
    } finally {
      await plugin.close();
    }
  });
});

describe('a bubblewrap without --disable-userns', async () => {
  const support = await detectSandbox();
  const skip = support.available ? false : `bubblewrap unavailable: ${support.reason}`;

  it('is refused by sandbox "required" and used with a warning by "auto"', { skip }, async () => {
    const base = tempDir();
    // Behaves like bubblewrap before 0.8, which did not know --disable-userns.
    const oldBwrap = path.join(base, 'old-bwrap');
    writeFileSync(oldBwrap, `#!/bin/sh\nfor a in "$@"; do [ "$a" = --disable-userns ] && { echo "bwrap: Unknown option --disable-userns" >&2; exit 1; }; done\nexec ${support.bwrap} "$@"\n`, { mode: 0o755 });
    const plugins = path.join(base, 'plugins');
    await buildFixture(plugins, { source: 'sandbox_hostile', name: 'hostile' });
    const saved = process.env.SKILLPLUG_BWRAP;
    process.env.SKILLPLUG_BWRAP = oldBwrap;
    try {
      const weaker = await detectSandbox();
      assert.equal(weaker.available, true);
      assert.equal(typeof weaker.weaker, 'string');
      const load = (options: PluginLoaderOptions) => new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace: base, defaultDirs: false, isolation: 'process', ...options }).loadPlugin(path.join(plugins, 'hostile'));
      await assert.rejects(load({ sandbox: 'required' }), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.SANDBOX_UNAVAILABLE);
      const warnings: string[] = [];
      const plugin = await load({ sandbox: 'auto', onWarning: (m) => warnings.push(m) });
      try {
        const out = (await plugin.execute({ input: { do: 'caps', path: base } as never, workspace_root: base, config: {} })).output as Output;
        assert.equal(out.cap_eff, '0000000000000000', 'capabilities are still dropped');
        assert.equal(warnings.length > 0, true, 'never silently weaker');
      } finally {
        await plugin.close();
      }
    } finally {
      if (saved === undefined) delete process.env.SKILLPLUG_BWRAP;
      else process.env.SKILLPLUG_BWRAP = saved;
    }
  });
});
