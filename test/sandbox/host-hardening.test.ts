// A plugin attacking the host process it runs in: syscalls, inherited fds, leftover processes, the lane.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, createReadStream, openSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader, type NativePluginTrait, type PluginLoaderOptions } from '../../src/index.js';
import { detectSandbox } from '../../src/sandbox/index.js';
import { REPO_ROOT, buildFixture, tempDir, tempHome } from '../helpers/fixtures.js';
import { laneUp, warmSharedLane } from '../helpers/lane.js';
import { hostTuning } from '../../src/host/tuning.js';

const DEFAULT_SHARED_AFTER = hostTuning.sharedAfterLoneCalls;

const { EPERM, ENOSYS } = osConstants.errno;
// A failure bound on events that normally arrive within milliseconds; never what orders them.
const EVENT_BOUND_MS = 60_000;

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${EVENT_BOUND_MS} ms`)), EVENT_BOUND_MS);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

describe('host hardening against a hostile plugin', async () => {
  const linux = process.platform === 'linux';
  const support = await detectSandbox();
  const modes = [
    { sandbox: 'off' as const, skip: linux ? false : 'Linux only' },
    { sandbox: 'required' as const, skip: !linux ? 'Linux only' : support.available ? false : `bubblewrap unavailable: ${support.reason}` },
  ];
  let plugins: string;
  let workspace: string;
  let outside: string;
  let fifos = 0;
  const openFifos: string[] = [];

  before(async () => {
    const base = tempDir();
    plugins = path.join(base, 'plugins');
    workspace = path.join(base, 'ws');
    outside = path.join(base, 'outside');
    execFileSync('mkdir', ['-p', plugins, workspace, outside]);
    await buildFixture(plugins, { source: 'hostile_host', name: 'hostile' });
    await buildFixture(plugins, {
      source: 'hostile_host',
      name: 'hostile-net',
      manifest: { name: 'hostile-net', description: 'd', version: '1', permissions: { network: true } },
    });
  });

  after(() => {
    // A daemon that never came leaves its FIFO's reader blocked in open(): a writer releases it.
    for (const fifo of openFifos) {
      try {
        closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
      } catch {
        // No reader left.
      }
    }
  });

  function loaderOptions(sandbox: 'off' | 'required'): PluginLoaderOptions {
    // hostile-net asks for network; the user grants it here, as `skillplug grant hostile-net --network` would.
    return { pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false, isolation: 'process', sandbox, grants: { 'hostile-net': { network: true } } };
  }

  async function withPlugin<T>(name: string, sandbox: 'off' | 'required', fn: (plugin: NativePluginTrait) => Promise<T>): Promise<T> {
    const plugin = await new PluginLoader(loaderOptions(sandbox)).loadPlugin(path.join(plugins, name));
    try {
      return await fn(plugin);
    } finally {
      await plugin.close();
    }
  }

  function ctx(input: Record<string, unknown>) {
    return { input: input as never, workspace_root: workspace, config: {} };
  }

  // A FIFO in the workspace (read-only for the plugin, yet openable for writing): the daemon holds its
  // write end, so its reader sees the end exactly when the daemon (and every copy of the fd) is gone.
  function watchDaemon(): { fifo: string; gone: Promise<void> } {
    const fifo = path.join(workspace, `daemon-${fifos++}.fifo`);
    execFileSync('mkfifo', [fifo]);
    openFifos.push(fifo);
    const stream = createReadStream(fifo);
    const gone = new Promise<void>((resolve, reject) => {
      stream.on('data', () => undefined);
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    gone.catch(() => undefined);
    return { fifo, gone };
  }

  it('sandboxed, the seccomp filter refuses mounts, namespaces, ptrace, bpf, keyrings and Unix sockets', { skip: modes[1]?.skip }, async () => {
    const out = await withPlugin('hostile', 'required', async (plugin) => (await plugin.execute(ctx({ do: 'syscalls' }))).output as Record<string, number>);
    for (const call of ['mount', 'unshare_user', 'unshare_mount', 'clone_newuser', 'ptrace', 'process_vm_readv', 'bpf', 'perf_event_open', 'keyctl', 'userfaultfd', 'unix_socket']) {
      assert.equal(out[call], EPERM, call);
    }
    assert.equal(out.clone3, ENOSYS, 'clone3 says ENOSYS so libc falls back to clone');
    assert.equal(out.socketpair, 0, 'socketpair reaches nothing outside and stays');
    assert.equal(out.fork_exit, 7, 'plain children still work');
  });

  it('sandboxed, a syscall of another ABI (x32) kills the host instead of slipping past the filter', { skip: modes[1]?.skip || (process.arch === 'x64' ? false : 'x86_64 only') }, async () => {
    await withPlugin('hostile', 'required', async (plugin) => {
      await assert.rejects(plugin.execute(ctx({ do: 'x32' })), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.CRASHED && e.failure?.signal === 'SIGSYS');
    });
  });

  it('sandboxed with network granted, Unix sockets may be created', { skip: modes[1]?.skip }, async () => {
    const out = await withPlugin('hostile-net', 'required', async (plugin) => (await plugin.execute(ctx({ do: 'syscalls' }))).output as Record<string, number>);
    assert.equal(out.unix_socket, 0);
    assert.equal(out.mount, EPERM);
  });

  for (const { sandbox, skip } of modes) {
    describe(`sandbox ${sandbox}`, () => {
      it('an fd the caller inherited never reaches the plugin, and nothing it runs inherits the host channels', { skip }, async () => {
        const secret = path.join(outside, `secret-${sandbox}`);
        writeFileSync(secret, 'ssh-key-material');
        const script = `
          import { fstatSync } from 'node:fs';
          fstatSync(50); // the attack is real: this process holds the secret at fd 50
          const { PluginLoader } = await import(${JSON.stringify(path.join(REPO_ROOT, 'build', 'src', 'index.js'))});
          const loader = new PluginLoader(${JSON.stringify(loaderOptions(sandbox))});
          const plugin = await loader.loadPlugin(${JSON.stringify(path.join(plugins, 'hostile'))});
          const r = await plugin.execute({ input: { do: 'fds', fd: 50 }, workspace_root: ${JSON.stringify(workspace)}, config: {} });
          console.log(JSON.stringify(r.output));
          await plugin.close();`;
        // exec 50<file: an fd without close-on-exec, as a shell leaves it for the programs it runs.
        const child = spawn('bash', ['-c', 'exec 50<"$SECRET"; exec "$NODE" --input-type=module -e "$SCRIPT"'], {
          env: { ...process.env, SECRET: secret, NODE: process.execPath, SCRIPT: script },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let stdout = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        const code = await within(new Promise<number | null>((resolve) => child.on('exit', resolve)), 'the script');
        assert.equal(code, 0);
        const out = JSON.parse(stdout) as { read: boolean; secret: string; open: number[]; child_open: string };
        assert.equal(out.read, false);
        assert.equal(out.secret, '');
        assert.ok(out.open.every((fd) => fd <= 6), `open fds: ${out.open.join(',')}`);
        assert.equal(out.child_open, 'x', 'a program the plugin runs inherits none of fds 3-7 or 50');
      });

      it('a setsid daemon the plugin leaves dies when the plugin is closed', { skip }, async () => {
        const daemon = watchDaemon();
        await withPlugin('hostile', sandbox, async (plugin) => {
          assert.deepEqual((await plugin.execute(ctx({ do: 'daemon', fifo: daemon.fifo }))).output, { started: true });
        });
        await within(daemon.gone, 'the daemon dying after close()');
      });

      it('a setsid daemon dies when the host crashes', { skip }, async () => {
        const daemon = watchDaemon();
        await withPlugin('hostile', sandbox, async (plugin) => {
          await plugin.execute(ctx({ do: 'daemon', fifo: daemon.fifo }));
          await assert.rejects(plugin.execute(ctx({ do: 'crash' })), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.CRASHED);
          await within(daemon.gone, 'the daemon dying after a crash');
        });
      });

      it('a setsid daemon dies when its call is killed at the deadline', { skip }, async () => {
        const daemon = watchDaemon();
        await withPlugin('hostile', sandbox, async (plugin) => {
          await plugin.execute(ctx({ do: 'daemon', fifo: daemon.fifo }));
          await assert.rejects(plugin.execute(ctx({ do: 'hang' }), { timeoutMs: 300 }), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.TIMEOUT);
          await within(daemon.gone, 'the daemon dying after a timeout kill');
        });
      });

      it('a setsid daemon dies when the parent Node process is SIGKILLed', { skip }, async () => {
        const daemon = watchDaemon();
        const script = `
          const { PluginLoader } = await import(${JSON.stringify(path.join(REPO_ROOT, 'build', 'src', 'index.js'))});
          const loader = new PluginLoader(${JSON.stringify(loaderOptions(sandbox))});
          const plugin = await loader.loadPlugin(${JSON.stringify(path.join(plugins, 'hostile'))});
          await plugin.execute({ input: { do: 'daemon', fifo: ${JSON.stringify(daemon.fifo)} }, workspace_root: ${JSON.stringify(workspace)}, config: {} });
          console.log('started');
          setInterval(() => undefined, 1000);`;
        const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        const exited = new Promise((resolve) => parent.on('exit', resolve));
        await within(new Promise<void>((resolve) => parent.stdout.on('data', (d: Buffer) => d.toString().includes('started') && resolve())), 'the daemon starting');
        parent.kill('SIGKILL');
        await exited;
        await within(daemon.gone, 'the daemon dying after its parent was SIGKILLed');
      });

      it('truncating the shared lane cannot SIGBUS the parent: its size is sealed', { skip }, async () => {
        hostTuning.sharedAfterLoneCalls = 0;
        try {
          await withPlugin('hostile', sandbox, async (plugin) => {
            await warmSharedLane(plugin, ctx({}));
            const out = (await plugin.execute(ctx({ do: 'truncate' }))).output as { opened: number; truncated: number };
            assert.ok(out.opened >= 1, 'the plugin reached the lane file');
            assert.equal(out.truncated, 0);
            for (let i = 0; i < 20; i++) assert.deepEqual((await plugin.execute(ctx({}))).output, {});
            assert.equal(laneUp(plugin), true);
          });
        } finally {
          hostTuning.sharedAfterLoneCalls = DEFAULT_SHARED_AFTER;
        }
      });
    });
  }
});
