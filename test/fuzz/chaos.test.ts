// Chaos: hosts SIGKILLed and SIGSTOPped under 64 calls in flight, abort storms, and the parent SIGKILLed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginLoader } from '../../src/index.js';
import { detectSandbox } from '../../src/sandbox/index.js';
import type { IsolatedPlugin } from '../../src/host/isolated.js';
import { REPO_ROOT, buildFixtures, tempDir, tempHome } from '../helpers/fixtures.js';
import { Prng, fuzzSettings } from '../helpers/prng.js';
import { Tally, childPids, fdCount, outcomeOf } from './cases.js';
import { alive, exited } from '../helpers/processes.js';

const { seed, cases } = fuzzSettings(2, 1 / 100);
const IN_FLIGHT = 64;
const hex = (text: string) => Buffer.from(text).toString('hex');
const input = (n: number, sleepMs: number) => ({ hex: hex(`{"success":true,"output":{"n":${n}},"error":null,"files":[]}`), sleep_ms: sleepMs, n });
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe(`chaos (seed ${seed}, ${cases} rounds)`, () => {
  let root: string;
  let dirs: Record<string, string>;
  before(async () => {
    root = tempDir();
    dirs = await buildFixtures(root, [
      { key: 'serial', source: 'fuzz', name: 'fuzz' },
      { key: 'parallel', source: 'fuzz', name: 'fuzz-ts', defines: { THREAD_SAFE: '1' } },
    ]);
  });

  // One round: 64 calls in flight, signals to the host and aborts fired as calls settle.
  async function round(plugin: IsolatedPlugin | Awaited<ReturnType<PluginLoader['loadPlugin']>>, prng: Prng, tally: Tally, signals: boolean, killed: Set<number>): Promise<void> {
    const allowed = new Set<string>(['ok', ErrorCode.CANCELLED, ...(signals ? [ErrorCode.CRASHED, ErrorCode.QUARANTINED] : [])]);
    const controllers = Array.from({ length: IN_FLIGHT }, () => new AbortController());
    let settled = 0;
    const chaos = async (): Promise<void> => {
      const pid = 'hostPid' in plugin ? plugin.hostPid : undefined;
      const action = prng.int(signals ? 4 : 2);
      if (action === 0) controllers[prng.int(IN_FLIGHT)]?.abort();
      else if (action === 1) {
        for (const c of controllers) if (prng.chance(0.3)) c.abort();
      } else if (pid !== undefined && action === 2) {
        process.kill(pid, 'SIGKILL');
        killed.add(pid);
      }
      else if (pid !== undefined && action === 3) {
        process.kill(pid, 'SIGSTOP');
        for (let i = prng.int(4); i >= 0; i--) await turn();
        if (alive(pid)) process.kill(pid, 'SIGCONT');
      }
    };
    const calls = controllers.map((controller, n) =>
      plugin.execute({ input: input(n, prng.int(3)) as never, workspace_root: null, config: {} }, { signal: controller.signal }).then((result) => {
        assert.deepEqual(result.output, { n }, 'a call got another call\'s result');
        return result;
      }),
    );
    const outcomes = calls.map((call, n) =>
      outcomeOf(call, `call ${n}`).then(async (outcome) => {
        settled++;
        if (prng.chance(0.15)) await chaos();
        return outcome;
      }),
    );
    // Some chaos before anything settles too.
    if (prng.chance(0.5)) await chaos();
    for (const outcome of await Promise.all(outcomes)) {
      assert.ok(allowed.has(outcome), `unexpected outcome ${outcome}`);
      tally.add(outcome);
    }
    assert.equal(settled, IN_FLIGHT);
  }

  for (const [isolation, key] of [['process', 'serial'], ['process', 'parallel'], ['none', 'parallel']] as const) {
    const signals = isolation === 'process';
    it(`isolation ${isolation}, ${key === 'parallel' ? 'thread-safe' : 'one call at a time'}: ${signals ? 'SIGKILL/SIGSTOP and ' : ''}abort storms settle every call, leaking nothing`, async () => {
      const tally = new Tally(`chaos/${isolation}/${key}`);
      const loader = new PluginLoader({ pluginsDirs: [root], home: tempHome(), defaultDirs: false, isolation, sandbox: 'off', maxConcurrency: 4 });
      const plugin = await loader.loadPlugin(dirs[key] as string);
      await plugin.execute({ input: input(0, 0) as never, workspace_root: null, config: {} });
      const fds = fdCount();
      const prng = new Prng(seed + 10 + (isolation === 'none' ? 1 : 0) + (key === 'parallel' ? 2 : 0));
      try {
        const killed = new Set<number>();
        for (let r = 0; r < cases; r++) {
          await round(plugin, prng, tally, signals, killed);
          // External kills count as crashes; the next round starts clean.
          if ('liftQuarantine' in plugin) (plugin as IsolatedPlugin).liftQuarantine();
        }
        // A host SIGKILLed by the last chaos may not have been seen to exit yet: a call sent to it now would
        // fail E_CRASHED, rightly. Wait until the plugin has seen that exit (its host's own exit event).
        const host = (plugin as unknown as { host?: { pid?: number; exited: Promise<unknown> } }).host;
        if (host?.pid !== undefined && killed.has(host.pid)) {
          // An idle host's handles are unreferenced: hold the loop open (this timer never fires) until the exit event.
          const holdLoop = setInterval(() => undefined, 1 << 30);
          await host.exited.finally(() => clearInterval(holdLoop));
        }
        assert.deepEqual((await plugin.execute({ input: input(7, 0) as never, workspace_root: null, config: {} })).output, { n: 7 });
      } finally {
        await plugin.close();
        tally.report();
      }
      assert.ok(fdCount() <= fds, `fds grew from ${fds} to ${fdCount()}`);
      assert.deepEqual(childPids(), []);
    });
  }

  it('parent SIGKILLed with calls in flight, with and without the sandbox: its hosts die with it', async () => {
    const sandboxed = (await detectSandbox()).available;
    const script = `
      import { PluginLoader } from ${JSON.stringify(`${REPO_ROOT}/build/src/index.js`)};
      const hosts = [];
      for (const sandbox of ${JSON.stringify(sandboxed ? ['off', 'required'] : ['off'])}) {
        const loader = new PluginLoader({ pluginsDirs: [${JSON.stringify(root)}], defaultDirs: false, sandbox, maxConcurrency: 4 });
        const plugin = await loader.loadPlugin(${JSON.stringify(dirs.parallel)});
        await plugin.execute({ input: ${JSON.stringify(input(0, 0))}, workspace_root: null, config: {} });
        for (let i = 0; i < 16; i++) plugin.execute({ input: { sleep_ms: 600000 }, workspace_root: null, config: {} }).catch(() => {});
        hosts.push(plugin.hostPid);
      }
      console.log(JSON.stringify(hosts));
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, HOME: tempHome() } });
    const line = await new Promise<string>((resolve) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0] as string);
      });
    });
    const hosts = JSON.parse(line) as number[];
    assert.equal(hosts.length, sandboxed ? 2 : 1);
    for (const host of hosts) assert.ok(alive(host));
    const parentGone = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await parentGone;
    // The hosts learn of their parent's death from the kernel (death signal, closed pipes), not from us.
    await exited(hosts, 'the hosts of the killed parent');
  });
});
