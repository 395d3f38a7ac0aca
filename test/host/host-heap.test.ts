// The host's heap across big calls: kept for the next call, bounded by the plugin's memory limits, given back once idle.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { type IsolatedPlugin, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { hostTuning } from '../../src/host/tuning.js';
import { buildFixture, tempDir, type FixtureSpec } from '../helpers/fixtures.js';
import { until } from '../helpers/markers.js';

const MiB = 1024 * 1024;
const PAGE = 4096;
const SIZE = 4 * MiB;
const DEFAULT_TRIM_IDLE_MS = hostTuning.heapTrimIdleMs;
// Long enough that no trim falls between two calls of a test, however loaded the machine.
const NEVER_MS = 10 * 60 * 1000;

/** Minor page faults of a whole process, all threads (/proc/PID/stat field 10). */
function minorFaults(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(line?.[1]) * 1024;
}

const fixtures = new Map<string, Promise<string>>();
function fixtureDir(spec: FixtureSpec): Promise<string> {
  let dir = fixtures.get(spec.name);
  if (!dir) {
    dir = buildFixture(tempDir(), spec);
    fixtures.set(spec.name, dir);
  }
  return dir;
}

const opened: IsolatedPlugin[] = [];
/**
 * The heap fixture, isolated, its hosts given back their heap after `trimIdleMs` without a call. The
 * host starts with the first call and reads the tuning then, so it stays set until the test ends.
 */
async function load(trimIdleMs: number, options: PluginLoaderOptions = {}, threadSafe = false, start = true): Promise<IsolatedPlugin> {
  const dir = await fixtureDir(threadSafe ? { source: 'heap', name: 'heap-ts', defines: { THREAD_SAFE: '1' } } : { source: 'heap', name: 'heap' });
  hostTuning.heapTrimIdleMs = trimIdleMs;
  const loader = new PluginLoader({ pluginsDirs: [path.dirname(dir)], defaultDirs: false, readConfig: false, isolation: 'process', sandbox: 'off', maxOutputBytes: 8 * SIZE, ...options });
  const plugin = (await loader.loadPlugin(dir)) as IsolatedPlugin;
  opened.push(plugin);
  if (start) await plugin.execute({ input: { mode: 'ok' } as never, workspace_root: null, config: {} });
  return plugin;
}

// A big request and a big result: each a fresh buffer of `size` in the host.
const bigCall = (plugin: IsolatedPlugin, size = SIZE) => plugin.execute({ input: { mode: 'big', size, pad: 'p'.repeat(size) } as never, workspace_root: null, config: {} });
const hostPid = (plugin: IsolatedPlugin) => plugin.hostPid as number;

describe('isolated host heap', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  afterEach(async () => {
    hostTuning.heapTrimIdleMs = DEFAULT_TRIM_IDLE_MS;
    await Promise.all(opened.splice(0).map((p) => p.close()));
  });

  it('reuses the memory of one big call for the next instead of faulting it in again', async () => {
    const plugin = await load(NEVER_MS);
    await bigCall(plugin);
    const before = minorFaults(hostPid(plugin));
    assert.equal(((await bigCall(plugin)).output as string).length, SIZE);
    // Given back to the kernel, the two buffers would fault in 2 * SIZE / PAGE pages (2048) again.
    const faults = minorFaults(hostPid(plugin)) - before;
    assert.ok(faults < SIZE / PAGE / 4, `${faults} page faults for a call whose buffers the heap had kept`);
  });

  it('gives the kept memory back once no call has run for a while', async () => {
    const plugin = await load(50);
    const before = residentBytes(hostPid(plugin));
    await bigCall(plugin);
    // The call leaves 2 * SIZE kept (the test above); the trim may come before the first look, so
    // there is nothing to assert about that look. No event says the host trimmed its heap: look
    // after each loop turn until its RSS is back (without the trim it never is).
    await until(() => residentBytes(hostPid(plugin)) < before + SIZE, 'the idle host giving its heap back');
  });

  it('gives back what calls on pool workers freed after the reader went to sleep', async () => {
    const plugin = await load(50, { maxConcurrency: 2 }, true);
    const before = residentBytes(hostPid(plugin));
    // Two at once: at least one runs on a worker, whose result is freed while the reader sleeps.
    await Promise.all([bigCall(plugin), bigCall(plugin)]);
    await until(() => residentBytes(hostPid(plugin)) < before + SIZE, 'the idle pooled host giving its heap back');
  });

  it("gives it back on time though a plugin's timer interrupts the host's sleep every 5 ms", async () => {
    const plugin = await load(50);
    await plugin.execute({ input: { mode: 'ticker' } as never, workspace_root: null, config: {} });
    const before = residentBytes(hostPid(plugin));
    await bigCall(plugin);
    await until(() => residentBytes(hostPid(plugin)) < before + SIZE, 'the host giving its heap back between signals');
  });

  it('keeps at most an eighth of maxMemoryMb', async () => {
    // 48 MiB: at most 6 MiB kept, so neither 4 MiB buffer stays (unbounded, both would: 8 MiB). No
    // recycling, whose default threshold (half the limit) would bound it the same.
    const plugin = await load(NEVER_MS, { maxMemoryMb: 48, recycleAboveMb: 0 });
    const start = residentBytes(hostPid(plugin));
    await bigCall(plugin);
    const grown = residentBytes(hostPid(plugin)) - start;
    assert.ok(grown < 6 * MiB, `host RSS grew by ${grown} bytes over a big call`);
  });

  it('keeps at most a quarter of recycleAboveMb, so kept memory alone never recycles the host', async () => {
    // 24 MiB: at most 6 MiB kept. Unbounded, a 16 MiB round trip would keep 32 MiB and replace the host after each call.
    const plugin = await load(NEVER_MS, { recycleAboveMb: 24 }, false, false);
    // A host's first call is always followed by a look at its RSS.
    await bigCall(plugin, 16 * MiB);
    const first = hostPid(plugin);
    await plugin.execute({ input: { mode: 'ok' } as never, workspace_root: null, config: {} });
    assert.equal(hostPid(plugin), first);
  });
});
