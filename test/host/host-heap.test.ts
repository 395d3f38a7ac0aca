// The host's heap across big calls: kept for the next call, given back once the host is idle.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type IsolatedPlugin, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';
import { until } from '../helpers/markers.js';

const MiB = 1024 * 1024;
const PAGE = 4096;
const SIZE = 4 * MiB;

/** Minor page faults of a whole process, all threads (/proc/PID/stat field 10). */
function minorFaults(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(line?.[1]) * 1024;
}

const onLinux = { skip: process.platform !== 'linux' && 'reads /proc' };
let fixtureDir: Promise<string> | undefined;
const load = async (options: PluginLoaderOptions = {}): Promise<IsolatedPlugin> => {
  fixtureDir ??= buildFixture(tempDir(), { source: 'heap', name: 'heap' });
  const dir = await fixtureDir;
  const loader = new PluginLoader({ pluginsDirs: [path.dirname(dir)], defaultDirs: false, readConfig: false, isolation: 'process', sandbox: 'off', maxOutputBytes: 4 * SIZE, ...options });
  return (await loader.loadPlugin(dir)) as IsolatedPlugin;
};
// A big request and a big result: each a fresh buffer of SIZE in the host.
const bigCall = (plugin: IsolatedPlugin) => plugin.execute({ input: { mode: 'big', size: SIZE, pad: 'p'.repeat(SIZE) } as never, workspace_root: null, config: {} });

describe('isolated host heap', onLinux, () => {
  let plugin: IsolatedPlugin;
  // The host starts with the first call.
  const hostPid = () => plugin.hostPid as number;

  before(async () => {
    plugin = await load();
  });

  after(() => plugin.close());

  it('reuses the memory of one big call for the next instead of faulting it in again', async () => {
    await bigCall(plugin);
    const before = minorFaults(hostPid());
    const result = await bigCall(plugin);
    assert.equal((result.output as string).length, SIZE);
    // Given back to the kernel, the two buffers would fault in 2 * SIZE / PAGE pages (2048) again.
    const faults = minorFaults(hostPid()) - before;
    assert.ok(faults < SIZE / PAGE / 4, `${faults} page faults for a call whose buffers the heap had kept`);
  });

  it('gives the kept memory back once the host is idle', async () => {
    await bigCall(plugin);
    const kept = residentBytes(hostPid());
    assert.ok(kept > 2 * SIZE, `host RSS ${kept} after a big call`);
    // No event says the host trimmed its heap: look after each loop turn until its RSS drops.
    await until(() => residentBytes(hostPid()) < kept - SIZE, 'the idle host giving its heap back');
  });
});

describe('isolated host heap under a memory limit', onLinux, () => {
  it('keeps at most an eighth of maxMemoryMb', async () => {
    // 48 MiB: at most 6 MiB kept, so neither 4 MiB buffer stays (unbounded, both would: 8 MiB).
    const plugin = await load({ maxMemoryMb: 48 });
    try {
      await plugin.execute({ input: { mode: 'ok' } as never, workspace_root: null, config: {} });
      const start = residentBytes(plugin.hostPid as number);
      await bigCall(plugin);
      const grown = residentBytes(plugin.hostPid as number) - start;
      assert.ok(grown < 6 * MiB, `host RSS grew by ${grown} bytes over a big call`);
    } finally {
      await plugin.close();
    }
  });
});
