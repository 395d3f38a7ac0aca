import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { detectSandbox } from '../../src/sandbox/index.js';
import { detectCgroups, sweepOrphans } from '../../src/sandbox/limits.js';
import { buildFixture, runCli, tempDir, tempHome } from '../helpers/fixtures.js';

type Output = Record<string, number | boolean>;
const EFBIG = 27;
const ENOSPC = 28;

describe('whole-plugin limits', async () => {
  const support = await detectSandbox();
  const cgroups = detectCgroups();
  const root = process.getuid?.() === 0;
  const noSandbox = support.available ? false : `bubblewrap unavailable: ${support.reason}`;
  // Root is bounded only by a cgroup; a user by a cgroup or RLIMIT_NPROC in the sandbox's user namespace.
  const processesBounded = cgroups.mechanism !== 'none' || (!root && !support.weaker);
  const skipProcesses = noSandbox || (processesBounded ? false : `no process bound applies here: ${cgroups.reason}`);
  const skipCgroup = noSandbox || (cgroups.mechanism === 'none' ? `no cgroup: ${cgroups.reason}` : false);
  let plugins: string;
  let workspace: string;

  before(async () => {
    const base = tempDir();
    plugins = path.join(base, 'plugins');
    workspace = path.join(base, 'ws');
    for (const d of [plugins, path.join(workspace, 'out')]) mkdirSync(d, { recursive: true });
    await buildFixture(plugins, {
      source: 'sandbox_hostile',
      name: 'hostile',
      manifest: { name: 'hostile', description: 'd', version: '1', permissions: { fs_write: ['${workspace}/out'] } },
    });
  });

  function loader(options: PluginLoaderOptions): PluginLoader {
    // The hostile fixture asks to write ${workspace}/out; the user grants it, so only the limits stop it.
    const grants = { hostile: { fs_write: ['${workspace}/out'] } };
    return new PluginLoader({ pluginsDirs: [plugins], home: tempHome(), workspace, defaultDirs: false, isolation: 'process', sandbox: 'required', onWarning: () => undefined, grants, ...options });
  }

  // The call's output, or the code it failed with.
  async function attempt(plugin: Awaited<ReturnType<PluginLoader['loadPlugin']>>, input: Record<string, unknown>): Promise<Output | string> {
    try {
      return (await plugin.execute({ input: input as never, workspace_root: workspace, config: {} })).output as Output;
    } catch (err) {
      if (err instanceof PluginError) return err.code;
      throw err;
    }
  }

  it('stops a fork bomb at maxProcesses; the plugin and its caller carry on', { skip: skipProcesses }, async () => {
    const plugin = await loader({ maxProcesses: 24 }).loadPlugin(path.join(plugins, 'hostile'));
    try {
      const out = await attempt(plugin, { do: 'forkbomb', max: 300 });
      if (typeof out === 'string') assert.equal(out, ErrorCode.RESOURCE_LIMIT);
      else {
        assert.ok((out.forked as number) < 24, `forked ${out.forked} children`);
        assert.notEqual(out.errno, 0, 'fork failed');
      }
      const after = await attempt(plugin, { do: 'connect', dir: '/' });
      assert.equal(typeof after, 'object', 'the plugin still answers');
    } finally {
      await plugin.close();
    }
  });

  it('the CLI takes --max-procs (and refuses a bad one) as the README shows', { skip: skipProcesses }, async () => {
    const common = ['--plugins-dir', plugins, '--workspace', workspace, '--sandbox', 'required', '--grant-write', path.join(workspace, 'out'), '--json'];
    const run = await runCli(['run', 'hostile', ...common, '--max-memory', '256', '--max-procs', '24', '--input', '{"do":"forkbomb","max":300}']);
    assert.equal(run.code, 0, run.stderr);
    const forked = (JSON.parse(run.stdout) as { output: Output }).output.forked as number;
    assert.ok(forked < 24, `forked ${forked}`);
    for (const bad of ['0', '-1', '2.5', 'many']) assert.equal((await runCli(['run', 'hostile', ...common, '--max-procs', bad])).code, 2, bad);
  });

  it('refuses a bad maxProcesses up front', () => {
    for (const bad of [0, -3, 1.5, '8', Number.NaN]) {
      assert.throws(() => new PluginLoader({ maxProcesses: bad as number, readConfig: false, defaultDirs: false }), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.USAGE);
    }
  });

  it('bounds /tmp and every written file by maxMemoryMb', { skip: noSandbox }, async () => {
    const plugin = await loader({ maxMemoryMb: 96 }).loadPlugin(path.join(plugins, 'hostile'));
    try {
      const kept = await attempt(plugin, { do: 'fill', path: '/tmp/first', max: 60, keep: 1 });
      assert.deepEqual(kept, { written_mb: 60, errno: 0 });
      // 60 + 60 MiB exceeds the 96 MiB /tmp though no file exceeds the file limit.
      const second = await attempt(plugin, { do: 'fill', path: '/tmp/second', max: 60 });
      if (typeof second === 'string') assert.equal(second, ErrorCode.RESOURCE_LIMIT);
      else {
        assert.ok((second.written_mb as number) < 40, `wrote ${second.written_mb} MiB more`);
        assert.equal(second.errno, ENOSPC);
      }
      const big = await attempt(plugin, { do: 'fill', path: path.join(workspace, 'out', 'big'), max: 200 });
      if (typeof big === 'string') assert.equal(big, ErrorCode.RESOURCE_LIMIT);
      else assert.deepEqual(big, { written_mb: 96, errno: EFBIG });
    } finally {
      await plugin.close();
    }
  });

  it('counts memory held by children and /tmp against maxMemoryMb where a cgroup applies', { skip: skipCgroup }, async () => {
    const plugin = await loader({ maxMemoryMb: 100 }).loadPlugin(path.join(plugins, 'hostile'));
    try {
      // Each child stays under the per-process limit; together with /tmp they hold 40 + 3 * 30 MiB.
      const out = await attempt(plugin, { do: 'children', n: 3, mb: 30, tmp: 40 });
      if (typeof out === 'string') assert.equal(out, ErrorCode.RESOURCE_LIMIT);
      else assert.ok((out.killed as number) + (out.no_memory as number) >= 1, `no child was stopped: ${JSON.stringify(out)}`);
    } finally {
      await plugin.close();
    }
  });

  it('removes the plugin cgroup when its host stops', { skip: skipCgroup }, async () => {
    const mine = (): string[] => cgroups.parents.flatMap((p) => readdirSync(p).filter((n) => n.startsWith(`skillplug-${process.pid}-`)));
    const plugin = await loader({}).loadPlugin(path.join(plugins, 'hostile'));
    await attempt(plugin, { do: 'connect', dir: '/' });
    assert.ok(mine().length > 0, 'a cgroup while the host runs');
    await plugin.close();
    assert.deepEqual(mine(), []);
  });

  it('removes empty cgroups left by a process that exited without closing its plugins', { skip: skipCgroup }, async () => {
    // A pid that has just exited stands for the process that left its cgroups behind.
    const gone = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }));
    const orphans = cgroups.parents.map((p) => path.join(p, `skillplug-${gone}-1`));
    for (const dir of orphans) mkdirSync(dir);
    await sweepOrphans(cgroups.parents);
    assert.deepEqual(orphans.filter((d) => existsSync(d)), []);
  });
});
